"""Registry credentials and authentication challenges.

Credentials come from `--registry-auth HOST=USER:PASSWORD_FILE` (the password is read from the file, never
given on the command line) or from docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
`~/.docker/config.json`: `auths` -> host -> `auth`, base64 of `user:password`). The command line wins.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from bundler.errors import BundlerError
from bundler.oci.reference import DOCKER_HUB, DOCKER_HUB_ALIASES

_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"|([A-Za-z_]+)=([^\s,"]+)')


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: Tuple[Tuple[str, str], ...]

    def get(self, key: str) -> Optional[str]:
        return dict(self.params).get(key)


def parse_challenge(header: str) -> Optional[Challenge]:
    """`Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"` -> Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = []
    for match in _PARAM.finditer(rest):
        key = match.group(1) or match.group(3)
        value = match.group(2) if match.group(1) else match.group(4)
        params.append((key.lower(), value))
    return Challenge(scheme.lower(), tuple(params))


def _host_key(host: str) -> str:
    host = host.strip()
    if "://" in host:
        host = urlsplit(host).netloc
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def parse_registry_auth(values: Sequence[str]) -> Dict[str, Credential]:
    """`HOST=USER:PASSWORD_FILE` entries; the file's first line is the password."""
    found: Dict[str, Credential] = {}
    for value in values:
        host, eq, rest = value.partition("=")
        user, colon, file_name = rest.partition(":")
        if not eq or not colon or not host or not user or not file_name:
            raise BundlerError(f"--registry-auth {value!r}: expected HOST=USER:PASSWORD_FILE")
        try:
            lines = Path(file_name).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise BundlerError(
                f"--registry-auth {host}: cannot read password file {file_name}: {error.strerror}"
            ) from None
        if not lines or not lines[0]:
            raise BundlerError(f"--registry-auth {host}: password file {file_name} is empty")
        found[_host_key(host)] = Credential(user, lines[0])
    return found


def docker_config_path() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def read_docker_config(path: Optional[Path] = None) -> Dict[str, Credential]:
    """Logins stored by `docker login` / `skopeo login --authfile` (only the inline `auth` form)."""
    path = path or docker_config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundlerError(f"{path}: cannot read docker credentials: {error}") from None
    found: Dict[str, Credential] = {}
    auths = data.get("auths") if isinstance(data, dict) else None
    for key, entry in (auths or {}).items():
        encoded = entry.get("auth") if isinstance(entry, dict) else None
        if not encoded:
            continue
        try:
            user, colon, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise BundlerError(f"{path}: auths.{key}.auth is not base64 of user:password") from None
        if colon:
            found[_host_key(key)] = Credential(user, password)
    return found


def load_credentials(flag_values: Sequence[str]) -> Dict[str, Credential]:
    credentials = read_docker_config()
    credentials.update(parse_registry_auth(flag_values))
    return credentials
