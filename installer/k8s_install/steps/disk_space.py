"""The free space this plan needs, per filesystem, checked in preflight before any change.

Each part of an install writes to its own place: the images to containerd's root, the RPMs to /usr, the
runtime binaries to /usr/local and /opt/cni, the configuration to /etc, the installer's state and backups to
/var/lib/k8s-install, and the kubelet and etcd work under /var/lib. Those places may be one filesystem or
several (a separate /var, a small /var/lib/containerd volume): the needs are added up per filesystem, and
each filesystem that lacks space gets named with the paths it holds, what they need and what is available.

Only what this run still has to write counts, so a re-run of an installed node is not refused for the
space its own images take: image blobs already in containerd's content store, RPMs already installed and a
runtime already installed from this release are left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from k8s_install.bundle_format.layout import IMAGES_DIR
from k8s_install.engine import Node
from k8s_install.errors import InstallError
from k8s_install.node import facts
from k8s_install.steps.containerd import containerd_root_dir
from k8s_install.units import human_size

MiB, GiB = 1024**2, 1024**3
UNPACKED = 3  # containerd keeps a layer compressed (1x) and unpacked in a snapshot (about 2x); an RPM installed
WORK_SPACE = 2 * GiB  # kubelet, etcd, pod logs under /var/lib: what a node needs to run at all
CONFIG_SPACE = 16 * MiB  # /etc: the rendered configuration
STATE_SPACE = 16 * MiB  # /var/lib/k8s-install: the state file and the originals it keeps
CONTENT_STORE = "io.containerd.content.v1.content/blobs/sha256"  # containerd's blobs, by digest
RUNTIME_FOLDERS = {"containerd": "/usr/local/bin", "runc": "/usr/local/sbin", "cni-plugins": "/opt/cni/bin",
                   "buildkit": "/usr/local/bin", "nerdctl": "/usr/local/bin", "crictl": "/usr/local/bin",
                   "helm": "/usr/local/bin"}  # fmt: skip


class SpaceNeed(NamedTuple):
    path: str  # absolute on the node
    size: int
    what: str


def image_blobs_missing(node: Node) -> int:
    """Bytes of the bundle's image blobs that containerd's content store does not hold yet (0 when this run
    imports no images: a --root run without --containerd-address)."""
    if not node.bundle.images() or (not node.host.live and not node.settings.containerd_address):
        return 0
    blobs = node.bundle.root / IMAGES_DIR / "blobs" / "sha256"
    store = node.host.path(f"{containerd_root_dir}/{CONTENT_STORE}")
    try:
        names = os.listdir(blobs)
    except OSError:
        return 0  # verify would have said so
    return sum((blobs / name).stat().st_size for name in names if not (store / name).exists())


def rpms_to_install(node: Node) -> int:
    """Bytes of the bundle's RPM files this run still installs (rpm -q says which), or of its .debs (dpkg-query)."""
    manifest = node.bundle.manifest
    if manifest.deb_repository is not None:
        from k8s_install.packages.apt import plan_debs

        try:
            names = {change.name for change in plan_debs(node.bundle, node.host) if change.install}
        except InstallError:
            return 0  # the packages step says what is wrong
        return sum(deb.size for deb in manifest.debs if deb.name in names)
    if not manifest.rpms:
        return 0
    from k8s_install.packages.dnf import plan_packages
    from k8s_install.steps.packages import logged_runner

    try:
        pending = {change.nevra for change in plan_packages(node.bundle, node.host.root, logged_runner(node))}
    except InstallError:
        return 0  # no rpm here: the assumed-rpms check and the packages step say so

    return sum(rpm.size for rpm in manifest.rpms if rpm.nevra in pending)


def runtime_needs(node: Node) -> List[SpaceNeed]:
    """The runtime tarballs unpacked, unless this release's runtime is installed already."""
    if node.state.data.get("completed") and node.state.data.get("kubernetes") == node.bundle.kubernetes:
        return []
    found: Dict[str, int] = {}
    for artifact in node.bundle.manifest.artifacts:
        folder = RUNTIME_FOLDERS.get(artifact.name)
        if folder is not None:
            found[folder] = found.get(folder, 0) + UNPACKED * artifact.size
    return [SpaceNeed(folder, size, "the runtime binaries") for folder, size in found.items()]


def space_needs(node: Node) -> List[SpaceNeed]:
    needs = [
        SpaceNeed("/var/lib", WORK_SPACE, "kubelet, etcd and logs"),
        SpaceNeed("/etc", CONFIG_SPACE, "the configuration"),
        SpaceNeed("/var/lib/k8s-install", STATE_SPACE, "the installer's state and backups"),
        SpaceNeed(containerd_root_dir, UNPACKED * image_blobs_missing(node), "the images"),
        SpaceNeed("/usr", UNPACKED * rpms_to_install(node), "the packages"),
        *runtime_needs(node),
    ]
    return [need for need in needs if need.size > 0]


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def short_filesystems(node: Node, needs: List[SpaceNeed]) -> List[Tuple[List[SpaceNeed], int]]:
    """The filesystems without room for what they get: (the needs they hold, bytes available)."""
    by_filesystem: Dict[int, List[SpaceNeed]] = {}
    available: Dict[int, int] = {}
    for need in needs:
        where = existing_ancestor(node.host.path(need.path))
        device = facts.filesystem_id(where)
        by_filesystem.setdefault(device, []).append(need)
        available.setdefault(device, facts.disk_free(where))
    return [
        (held, available[device])
        for device, held in by_filesystem.items()
        if sum(need.size for need in held) > available[device]
    ]


def shortage_line(held: List[SpaceNeed], free: int) -> str:
    paths = ", ".join(need.path for need in held)
    total = sum(need.size for need in held)
    parts = ", ".join(f"{need.what} {human_size(need.size)}" for need in held)
    where = f"{paths} (one filesystem)" if len(held) > 1 else paths
    return f"{where}: needs {human_size(total)} free ({parts}), {human_size(free)} available"


def check_disk(node: Node) -> Optional[str]:
    short = short_filesystems(node, space_needs(node))
    if not short:
        return None
    lines = "; ".join(shortage_line(held, free) for held, free in short)
    return f"{lines}: free space there or grow the filesystem, then run again"
