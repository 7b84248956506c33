"""Cluster secrets: made once, before any node is touched, so every node can join without copy-paste.

The file (YAML, mode 0600) holds the kubeadm bootstrap token, the certificate key that encrypts the
control-plane certificates `kubeadm init --upload-certs` shares, the keepalived VRRP password, and the
cluster CA (certificate and key) with its public-key pin. Because the CA exists before `kubeadm init`
(kubeadm uses a CA it finds in /etc/kubernetes/pki), joining nodes verify the API server against the
pin: discovery never skips CA verification.

`trusted_signers` (optional, in both files) holds OpenSSH allowed_signers lines: who may sign the bundles
this cluster installs from. They travel here because this file is already carried apart from the bundle
and every command finds it; whoever could change it could take the cluster anyway.
"""

from __future__ import annotations

import difflib
import re
import secrets
import stat
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import yaml

from k8s_install.bundle_format.signature import TrustedSigners, validate_signers
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.cluster.certificates import ca_cert_hash, generate_ca
from k8s_install.errors import InstallError, yaml_problem
from k8s_install.node.atomic import write_atomically
from k8s_install.node.small_file import read_small_file

FULL = "full"
WORKER = "worker"
WORKER_KEYS = ("cluster", "bootstrap_token", "ca_cert_hash", "ca_cert")
REGISTRY_KEYS = ("registry_username", "registry_password")  # optional, in both files: kubelet pulls on every node
SECRETS_FORMAT = 1
TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CERTIFICATE_KEY = re.compile(r"^[0-9a-f]{64}$")
KEEPALIVED_PASSWORD = re.compile(r"^[A-Za-z0-9]{8}$")  # PASS auth uses only the first 8 characters
# Passwords from guides and habits: the seed's 1111, keyboard and counting runs, words of the trade.
GUESSABLE_PASSWORDS = {
    "11111111", "12345678", "87654321", "password", "passw0rd", "keepaliv", "kubernet", "changeme",
    "qwertyui", "asdfghjk", "abcdefgh", "abcd1234", "admin123", "letmein1", "k8s12345",
}  # fmt: skip
PASSWORD_ADVICE = (
    "use 8 random letters and digits (keepalived's PASS authentication uses only the first 8 characters); "
    "`bundler cluster init` in an empty folder makes one"
)
CA_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
PASSWORD_ALPHABET = string.ascii_letters + string.digits
HEADER = """\
# Secrets of cluster {cluster!r}, made by k8s-install. Anyone holding this file can join nodes to the
# cluster and sign certificates as its CA: keep it mode 0600, carry it apart from the bundle, and
# delete copies on USB sticks once every node has joined.
"""


@dataclass(frozen=True)
class ClusterSecrets:
    cluster: str
    bootstrap_token: str  # [a-z0-9]{6}.[a-z0-9]{16}
    certificate_key: str  # 64 hex: AES-256 key for the kubeadm-certs Secret
    keepalived_password: str  # VRRP PASS authentication, at most 8 characters
    ca_cert_pem: str
    ca_key_pem: str
    ca_cert_hash: str  # sha256:<hex> of the CA's SubjectPublicKeyInfo
    scope: str = FULL  # WORKER: only what a worker's join needs (no certificate key, CA key, VRRP password)
    trusted_signers: str = ""  # allowed_signers lines: who signs this cluster's bundles ("" = not recorded)
    registry_username: str = ""  # the site registry's pull account (cluster.yaml `registry:`); "" = anonymous
    registry_password: str = ""

    @property
    def is_worker_only(self) -> bool:
        return self.scope == WORKER

    @property
    def token_id(self) -> str:
        return self.bootstrap_token.split(".", 1)[0]


class LoadedSecrets(NamedTuple):
    secrets: ClusterSecrets
    warnings: List[str]


WORKER_HEADER = """\
# Join secrets of cluster {cluster!r} for workers only, made by k8s-install. Anyone holding this file can
# join nodes to the cluster until the token is deleted: keep it mode 0600 and delete copies after use.
"""


def random_password() -> str:
    while True:  # a draw the weakness check would refuse (odds about one in a million) is drawn again
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(8))
        if not password_weakness(password):
            return password


def generate_secrets(cluster: str, trusted_signers: str = "") -> ClusterSecrets:
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(6)) + "."
    token += "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(16))
    authority = generate_ca()
    return ClusterSecrets(
        cluster=cluster,
        bootstrap_token=token,
        certificate_key=secrets.token_hex(32),
        keepalived_password=random_password(),
        ca_cert_pem=authority.cert_pem,
        ca_key_pem=authority.key_pem,
        ca_cert_hash=ca_cert_hash(authority.cert_pem),
        trusted_signers=trusted_signers,
    )


