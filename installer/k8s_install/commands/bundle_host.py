"""`--bundle-url https://HOST:PORT`: fill this node's bundle folder from the bundle host before any command
reads it. The host's certificate is checked against the cluster CA of the secrets file (ca_cert, in the
worker-only file too) or `--bundle-ca FILE`; there is no way to skip the check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Tuple

import yaml

from k8s_install.bundle_format.signature import TrustedSigners
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.bundle_url.client import BundleHost
from k8s_install.bundle_url.fetch import FetchReport, fetch_bundle
from k8s_install.errors import InstallError
from k8s_install.node.host import Host


def cluster_ca(args: argparse.Namespace, root: Path, host: Host) -> Tuple[str, str]:
    """(PEM, where it came from): --bundle-ca FILE, else ca_cert of the secrets file this node uses. Only that
    field is taken here; the whole file is checked later, as always."""
    if getattr(args, "bundle_ca", None):
        path = Path(args.bundle_ca)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as error:
            raise InstallError(f"--bundle-ca {path}: cannot read the CA certificate: {error}") from None
    from k8s_install.commands.secrets_file import find_secrets

    found = find_secrets(args, root, host, getattr(args, "role", None) or "worker")
    if found is None or not found.is_file():
        raise InstallError(
            f"--bundle-url: no cluster secrets file to take the cluster CA from (looked beside {root}); copy "
            "cluster-secrets-worker.yaml there, or pass --secrets FILE, or --bundle-ca FILE"
        )
    try:
        data = load_yaml(found.read_text(encoding="utf-8"), allow_aliases=True)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InstallError(f"{found}: cannot read the cluster secrets ({error}); restore the file") from None
    pem = data.get("ca_cert") if isinstance(data, dict) else None
    if not isinstance(pem, str) or not pem.strip():
        raise InstallError(f"{found}: ca_cert: missing; restore the file, or pass --bundle-ca FILE")
    return pem, f"{found} (ca_cert)"


def fetch_for_node(args: argparse.Namespace, host: Host, root: Path, signers: Optional[TrustedSigners]) -> FetchReport:
    """Fetch what this node's role needs (--role; every file without one) into `root`: the report names the files
    it must hold and carries the signature proof for the folder's verification."""
    pem, where = cluster_ca(args, root, host)
    bundle_host = BundleHost(args.bundle_url, pem, where)
    return fetch_bundle(bundle_host, root, signers, getattr(args, "role", None))
