"""Container images into the bundle's OCI layout (images/), recorded in bundle.yaml `images:`.

For each image: resolve the tag to a manifest (from an index, the bundle arch's platform manifest; never
attestations), or, with `--lock`, fetch exactly the manifest digest the lock names. Then every config and
layer blob is fetched once (shared layers once overall), verified against its digest, and referenced from
the cache.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from bundler.oci.auth import load_credentials
from bundler.oci.layout import OCI_MANIFEST, StoredBlob, StoredImage, add_layout, as_oci_manifest
from bundler.oci.platform import check_config_platform, select_manifest
from bundler.oci.reference import ImageRef, is_digest
from bundler.oci.registry import MANIFEST_TYPES, Manifest, RegistryClient
from bundler.oci.transport import RegistryOptions, parse_mirrors
from bundler.progress import Progress, human_size
from bundler.sources.image_list import collect_images


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
    extra, fetch = context.options.extra, context.options.fetch
    insecure = frozenset(extra.get("insecure_registries", []))
    return RegistryOptions(
        ca_bundle=fetch.ca_bundle,
        timeout=fetch.timeout,
        retries=fetch.retries,
        backoff=fetch.backoff,
        insecure=insecure,
        mirrors=parse_mirrors(extra.get("registry_mirrors", []), insecure),
        credentials=load_credentials(extra.get("registry_auth", [])),
    )


def lock_pins(context: BuildContext) -> Optional[Dict[str, Dict[str, Any]]]:
    """name -> the lock's entry, or None without --lock."""
    if context.options.lock is None:
        return None
    lock = context.lock
    entries = lock.get("images") or []
    if entries and lock.get("arch") != context.arch:
        raise BundlerError(
            f"{context.options.lock}: the lock was built for {lock.get('arch')}, this build is "
            f"{context.arch}; image digests are per platform: use the same --arch"
        )
    pins: Dict[str, Dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not is_digest(str(entry.get("digest"))) or not entry.get("name"):
            raise BundlerError(f"{context.options.lock}: every images entry needs a name and a sha256 digest")
        pins[str(entry["name"])] = entry
    return pins


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict) or not is_digest(str(value.get("digest"))) or not isinstance(value.get("size"), int):
        raise BundlerError(f"{what}: the manifest has a descriptor without a sha256 digest and a size")
    return Descriptor(str(value["digest"]), int(value["size"]))


def resolve(client: RegistryClient, ref: ImageRef, arch: str, pin: Optional[Dict[str, Any]]) -> ResolvedImage:
    what = ref.name
    index_digest: Optional[str] = None
    platform: Dict[str, str] = {}
    if pin is not None:  # the registry's digest: source_digest when the bundle holds the OCI form
        manifest = client.manifest(ref, str(pin.get("source_digest") or pin["digest"]))
        index_digest = pin.get("index_digest")
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
    with ThreadPoolExecutor(max_workers=max(1, context.options.jobs)) as pool:
        futures = [pool.submit(resolve, client, ref, context.arch, pins[ref.name] if pins else None) for ref in refs]
        return [future.result() for future in futures]


def _fetch_layers(context: BuildContext, client: RegistryClient, images: List[ResolvedImage]) -> List[StoredBlob]:
    wanted: Dict[str, Tuple[ImageRef, Descriptor]] = {}
    for image in images:
        for layer in image.layers:
            wanted.setdefault(layer.digest, (image.ref, layer))
    progress = Progress(len(wanted))
    stored: List[StoredBlob] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, context.options.jobs)) as pool:
            futures = {}
            for digest, (ref, layer) in sorted(wanted.items()):
                label = f"{ref.repository.rsplit('/', 1)[-1]} {digest[7:19]}"
                future = pool.submit(client.blob, ref, digest, layer.size, progress.tracker(label))
                futures[future] = (label, layer)
            for future, (label, layer) in futures.items():
                path = future.result()
                progress.finished(label, layer.size, False)
                stored.append(StoredBlob(layer.digest, layer.size, path))
    finally:
        progress.close()
    return stored


def _layout_manifest(client: RegistryClient, image: ResolvedImage) -> Tuple[StoredBlob, str]:
    """The manifest as the layout holds it: Docker schema2 in its OCI form (see bundler/oci/layout.py)."""
    converted = as_oci_manifest(image.manifest.data, image.manifest.media_type)
    if converted is None:
        path = client.store_bytes(image.manifest.data, image.manifest.digest)
        return StoredBlob(image.manifest.digest, image.manifest.size, path), image.manifest.media_type
    digest = "sha256:" + hashlib.sha256(converted).hexdigest()
    return StoredBlob(digest, len(converted), client.store_bytes(converted, digest)), OCI_MANIFEST


def fetch_images(context: BuildContext) -> None:
    refs = collect_images(context)
    if not refs:
        return
    client = RegistryClient(context.cache, registry_options(context))
    resolved = _resolve_all(context, client, refs)
    blobs = _fetch_layers(context, client, resolved)
    stored_images = []
    records = []
    for image in sorted(resolved, key=lambda i: i.ref.name):
        config_path = context.cache.path_for(image.config.digest.split(":", 1)[1])
        blobs.append(StoredBlob(image.config.digest, image.config.size, config_path))
        manifest = _layout_manifest(client, image)
        stored = StoredImage(image.ref.name, manifest[1], manifest[0], image.platform)
        stored_images.append(stored)
        record: Dict[str, Any] = {
            "name": image.ref.name,
            "digest": manifest[0].digest,
            "media_type": manifest[1],
            "platform": "/".join(image.platform[k] for k in ("os", "architecture", "variant") if image.platform.get(k)),
            "size": manifest[0].size + image.config.size + sum(layer.size for layer in image.layers),
        }
        if manifest[0].digest != image.manifest.digest:
            record["source_digest"] = image.manifest.digest  # the registry's Docker schema2 manifest
        if image.index_digest:
            record["index_digest"] = image.index_digest
        records.append(record)
    add_layout(context.contents, stored_images, blobs)
    context.record["images"] = records
    total = sum(blob.size for blob in {b.digest: b for b in blobs}.values())
    unique = len({blob.digest for blob in blobs})
    print(
        f"  images: {len(records)} in images/ ({unique} blobs, {human_size(total)})",
        file=sys.stderr,
        flush=True,
    )
