"""The bundle's one OCI image layout at images/: `oci-layout`, `index.json`, shared `blobs/sha256/`.

index.json holds one manifest descriptor per image, annotated with its full name
(`io.containerd.image.name`, which `ctr images import` uses as is, and `org.opencontainers.image.ref.name`).
A blob used by several images is stored once. Blobs are referenced from the cache, never copied.

Docker schema2 manifests are written in their OCI form (`as_oci_manifest`, what `skopeo copy --format oci`
does: the same config and layer blobs, OCI media types): the containers/image tools (skopeo, podman,
buildah) and umoci only see OCI manifests in a layout, while containerd reads both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from bundler.bundle_writer import BundleContents
from k8s_install.bundle_format.layout import IMAGES_DIR

CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_TO_OCI = {
    "application/vnd.docker.container.image.v1+json": "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}  # fmt: skip
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


@dataclass(frozen=True)
class StoredBlob:
    digest: str  # sha256:<hex>
    size: int
    path: Path  # verified file in the cache


@dataclass(frozen=True)
class StoredImage:
    name: str
    media_type: str
    manifest: StoredBlob
    platform: Dict[str, str]


def as_oci_manifest(data: bytes, media_type: str) -> Optional[bytes]:
    """The OCI form of a Docker schema2 manifest (same blobs), or None when it is already OCI or has a
    blob type without an OCI equivalent (then it stays as it is)."""
    if media_type != DOCKER_MANIFEST:
        return None
    body = json.loads(data)
    descriptors = [body.get("config") or {}] + list(body.get("layers") or [])
    if any(descriptor.get("mediaType") not in DOCKER_TO_OCI for descriptor in descriptors):
        return None

    def convert(descriptor: Dict[str, object]) -> Dict[str, object]:
        return {**descriptor, "mediaType": DOCKER_TO_OCI[str(descriptor["mediaType"])]}

    converted: Dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": convert(body["config"])}
    converted["layers"] = [convert(layer) for layer in body.get("layers") or []]
    if body.get("annotations"):
        converted["annotations"] = body["annotations"]
    return json.dumps(converted, separators=(",", ":")).encode()


def blob_path(digest: str) -> str:
    algorithm, hex_digest = digest.split(":", 1)
    return f"{IMAGES_DIR}/blobs/{algorithm}/{hex_digest}"


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def index_document(images: List[StoredImage]) -> Dict[str, object]:
    manifests = []
    for image in sorted(images, key=lambda i: i.name):
        manifests.append(
            {
                "mediaType": image.media_type,
                "digest": image.manifest.digest,
                "size": image.manifest.size,
                "annotations": {CONTAINERD_NAME: image.name, OCI_REF_NAME: image.name},
                "platform": image.platform,
            }
        )
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


def add_layout(contents: BundleContents, images: List[StoredImage], blobs: List[StoredBlob]) -> Optional[str]:
    """Add the layout to the bundle; returns the folder name, or None when there are no images."""
    if not images:
        return None
    unique: Dict[str, StoredBlob] = {}
    for blob in [image.manifest for image in images] + list(blobs):
        unique.setdefault(blob.digest, blob)
    for digest, blob in sorted(unique.items()):
        contents.add_file(blob_path(digest), blob.path, digest.split(":", 1)[1], blob.size)
    contents.add_bytes(f"{IMAGES_DIR}/oci-layout", _json_bytes(LAYOUT_VERSION))
    contents.add_bytes(f"{IMAGES_DIR}/index.json", _json_bytes(index_document(images)))
    return IMAGES_DIR
