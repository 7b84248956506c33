"""images/index.json against bundle.yaml's images: the same names with the same manifest digests, each manifest
present. Checked by verify, so `images` and `images push` never meet an index that lists other images than
the bundle says (a push would otherwise report success for whatever the index holds, even nothing)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Set

from k8s_install.bundle_format.layout import IMAGES_DIR, MANIFEST_NAME
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.errors import InstallError

INDEX_PATH = f"{IMAGES_DIR}/index.json"
NAME_ANNOTATION = "io.containerd.image.name"
HEX = set("0123456789abcdef")


def blob_relative(digest: Any) -> Optional[str]:
    """images/blobs/sha256/<hex> for a well-formed sha256 digest, else None."""
    algorithm, _, hex_digest = str(digest).partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64 or not set(hex_digest) <= HEX:
        return None
    return f"{IMAGES_DIR}/blobs/sha256/{hex_digest}"


def index_images(index_bytes: bytes, where: str) -> Dict[str, str]:
    """name -> manifest digest of every descriptor in index.json, refusing a malformed one."""
    fix = "re-copy the bundle from the build, or rebuild it"
    try:
        index = json.loads(index_bytes)
    except ValueError:
        raise InstallError(f"{where}: {INDEX_PATH} is not JSON; {fix}") from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise InstallError(f"{where}: {INDEX_PATH} is not an OCI image index (no manifests list); {fix}")
    found: Dict[str, str] = {}
    for position, entry in enumerate(manifests):
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        name = annotations.get(NAME_ANNOTATION) if isinstance(annotations, dict) else None
        if not isinstance(name, str) or blob_relative(entry.get("digest")) is None:
            raise InstallError(f"{where}: {INDEX_PATH} manifests[{position}] lacks an image name or a sha256 digest")
        if not isinstance(entry.get("mediaType"), str):
            raise InstallError(f"{where}: {INDEX_PATH} manifests[{position}] ({name}) has no mediaType; {fix}")
        if name in found:
            raise InstallError(f"{where}: {INDEX_PATH} lists {name} twice; {fix}")
        found[name] = str(entry["digest"])
    return found


def check_manifest_blobs(digest: str, name: str, read: Callable[[str], bytes], present: Set[str], where: str) -> None:
    """The config and layers an image manifest names are well-formed descriptors, all present."""
    relative = blob_relative(digest)
    try:
        document = json.loads(read(str(relative)))
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise InstallError(f"{where}: {relative}, the manifest of {name}, is not a JSON object; re-copy the bundle")
    if "manifests" in document:
        return  # an image index: the builder keeps the platform's manifest only, which index.json names
    layers = document.get("layers") or []
    children = ([document.get("config")] if "config" in document else []) + (
        layers if isinstance(layers, list) else [layers]
    )
    for child in children:
        if not isinstance(child, dict) or blob_relative(child.get("digest")) is None:
            raise InstallError(
                f"{where}: the manifest of {name} names a blob without a sha256 digest; re-copy the bundle"
            )
        child_path = blob_relative(child["digest"])
        if child_path not in present:
            raise InstallError(f"{where}: {child_path}, a blob of {name}, is missing; re-copy the bundle")


def check_image_index(
    manifest: BundleManifest,
    index_bytes: Optional[bytes],
    present: Set[str],
    where: str,
    read: Optional[Callable[[str], bytes]] = None,
) -> None:
    declared = {image.name: image.digest for image in manifest.images}
    if index_bytes is None:
        if declared:
            raise InstallError(f"{where}: {MANIFEST_NAME} lists {len(declared)} image(s) but there is no {INDEX_PATH}")
        return
    listed = index_images(index_bytes, where)
    for name in sorted(set(declared) | set(listed)):
        if declared.get(name) != listed.get(name):
            raise InstallError(
                f"{where}: {INDEX_PATH} and {MANIFEST_NAME} disagree on image {name} "
                f"({INDEX_PATH}: {listed.get(name, 'absent')}, {MANIFEST_NAME}: {declared.get(name, 'absent')}); "
                "re-copy the bundle from the build"
            )
        relative = blob_relative(listed[name])
        if relative not in present:
            raise InstallError(f"{where}: {relative}, the manifest of {name}, is missing; re-copy the bundle")
        if read is not None:  # the manifest is at hand: each blob it names must be too
            check_manifest_blobs(listed[name], name, read, present, where)
