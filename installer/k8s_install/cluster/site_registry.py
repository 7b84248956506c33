"""cluster.yaml `registry:`: the site's registry (Harbor, Nexus, a plain `registry`) every node pulls through.

    registry:
      endpoint: harbor.site.lan:443   # HOST[:PORT], https
      ca_file: site-ca.pem            # optional: a file name beside cluster.yaml (the bundle carries it)
      prefix: mirror/k8s              # optional: the --prefix the images were pushed under

The CA file is named, not embedded, so cluster.yaml stays short and the certificate is the file the registry's
owners hand out; it must sit beside cluster.yaml (a bare file name: nothing outside that folder is read), and
`bundler build --cluster` carries it beside the bundle's cluster.yaml. Credentials never go here: they are
`registry_username` / `registry_password` in the secrets files.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any, Optional

from k8s_install.cluster.fields import FieldReader, shown
from k8s_install.cluster.model import SiteRegistry
from k8s_install.errors import InstallError
from k8s_install.node.small_file import read_small_file

REGISTRY_FIELDS = ("endpoint", "ca_file", "prefix")
CREDENTIAL_FIELDS = ("username", "password", "auth", "token")
HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENDPOINT = re.compile(r"^(?P<host>[^:/\s]+)(:(?P<port>\d{1,5}))?$")
CA_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(pem|crt)$")
# A repository path as the distribution spec allows it (the same rule as `images push --prefix`).
REPOSITORY_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
MAX_CA_BYTES = 1024 * 1024  # a CA bundle is a few KiB


def read_registry(reader: FieldReader, value: Any) -> Optional[SiteRegistry]:
    """The `registry:` section (None when absent); its problems are recorded in `reader`."""
    if value is None:
        return None
    if isinstance(value, dict):
        for key in [key for key in value if str(key) in CREDENTIAL_FIELDS]:
            reader.report(
                f"registry.{key}",
                "credentials never go in cluster.yaml (it travels in the bundle): put registry_username and "
                "registry_password in cluster-secrets.yaml and cluster-secrets-worker.yaml",
            )
            value = {other: entry for other, entry in value.items() if other != key}
    section = reader.mapping(value, "registry", REGISTRY_FIELDS)
    if section is None:
        return None
    endpoint = reader.attempt(_endpoint, reader, section)
    ca_file = reader.attempt(_ca_file, reader, section)
    prefix = reader.attempt(_prefix, reader, section)
    if endpoint is None or ca_file is None or prefix is None:
        return None
    return SiteRegistry(endpoint=endpoint, ca_file=ca_file, prefix=prefix)


def _endpoint(reader: FieldReader, section: dict) -> str:
    raw = reader.text(section, "endpoint", "registry.endpoint") or ""
    advice = "give HOST[:PORT] of the registry, e.g. harbor.site.lan:443 (https is always used)"
    match = ENDPOINT.match(raw.lower())
    if "://" in raw or "/" in raw:
        raise reader.error("registry.endpoint", f"{shown(raw)}: no scheme or path; {advice}")
    if not match or not HOST_NAME.match(match.group("host")):
        raise reader.error("registry.endpoint", f"{shown(raw)} is not a host name or IP address; {advice}")
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise reader.error("registry.endpoint", f"port {port} is not from 1 to 65535")
    return raw.lower()


def _ca_file(reader: FieldReader, section: dict) -> str:
    name = reader.text(section, "ca_file", "registry.ca_file", required=False) or ""
    if name and not CA_FILE_NAME.match(name):
        raise reader.error(
            "registry.ca_file",
            f"{shown(name)}: give the file name of the registry's CA certificate (.pem or .crt) beside "
            "cluster.yaml, without a folder",
        )
    return name


def _prefix(reader: FieldReader, section: dict) -> str:
    prefix = (reader.text(section, "prefix", "registry.prefix", required=False) or "").strip("/")
    if prefix and not REPOSITORY_PATH.match(prefix):
        raise reader.error(
            "registry.prefix", f"{shown(prefix)}: use lowercase letters, digits, . _ - and / (e.g. mirror/k8s)"
        )
    return prefix


def read_registry_ca(config_path: Path, registry: SiteRegistry) -> str:
    """The text of the CA file `registry.ca_file` names, beside `config_path`, checked to be certificates only."""
    path = Path(config_path).parent / registry.ca_file
    field = f"{config_path}: registry.ca_file"
    try:
        data = read_small_file(path, MAX_CA_BYTES)
    except FileNotFoundError:
        raise InstallError(
            f"{field}: {path}: no such file; put the registry's CA certificate beside cluster.yaml"
        ) from None
    except OSError as error:
        raise InstallError(f"{field}: {path}: cannot read: {error.strerror}") from None
    if data is None:
        raise InstallError(f"{field}: {path}: over {MAX_CA_BYTES // 1024} KiB, not a CA certificate")
    text = data.decode("ascii", "replace")
    if "PRIVATE KEY" in text:
        raise InstallError(
            f"{field}: {path} holds a private key; give only the CA certificate (it travels in the bundle)"
        )
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise InstallError(f"{field}: {path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError):
        raise InstallError(
            f"{field}: {path}: not a readable PEM certificate; ask the registry's owners for its CA certificate"
        ) from None
    return text
