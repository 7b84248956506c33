"""`bundler cluster init` (a commented cluster.yaml plus its secrets file) and `bundler cluster check`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bundler import paths
from bundler.errors import BundlerError
from installer.cluster.config import load_cluster_config
from installer.cluster.secrets import load_secrets
from installer.cluster.starter import DEFAULT_NAME, write_starting_files
from installer.errors import InstallError
from installer.layout import SECRETS_NAME
from installer.signature import read_trusted_signers


def newest_supported_version() -> str:
    versions = paths.supported_versions()
    if not versions:
        raise BundlerError(f"no release manifests in {paths.MANIFESTS_DIR}; give --k8s VERSION")
    return max(versions, key=lambda v: tuple(int(part) for part in v.split(".") if part.isdigit()))


def run_cluster_init(
    directory: Path, kubernetes: Optional[str], name: Optional[str], trusted_signers: Optional[Path] = None
) -> int:
    version = kubernetes or newest_supported_version()
    try:
        signers = read_trusted_signers(trusted_signers).text if trusted_signers is not None else ""
        written = write_starting_files(directory, version, name or DEFAULT_NAME, signers)
    except InstallError as error:
        raise BundlerError(str(error)) from None
    print(f"wrote {written.config} (edit it: nodes, VIP, networks)")
    print(f"wrote {written.secrets} (mode 0600: token, certificate key, CA, VRRP password: control planes)")
    print(f"wrote {written.worker_secrets} (mode 0600: token and CA pin only: workers)")
    if trusted_signers is not None:
        print(f"recorded the trusted signers of {trusted_signers} in both: nodes install only bundles they signed")
    print(
        f"next: bundler build --k8s {version} --cluster {written.config}; carry {SECRETS_NAME} to the nodes "
        "separately, never inside the bundle"
    )
    return 0


def run_cluster_check(config_path: Path, kubernetes: Optional[str], secrets_path: Optional[Path]) -> int:
    try:
        loaded = load_cluster_config(config_path, kubernetes)
        config = loaded.config
        warnings = list(loaded.warnings)
        if secrets_path is not None:
            secrets = load_secrets(secrets_path, config.name)
            warnings += secrets.warnings
    except InstallError as error:
        raise BundlerError(str(error)) from None
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
