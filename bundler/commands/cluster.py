"""`bundler cluster init` (a commented cluster.yaml plus its secrets file), `bundler cluster check` and
`bundler cluster ansible` (an inventory and a playbook for many nodes).

A user error in cluster.yaml is an InstallError (the checks are the node's own); `main` prints it, every line
of it when the file holds several mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bundler import paths
from k8s_install.bundle_format.layout import SECRETS_NAME, WORKER_SECRETS_NAME
from k8s_install.bundle_format.signature import read_trusted_signers
from k8s_install.cluster.config import load_cluster_config
from k8s_install.cluster.model import DEFAULT_NAME
from k8s_install.cluster.secrets import load_secrets
from k8s_install.cluster.starter import write_starting_files


def run_cluster_init(
    directory: Path, kubernetes: str, name: Optional[str], trusted_signers: Optional[Path] = None
) -> int:
    """`kubernetes` is required on the command line: the release is a choice the operator makes once, here,
    and every later step (the bundle, each node) must match what cluster.yaml says."""
    signers = read_trusted_signers(trusted_signers).text if trusted_signers is not None else ""
    written = write_starting_files(directory, kubernetes, name or DEFAULT_NAME, signers)
    print(f"wrote {written.config} (edit it: nodes, VIP, networks)")
    print(f"wrote {written.secrets} (mode 0600: token, certificate key, CA, VRRP password: control planes)")
    print(f"wrote {written.worker_secrets} (mode 0600: token and CA pin only: workers)")
    if trusted_signers is not None:
        print(f"recorded the trusted signers of {trusted_signers} in both: nodes install only bundles they signed")
    print(
        f"next: bundler build --k8s {kubernetes} --cluster {written.config}; carry {SECRETS_NAME} to the nodes "
        "separately, never inside the bundle"
    )
    return 0


def run_cluster_check(config_path: Path, kubernetes: Optional[str], secrets_path: Optional[Path]) -> int:
    """Every mistake in the file at once. kubernetes_version must equal --k8s (the bundle's release, which may
    come from a manifest of one's own) or, without it, be a release this bundler knows."""
    known = None if kubernetes else paths.supported_versions()
    loaded = load_cluster_config(config_path, kubernetes, known_versions=known)
    config = loaded.config
    warnings = list(loaded.warnings)
    if secrets_path is not None:
        warnings += load_secrets(secrets_path, config.name).warnings
    for warning in warnings:
        print(f"warning: {warning}")
    planes = ", ".join(node.name for node in config.control_planes)
    print(
        f"{config_path}: cluster {config.name}, Kubernetes {config.kubernetes_version}, "
        f"API {config.api_endpoint} "
        f"(VRRP id {config.virtual_router_id}), control planes: {planes}, workers: {len(config.workers)}, "
        f"etcd {config.etcd_topology}, Calico {config.calico.encapsulation}"
    )
    return 0


def run_cluster_ansible(
    config_path: Path,
    tarball: Path,
    output: Path,
    secrets: Optional[Path],
    worker_secrets: Optional[Path],
    **settings: object,
) -> int:
    from k8s_install.cluster.ansible import AnsibleOptions, next_steps, write_ansible

    config = load_cluster_config(config_path).config
    options = AnsibleOptions(
        tarball=tarball,
        secrets=secrets or Path(config_path).parent / SECRETS_NAME,
        worker_secrets=worker_secrets or Path(config_path).parent / WORKER_SECRETS_NAME,
        output=output,
        **settings,  # type: ignore[arg-type]
    )
    written = write_ansible(config, config_path, options)
    for path in written:
        print(f"wrote {path}")
    print(next_steps(written))
    return 0
