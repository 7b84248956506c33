"""`bundler build --cluster FILE`: the validated cluster.yaml goes into the bundle; its secrets do not.

The secrets file (bootstrap token, certificate key, CA key, VRRP password) stays out on purpose: a
bundle is a reproducible, checksummed, shareable artifact that may sit on a USB stick or a file share,
tar modes are lost on FAT sticks and non-root extraction, and whoever reads the CA key owns the cluster.
The operator carries cluster-secrets.yaml separately (mode 0600) to the nodes.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Tuple

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME
from k8s_install.bundle_format.model import REGISTRY_CA, ClusterConfigFile
from k8s_install.cluster.config import load_cluster_config

SECRET_MARKERS = ("bootstrap_token", "certificate_key", "PRIVATE KEY", "keepalived_password")


def cluster_kubernetes(path: Path) -> str:
    """The `kubernetes_version` a cluster.yaml names: `build --cluster FILE` needs no `--k8s`."""
    return load_cluster_config(path).config.kubernetes_version  # an ErrorList: main prints every line


def add_cluster_files(context: BuildContext) -> Tuple[ClusterConfigFile, ...]:
    """Validate --cluster against the release (before any download) and add it as cluster.yaml, with the site
    registry's CA file it names beside it; returns their entries in bundle.yaml (none without --cluster)."""
    path = context.options.cluster
    if path is None:
        return ()
    loaded = load_cluster_config(path, context.release.kubernetes)  # an ErrorList: main prints every line
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BundlerError(f"{path}: cannot read: {error.strerror}") from None
    text = data.decode("utf-8", "replace")
    if any(marker in text for marker in SECRET_MARKERS):
        raise BundlerError(
            f"{path}: looks like it holds cluster secrets; bundles never carry secrets: "
            "pass cluster.yaml, and carry cluster-secrets.yaml separately"
        )
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    context.contents.add_bytes(CLUSTER_CONFIG_NAME, data)
    name = loaded.config.name
    entries = [ClusterConfigFile(CLUSTER_CONFIG_NAME, hashlib.sha256(data).hexdigest(), len(data), name)]
    registry = loaded.config.registry
    if registry is not None and registry.ca_file:  # checked to be certificates only by load_cluster_config
        ca = registry.ca_pem.encode()
        context.contents.add_bytes(registry.ca_file, ca)  # beside cluster.yaml, where the nodes look for it
        entries.append(ClusterConfigFile(registry.ca_file, hashlib.sha256(ca).hexdigest(), len(ca), name, REGISTRY_CA))
    return tuple(entries)
