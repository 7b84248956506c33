"""`config init` / `bundler cluster init`: a commented cluster.yaml and its secrets file, written once."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from k8s_install.bundle_format.layout import SECRETS_NAME, WORKER_SECRETS_NAME
from k8s_install.cluster.config import CONFIG_NAME, parse_cluster_config
from k8s_install.cluster.model import DEFAULT_NAME
from k8s_install.cluster.render import render
from k8s_install.cluster.secrets import generate_secrets, secrets_text, worker_secrets
from k8s_install.errors import InstallError
from k8s_install.node.atomic import write_atomically


class StartingFiles(NamedTuple):
    config: Path
    secrets: Path
    worker_secrets: Path


def starting_config_text(name: str, kubernetes_version: str) -> str:
    text = render("cluster.yaml.j2", name=name, kubernetes_version=kubernetes_version)
    parse_cluster_config(text, "starting cluster.yaml", kubernetes_version)  # it must load as written
    return text


def write_starting_files(
    directory: Path, kubernetes_version: str, name: str = DEFAULT_NAME, trusted_signers: str = ""
) -> StartingFiles:
    """Write cluster.yaml (0644) and cluster-secrets.yaml (0600); refuse if either exists, before writing.
    `trusted_signers` (allowed_signers lines) go into both secrets files."""
    directory = Path(directory)
    config_path, secrets_path = directory / CONFIG_NAME, directory / SECRETS_NAME
    worker_path = directory / WORKER_SECRETS_NAME
    for path in (config_path, secrets_path, worker_path):
        if path.exists():
            raise InstallError(f"{path}: already exists; nothing was written (a cluster's secrets are made once)")
    text = starting_config_text(name, kubernetes_version)
    secrets = generate_secrets(name, trusted_signers)
    write_atomically(secrets_path, secrets_text(secrets).encode(), mode=0o600)
    write_atomically(worker_path, secrets_text(worker_secrets(secrets)).encode(), mode=0o600)
    write_atomically(config_path, text.encode(), mode=0o644)
    return StartingFiles(config_path, secrets_path, worker_path)
