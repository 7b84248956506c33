"""`bundler build --cluster FILE`: the validated cluster.yaml goes into the bundle; its secrets do not.

The secrets file (bootstrap token, certificate key, CA key, VRRP password) stays out on purpose: a
bundle is a reproducible, checksummed, shareable artifact that may sit on a USB stick or a file share,
tar modes are lost on FAT sticks and non-root extraction, and whoever reads the CA key owns the cluster.
The operator carries cluster-secrets.yaml separately (mode 0600) to the nodes.
"""

from __future__ import annotations

import hashlib
import sys

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME
from k8s_install.cluster.config import load_cluster_config

SECRET_MARKERS = ("bootstrap_token", "certificate_key", "PRIVATE KEY", "keepalived_password")


def add_cluster_config(context: BuildContext) -> None:
    """Validate --cluster against the release (before any download) and add it as cluster.yaml."""
    path = context.options.cluster
    if path is None:
        return
    try:
        loaded = load_cluster_config(path, context.release.kubernetes)
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
    entry = {
        "name": "cluster-config",
        "path": CLUSTER_CONFIG_NAME,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "cluster": loaded.config.name,
    }
    context.record.setdefault("extras", []).append(entry)