def worker_secrets(cluster_secrets: ClusterSecrets) -> ClusterSecrets:
    """What a worker needs to join and nothing more: with the certificate key a bootstrap token can fetch
    the control-plane certificates (the CA key among them), so workers never get it."""
    return ClusterSecrets(
        cluster=cluster_secrets.cluster,
        bootstrap_token=cluster_secrets.bootstrap_token,
        certificate_key="",
        keepalived_password="",
        ca_cert_pem=cluster_secrets.ca_cert_pem,
        ca_key_pem="",
        ca_cert_hash=cluster_secrets.ca_cert_hash,
        scope=WORKER,
        trusted_signers=cluster_secrets.trusted_signers,
        registry_username=cluster_secrets.registry_username,  # kubelet pulls on workers too
        registry_password=cluster_secrets.registry_password,
    )


def secrets_text(cluster_secrets: ClusterSecrets) -> str:
    if cluster_secrets.is_worker_only:
        data = {
            "format": SECRETS_FORMAT,
            "scope": WORKER,
            "cluster": cluster_secrets.cluster,
            "bootstrap_token": cluster_secrets.bootstrap_token,
            "ca_cert_hash": cluster_secrets.ca_cert_hash,
            "ca_cert": cluster_secrets.ca_cert_pem,
        }
        if cluster_secrets.trusted_signers:
            data["trusted_signers"] = cluster_secrets.trusted_signers
        data.update(_registry_fields(cluster_secrets))
        body = yaml.dump(data, Dumper=_LiteralDumper, sort_keys=False, width=200)
        return WORKER_HEADER.format(cluster=cluster_secrets.cluster) + body
    data = {
        "format": SECRETS_FORMAT,
        "cluster": cluster_secrets.cluster,
        "bootstrap_token": cluster_secrets.bootstrap_token,
        "certificate_key": cluster_secrets.certificate_key,
        "keepalived_password": cluster_secrets.keepalived_password,
        "ca_cert_hash": cluster_secrets.ca_cert_hash,
        "ca_cert": cluster_secrets.ca_cert_pem,
        "ca_key": cluster_secrets.ca_key_pem,
    }
    if cluster_secrets.trusted_signers:
        data["trusted_signers"] = cluster_secrets.trusted_signers
    data.update(_registry_fields(cluster_secrets))
    body = yaml.dump(data, Dumper=_LiteralDumper, sort_keys=False, width=200)
    return HEADER.format(cluster=cluster_secrets.cluster) + body


def _registry_fields(cluster_secrets: ClusterSecrets) -> Dict[str, str]:
    if not cluster_secrets.registry_username:
        return {}
    return {
        "registry_username": cluster_secrets.registry_username,
        "registry_password": cluster_secrets.registry_password,
    }


