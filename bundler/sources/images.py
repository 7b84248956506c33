"""Container images into the bundle's OCI layout (images/), recorded in bundle.yaml `images:`.

The plan: for each image, resolve the tag to a manifest (from an index, the bundle arch's platform manifest;
never attestations), or, with `--lock`, take exactly the manifest digest the lock names (from the cache when
it is there: no request). Its config is read now (the platform check); its manifest, config and layers are
the plan's blobs, a layer shared by images once. The one fetch verifies each against its digest; the
layout references them from the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Dict, List, Mapping, Optional, Tuple

from bundler.build_context import BuildContext
from bundler.bundle_manifest import ManifestPart
from bundler.download import Fetched
from bundler.errors import BundlerError
from bundler.oci.auth import load_credentials
from bundler.oci.layout import OCI_MANIFEST, StoredBlob, StoredImage, add_layout, as_oci_manifest, blob_path
from bundler.oci.platform import check_config_platform, select_manifest
from bundler.oci.reference import ImageRef, is_digest
from bundler.oci.registry import MANIFEST_TYPES, Manifest, RegistryClient
from bundler.oci.transport import RegistryOptions, parse_mirrors
from bundler.parallel import parallel_map
from bundler.plan import Blob, ProgressCallback, SourcePlan
from bundler.sources.image_list import collect_images
from k8s_install.bundle_format.model import BundleManifest, Image

KIND = "images"


@dataclass(frozen=True)
class Descriptor:
    digest: str
    size: int


@dataclass(frozen=True)
class ResolvedImage:
    ref: ImageRef
    manifest: Manifest
    index_digest: Optional[str]
    platform: Dict[str, str]
    config: Descriptor
    layers: Tuple[Descriptor, ...]


def registry_options(context: BuildContext) -> RegistryOptions:
    images, fetch = context.options.images, context.options.fetch
    insecure = frozenset(images.insecure_registries)
    return RegistryOptions(
        ca_bundle=fetch.ca_bundle,
        timeout=fetch.timeout,
        retries=fetch.retries,
        backoff=fetch.backoff,
        insecure=insecure,
        mirrors=parse_mirrors(images.registry_mirrors, insecure),
        credentials=load_credentials(images.registry_auth),
        offline=fetch.offline,
    )


def lock_pins(context: BuildContext) -> Optional[Dict[str, Image]]:
    """name -> the lock's entry, or None without --lock."""
    lock: Optional[BundleManifest] = context.lock
    if lock is None:
        return None
    if lock.images and lock.arch != context.arch:
        raise BundlerError(
            f"{context.options.lock}: the lock was built for {lock.arch}, this build is "
            f"{context.arch}; image digests are per platform: use the same --arch"
        )
    pins: Dict[str, Image] = {}
    for entry in lock.images:
        if not is_digest(entry.digest) or not entry.name:
            raise BundlerError(f"{context.options.lock}: every images entry needs a name and a sha256 digest")
        pins[entry.name] = entry
    return pins


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict) or not is_digest(str(value.get("digest"))) or not isinstance(value.get("size"), int):
        raise BundlerError(f"{what}: the manifest has a descriptor without a sha256 digest and a size")
    return Descriptor(str(value["digest"]), int(value["size"]))


def resolve(client: RegistryClient, ref: ImageRef, arch: str, pin: Optional[Image]) -> ResolvedImage:
    what = ref.name
    index_digest: Optional[str] = None
    platform: Dict[str, str] = {}
    if pin is not None:  # the registry's digest: source_digest when the bundle holds the OCI form
        manifest = client.manifest(ref, pin.source_digest or pin.digest)
        index_digest = pin.index_digest
    else:
        manifest = client.manifest(ref)
        if manifest.is_index:
            index_digest = manifest.digest
            chosen = select_manifest(manifest.body, arch, what)
            platform = {
                k: str(v) for k, v in (chosen.get("platform") or {}).items() if k in ("os", "architecture", "variant")
            }
            manifest = client.manifest(ref, str(chosen.get("digest")))
    if manifest.media_type not in MANIFEST_TYPES:
        raise BundlerError(f"{what}: {manifest.digest} is an index where an image manifest was expected")
    config = _descriptor(manifest.body.get("config"), what)
    layers = tuple(_descriptor(layer, what) for layer in manifest.body.get("layers") or [])
    config_path = client.blob(ref, config.digest, config.size)
    try:
        config_body = json.loads(config_path.read_bytes())
    except ValueError:
        raise BundlerError(f"{what}: its config blob {config.digest} is not JSON") from None
    check_config_platform(config_body, arch, what)
    if not platform:
        platform = {"os": config_body["os"], "architecture": config_body["architecture"]}
        if config_body.get("variant"):
            platform["variant"] = str(config_body["variant"])
    client.store_bytes(manifest.data, manifest.digest)
    return ResolvedImage(ref, manifest, index_digest, platform, config, layers)


