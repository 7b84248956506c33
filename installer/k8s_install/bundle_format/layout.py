"""Names of every part of a bundle folder, shared by the builder and the installer."""

from __future__ import annotations

from typing import Optional

BUNDLE_FORMAT = 1
INSTALLER_NAME = "k8s-install.pyz"
MANIFEST_NAME = "bundle.yaml"
SUMS_NAME = "SHA256SUMS"
SIGNATURE_NAME = "SHA256SUMS.sig"  # OpenSSH signature of SHA256SUMS; beside it, never listed in it
SIGNATURE_NAMESPACE = "k8s-bundle@offline-bundler"  # ssh-keygen -Y sign/verify -n: a bundle signature only
SBOM_NAME = "sbom.spdx.json"  # SPDX 2.3 JSON of everything the bundle holds
DELTA_NAME = "DELTA.yaml"  # only in a delta bundle: the base it needs; removed once completed from that base
CLUSTER_CONFIG_NAME = "cluster.yaml"
SECRETS_NAME = "cluster-secrets.yaml"  # never in a bundle: carried apart, 0600
WORKER_SECRETS_NAME = "cluster-secrets-worker.yaml"  # what workers need: token and CA pin only
FILES_DIR = "files"
IMAGES_DIR = "images"
RPMS_DIR = "rpms"
DEBS_DIR = "debs"  # Debian/Ubuntu targets: a flat apt repository
CHARTS_DIR = "charts"  # Helm charts (build --chart): a chart repository, its index.yaml written by the build
CHART_INDEX = f"{CHARTS_DIR}/index.yaml"
PLAIN_FILES_DIR = f"{FILES_DIR}/plain"  # the operator's own files (build --file)


def bundle_dir_name(kubernetes: str, os_id: str, arch: str, cluster: Optional[str] = None) -> str:
    """The top folder inside the tarball, also the tarball's stem: the OS as the build was asked for it (rhel9,
    not the rocky9 target it shares), and the cluster's name when the bundle carries its cluster.yaml, so two
    clusters of one release never overwrite each other's bundle."""
    return f"k8s-bundle-{kubernetes}-{os_id}-{arch}" + (f"-{cluster}" if cluster else "")