class _LiteralDumper(yaml.SafeDumper):
    """PEM blocks as YAML literal blocks, so the file reads like the PEM files it holds."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_text)


def write_secrets(path: Path, cluster_secrets: ClusterSecrets) -> None:
    """Write once, 0600, atomically; existing secrets are never replaced (a cluster depends on them)."""
    path = Path(path)
    if path.exists():
        raise InstallError(f"{path}: secrets already exist and belong to a cluster; keep them (nothing was written)")
    write_atomically(path, secrets_text(cluster_secrets).encode(), mode=0o600)


MAX_SECRETS_BYTES = 64 * 1024  # a secrets file is about 7 KiB


def load_secrets(path: Path, cluster: str) -> LoadedSecrets:
    where = str(path)
    try:
        info = Path(path).stat()
        data = read_small_file(Path(path), MAX_SECRETS_BYTES)
        if data is None:
            raise InstallError(f"{where}: more than {MAX_SECRETS_BYTES // 1024} KiB: not a cluster secrets file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise InstallError(
            f"{where}: no secrets file; it is written with cluster.yaml by "
            "`bundler cluster init`; copy it to this node (mode 0600)"
        ) from None
    except UnicodeDecodeError as error:
        raise InstallError(f"{where}: not UTF-8 text ({error.reason}); restore it from your backup copy") from None
    except OSError as error:
        raise InstallError(f"{where}: cannot read the secrets file: {error.strerror}") from None
    warnings = []
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"{where}: readable by others (mode {stat.S_IMODE(info.st_mode):04o}): `chmod 600` it "
            "(files on a FAT stick cannot be protected: copy it to /root first)"
        )
    try:
        data = load_yaml(text, allow_aliases=True)
    except yaml.YAMLError as error:
        problem = yaml_problem(error)
        raise InstallError(f"{where}: not valid YAML ({problem}); restore it from your backup copy") from None
    return LoadedSecrets(parse_secrets(data, where, cluster), warnings)


def password_weakness(password: str) -> str:
    """Why a VRRP password is refused, or "" when it is fit: exactly 8 letters or digits, not a known or
    repetitive one (any host on the segment that guesses it can take the VIP)."""
    if len(password) > 8 and KEEPALIVED_PASSWORD.match(password[:8]):
        return f"{len(password)} characters, of which keepalived uses only the first 8"
    if not KEEPALIVED_PASSWORD.match(password):
        return "not 8 letters or digits" if len(password) >= 8 else f"only {len(password)} character(s)"
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:])}
    if password.lower() in GUESSABLE_PASSWORDS or len(set(password.lower())) < 4 or steps <= {1} or steps <= {-1}:
        return "a guessable password"
    return ""


def parse_secrets(data: Any, where: str, cluster: str) -> ClusterSecrets:
    if not isinstance(data, dict):
        raise InstallError(f"{where}: not a cluster secrets file")
    worker_only = data.get("scope") == WORKER
    fields: Dict[str, str] = {"certificate_key": "", "keepalived_password": "", "ca_key": ""}
    keys = WORKER_KEYS if worker_only else (*WORKER_KEYS, "certificate_key", "keepalived_password", "ca_key")
    for key in keys:
        value = data.get(key)
        if value is None or value == "":
            typo = difflib.get_close_matches(key, [str(other) for other in data if other not in keys], n=1)
            hint = f" (is {typo[0]} a typo of it?)" if typo else ""
            raise InstallError(f"{where}: {key}: missing{hint}; restore the file from your backup copy")
        if not isinstance(value, str):
            raise InstallError(f"{where}: {key}: must be a string, got {type(value).__name__}; restore the file")
        fields[key] = value
    if fields["cluster"] != cluster:
        raise InstallError(
            f"{where}: cluster: these secrets are for cluster {fields['cluster']!r}, "
            f"cluster.yaml names {cluster!r}: use the secrets written with that cluster.yaml"
        )
    checks = (
        ("bootstrap_token", TOKEN, "[a-z0-9]{6}.[a-z0-9]{16}"),
        ("certificate_key", CERTIFICATE_KEY, "64 hex digits"),
        ("ca_cert_hash", CA_HASH, "sha256:<64 hex>"),
    )
    for key, pattern, shape in checks:
        if worker_only and key == "certificate_key":
            continue
        if not pattern.match(fields[key]):
            raise InstallError(f"{where}: {key}: not in the form {shape}")
    if not worker_only:
        weakness = password_weakness(fields["keepalived_password"])
        if weakness:
            raise InstallError(f"{where}: keepalived_password: {weakness}: {PASSWORD_ADVICE}")
    if not worker_only and "PRIVATE KEY-----" not in fields["ca_key"]:
        raise InstallError(f"{where}: ca_key: not a PEM private key")
    signers = _signers_field(data, where)
    username, password = _registry_credentials(data, where)
    actual = ca_cert_hash(fields["ca_cert"], f"{where}: ca_cert")
    if actual != fields["ca_cert_hash"]:
        raise InstallError(f"{where}: ca_cert_hash does not match ca_cert ({actual}): the file was altered")
    return ClusterSecrets(
        cluster=fields["cluster"],
        bootstrap_token=fields["bootstrap_token"],
        certificate_key=fields["certificate_key"],
        keepalived_password=fields["keepalived_password"],
        ca_cert_pem=fields["ca_cert"],
        ca_key_pem=fields["ca_key"],
        ca_cert_hash=fields["ca_cert_hash"],
        scope=WORKER if worker_only else FULL,
        trusted_signers=signers,
        registry_username=username,
        registry_password=password,
    )


def _registry_credentials(data: Dict[str, Any], where: str) -> Tuple[str, str]:
    """registry_username and registry_password (both or neither): the site registry's pull account."""
    found: Dict[str, str] = {}
    for key in REGISTRY_KEYS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise InstallError(f"{where}: {key}: must be a string; quote it")
        text = str(value)
        if any(character in text for character in "\r\n\t\0") or text != text.strip():
            raise InstallError(f"{where}: {key}: has spaces at its ends or control characters; write it on one line")
        found[key] = text
    if len(found) == 1:
        missing = next(key for key in REGISTRY_KEYS if key not in found)
        raise InstallError(
            f"{where}: {missing}: missing; the site registry's account needs both {' and '.join(REGISTRY_KEYS)}"
        )
    return found.get("registry_username", ""), found.get("registry_password", "")


def _signers_field(data: Dict[str, Any], where: str) -> str:
    value = data.get("trusted_signers")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InstallError(f"{where}: trusted_signers: not a block of allowed_signers lines")
    return validate_signers(value, f"{where}: trusted_signers")


def recorded_signers(path: Path) -> Optional[TrustedSigners]:
    """The trusted signers recorded in a secrets file, read before the bundle (and so its cluster.yaml) is
    trusted: only this field is taken; the rest is checked later, as always (a missing file too)."""
    if not Path(path).exists():
        return None
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"), allow_aliases=True)
    except (OSError, UnicodeDecodeError) as error:
        raise InstallError(f"{path}: cannot read the secrets file: {error}") from None
    except yaml.YAMLError:
        raise InstallError(f"{path}: not valid YAML; restore it from your backup copy") from None
    if not isinstance(data, dict):
        raise InstallError(f"{path}: not a cluster secrets file")
    signers = _signers_field(data, str(path))
    return TrustedSigners(signers, f"{path}: trusted_signers") if signers else None