def _resolve_all(context: BuildContext, client: RegistryClient, refs: List[ImageRef]) -> List[ResolvedImage]:
    pins = lock_pins(context)
    if pins is not None:
        unknown = [ref.name for ref in refs if ref.name not in pins]
        if unknown:
            raise BundlerError(
                f"image {unknown[0]} is not in the lock {context.options.lock} ({len(unknown)} such); "
                "build without --lock to resolve new images"
            )

    def resolve_one(ref: ImageRef) -> ResolvedImage:
        return resolve(client, ref, context.arch, pins[ref.name] if pins else None)

    return parallel_map(resolve_one, refs, context.options.jobs)


def _fetch_blob(
    client: RegistryClient, ref: ImageRef, blob: Descriptor, progress: Optional[ProgressCallback]
) -> Fetched:
    hex_digest = blob.digest.split(":", 1)[1]
    hit = client.cache.holds(hex_digest, blob.size)
    if hit is not None:
        return Fetched(hit, hex_digest, blob.size, True)
    return Fetched(client.blob(ref, blob.digest, blob.size, progress), hex_digest, blob.size, False)


def _layout_manifest(client: RegistryClient, image: ResolvedImage) -> Tuple[StoredBlob, str]:
    """The manifest as the layout holds it: Docker schema2 in its OCI form (see bundler/oci/layout.py)."""
    converted = as_oci_manifest(image.manifest.data, image.manifest.media_type)
    if converted is None:
        path = client.store_bytes(image.manifest.data, image.manifest.digest)
        return StoredBlob(image.manifest.digest, image.manifest.size, path), image.manifest.media_type
    digest = "sha256:" + hashlib.sha256(converted).hexdigest()
    return StoredBlob(digest, len(converted), client.store_bytes(converted, digest)), OCI_MANIFEST


def _plan_blob(client: RegistryClient, ref: ImageRef, blob: Descriptor, label: str) -> Blob:
    hex_digest = blob.digest.split(":", 1)[1]
    return Blob(
        kind="image", name=label, urls=(client.endpoint(ref).url("blobs", blob.digest),), digest=hex_digest,
        algorithm="sha256", size=blob.size, places=(blob_path(blob.digest),),
        cached=client.cache.holds(hex_digest, blob.size) is not None, fetch=partial(_fetch_blob, client, ref, blob),
    )  # fmt: skip


def _short(ref: ImageRef) -> str:
    return ref.name.rsplit("/", 1)[-1]


def plan_images(context: BuildContext) -> SourcePlan:
    """Resolve every image to its manifest and config (small, fetched now); plan its layers."""
    refs = collect_images(context)
    client = RegistryClient(context.cache, registry_options(context))
    resolved = _resolve_all(context, client, refs) if refs else []
    blobs: List[Blob] = []
    for image in resolved:
        manifest = Descriptor(image.manifest.digest, image.manifest.size)
        blobs.append(_plan_blob(client, image.ref, manifest, f"{_short(image.ref)} manifest"))
        blobs.append(_plan_blob(client, image.ref, image.config, f"{_short(image.ref)} config"))
        for layer in image.layers:
            blobs.append(_plan_blob(client, image.ref, layer, f"{_short(image.ref)} layer {layer.digest[7:19]}"))

    def publish(fetched: Mapping[str, Fetched]) -> ManifestPart:
        return ManifestPart(images=publish_images(context, client, resolved, fetched) if resolved else ())

    return SourcePlan(KIND, blobs, publish, {"images": [image.ref.name for image in resolved]})


def publish_images(
    context: BuildContext, client: RegistryClient, resolved: List[ResolvedImage], fetched: Mapping[str, Fetched]
) -> Tuple[Image, ...]:
    def stored(blob: Descriptor) -> StoredBlob:
        return StoredBlob(blob.digest, blob.size, fetched[blob.digest].path)

    blobs: List[StoredBlob] = []
    stored_images = []
    entries = []
    for image in sorted(resolved, key=lambda i: i.ref.name):
        blobs += [stored(image.config)] + [stored(layer) for layer in image.layers]
        manifest = _layout_manifest(client, image)
        stored_images.append(StoredImage(image.ref.name, manifest[1], manifest[0], image.platform))
        converted = manifest[0].digest != image.manifest.digest  # the registry's is a Docker schema2 manifest
        platform = "/".join(image.platform[k] for k in ("os", "architecture", "variant") if image.platform.get(k))
        entries.append(
            Image(
                name=image.ref.name,
                digest=manifest[0].digest,
                media_type=manifest[1],
                platform=platform,
                size=manifest[0].size + image.config.size + sum(layer.size for layer in image.layers),
                source_digest=image.manifest.digest if converted else None,
                index_digest=image.index_digest or None,
            )
        )
    add_layout(context.contents, stored_images, blobs)
    return tuple(entries)
