"""Which files of a bundle a node of a role needs, decided from the typed manifest and the image manifests.

A control plane needs every file. A worker needs every file but these: the control-plane-only artifacts
(Calico's manifest, applied by the first control plane), the Helm charts and the operator's plain files (the
bundle host serves them; no step of a node reads them), the images of the control plane's static pods
(kube-apiserver, kube-controller-manager, kube-scheduler, etcd) and the blobs only they use, and the SBOM
(no step reads it). An image a worker keeps (kube-proxy, pause, CoreDNS, Calico's, workloads') brings its
manifest, config and layers, found by reading its manifest; blobs shared with a control-plane image are kept.
"""

from __future__ import annotations

import dataclasses
import json
from typing import AbstractSet, Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from k8s_install.bundle_format.image_index import INDEX_PATH, blob_relative
from k8s_install.bundle_format.layout import CHARTS_DIR, IMAGES_DIR, SBOM_NAME
from k8s_install.bundle_format.model import BundleManifest, Image
from k8s_install.errors import InstallError

CONTROL_PLANE_ARTIFACTS = ("calico-manifest",)
CONTROL_PLANE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
WORKER_SKIPS = (SBOM_NAME,)
BLOBS_PREFIX = f"{IMAGES_DIR}/blobs/"

Read = Callable[[str], bytes]  # a bundle file, fetched and checked against SHA256SUMS


def is_control_plane_image(image: Image) -> bool:
    """registry.k8s.io/kube-apiserver:v1.30.14 -> True; registry.k8s.io/kube-proxy:v1.30.14 -> False."""
    repository = image.name.rsplit("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return repository.rsplit("/", 1)[-1] in CONTROL_PLANE_IMAGES


def role_images(manifest: BundleManifest, role: Optional[str]) -> List[Image]:
    return [image for image in manifest.images if role != "worker" or not is_control_plane_image(image)]


def role_manifest(manifest: BundleManifest, role: Optional[str]) -> BundleManifest:
    """The manifest as a node of `role` installs it: a worker imports only the images it runs."""
    return dataclasses.replace(manifest, images=tuple(role_images(manifest, role)))


def files_without_blobs(manifest: BundleManifest, sums: AbstractSet[str], role: Optional[str]) -> Set[str]:
    """Every file of SHA256SUMS `role` needs, the image blobs left out (see `image_blobs`)."""
    chosen = {path for path in sums if not path.startswith(BLOBS_PREFIX)}
    if role == "worker":
        skipped = {entry.path for entry in manifest.artifacts if entry.name in CONTROL_PLANE_ARTIFACTS}
        skipped |= {path for path in chosen if path.startswith(f"{CHARTS_DIR}/")}  # the host serves them
        skipped |= {entry.path for entry in manifest.plain_files}
        chosen -= skipped | set(WORKER_SKIPS)
    return chosen


def manifest_blobs(manifest: BundleManifest, role: Optional[str]) -> List[str]:
    """The manifest blob of each image the role imports (what images/index.json names)."""
    found = []
    for image in role_images(manifest, role):
        relative = blob_relative(image.digest)
        if relative is None:
            raise InstallError(f"bundle.yaml: image {image.name} has no sha256 digest; rebuild the bundle")
        found.append(relative)
    return found


def children(document: bytes, where: str) -> List[Tuple[str, bool]]:
    """The blobs an image manifest (config, layers) or an image index (its manifests) names, each with whether
    it is a manifest to read in turn."""
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InstallError(f"{where}: not an image manifest (JSON object); the bundle on the host is damaged")
    entries: List[Tuple[object, bool]] = []
    manifests, layers, config = parsed.get("manifests"), parsed.get("layers"), parsed.get("config")
    entries += [(entry, True) for entry in (manifests if isinstance(manifests, list) else [])]
    entries += [(entry, False) for entry in (layers if isinstance(layers, list) else [])]
    entries += [(config, False)] if config is not None else []
    found = []
    for entry, is_manifest in entries:
        relative = blob_relative(entry.get("digest")) if isinstance(entry, dict) else None
        if relative is None:
            raise InstallError(f"{where}: names a blob without a sha256 digest; the bundle on the host is damaged")
        found.append((relative, is_manifest))
    return found


def image_blobs(manifest: BundleManifest, sums: AbstractSet[str], role: Optional[str], read: Read) -> Set[str]:
    """Every blob the role's images use: their manifests (read, so fetched, first) and what each names."""
    wanted: Set[str] = set()
    pending = [(relative, True) for relative in manifest_blobs(manifest, role)]
    while pending:
        relative, is_manifest = pending.pop()
        if relative in wanted:
            continue
        if relative not in sums:
            raise InstallError(f"{relative}: an image blob not listed in SHA256SUMS; the bundle on the host is damaged")
        wanted.add(relative)
        if is_manifest:
            pending += children(read(relative), relative)
    return wanted


def needed_files(manifest: BundleManifest, sums: Dict[str, str], role: Optional[str], read: Read) -> FrozenSet[str]:
    """What a node of `role` fetches (role None: every file)."""
    chosen = files_without_blobs(manifest, set(sums), role)
    if INDEX_PATH in sums:
        chosen.add(INDEX_PATH)
    return frozenset(chosen | image_blobs(manifest, set(sums), role, read))
