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
from typing import Optional

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME
from k8s_install.bundle_format.model import ClusterConfigFile
from k8s_install.cluster.config import load_cluster_config

SECRET_MARKERS = ("bootstrap_token", "certificate_key", "PRIVATE KEY", "keepalived_password")


def cluster_kubernetes(path: Path) -> str:
    """The `kubernetes_version` a cluster.yaml names: `build --cluster FILE` needs no `--k8s`."""
    return load_cluster_config(path).config.kubernetes_version  # an ErrorList: main prints every line


def add_cluster_config(context: BuildContext) -> Optional[ClusterConfigFile]:
    """Validate --cluster against the release (before any download) and add it as cluster.yaml; returns its
    entry in bundle.yaml."""
    path = context.options.cluster
    if path is None:
        return None
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
    return ClusterConfigFile(CLUSTER_CONFIG_NAME, hashlib.sha256(data).hexdigest(), len(data), loaded.config.name)
