"""The OCI distribution API: manifests and blobs, each verified against its sha256 digest.

Manifests are small and read whole; blobs stream to a partial file in the cache, resume with Range after a
dropped connection, and enter the cache (keyed by their sha256 hex) only after their digest matched.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import requests

from bundler.cache import Cache, drop_if_empty
from bundler.download import receive
from bundler.errors import BundlerError
from bundler.oci.reference import ImageRef, is_digest
from bundler.oci.transport import Endpoint, RegistryOptions, Transport, endpoint_for
from bundler.retry import with_retries
from k8s_install.bundle_format.sums import sha256_file

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20
CHUNK = 1 << 16


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry sent it; `digest` is the sha256 of `data`."""

    media_type: str
    data: bytes
    digest: str
    body: Dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.data)


def digest_hex(digest: str, what: str) -> str:
    if not is_digest(digest):
        raise BundlerError(f"{what}: unsupported digest {digest!r} (only sha256 is accepted)")
    return digest.split(":", 1)[1]


class RegistryClient:
    def __init__(self, cache: Cache, options: RegistryOptions) -> None:
        self.cache = cache
        self.options = options
        self.transport = Transport(options)
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock_for(self, digest: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(digest, threading.Lock())

    def endpoint(self, ref: ImageRef) -> Endpoint:
        return endpoint_for(ref, self.options)

    def manifest(self, ref: ImageRef, reference: Optional[str] = None) -> Manifest:
        """A manifest or index by tag or digest; its bytes must hash to the digest asked for or announced.
        By digest, a manifest the cache holds is taken from there (no request: offline rebuilds)."""
        endpoint = self.endpoint(ref)
        reference = reference or ref.reference
        what = ref.name if reference == ref.reference else f"{ref.name} ({reference})"
        cached = self.cache.holds(digest_hex(reference, what)) if is_digest(reference) else None
        if cached is not None:
            data, announced, header_type = cached.read_bytes(), None, ""
        elif self.options.offline:
            raise BundlerError(
                f"{what}: its manifest is not in the cache, and --offline forbids asking {endpoint.host}"
                + ("" if is_digest(reference) else " (a tag needs the registry: build with --lock)")
            )
        else:
            response = self.transport.get(endpoint, endpoint.url("manifests", reference), {"Accept": ACCEPT}, what)
            with response:
                data = _read_limited(response, what)
                announced = response.headers.get("Docker-Content-Digest")
                header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        expected = reference if is_digest(reference) else announced
        if expected and expected != digest:
            raise BundlerError(
                f"{what}: manifest from {endpoint.host} does not match its digest: expected {expected}, "
                f"got {digest}; the registry or a proxy changed it"
            )
        try:
            body = json.loads(data)
        except ValueError:
            raise BundlerError(f"{what}: the manifest from {endpoint.host} is not JSON") from None
        if not isinstance(body, dict):
            raise BundlerError(f"{what}: the manifest from {endpoint.host} is not a JSON object")
        media_type = body.get("mediaType") or header_type or _implied_media_type(body)
        if media_type not in MANIFEST_TYPES + INDEX_TYPES:
            if body.get("schemaVersion") == 1 or "schema1" in str(media_type):
                raise BundlerError(f"{what}: Docker schema 1 manifests are not supported; push the image again")
            raise BundlerError(f"{what}: unsupported manifest media type {media_type!r}")
        return Manifest(str(media_type), data, digest, body)

    def store_bytes(self, data: bytes, digest: str) -> Path:
        """Put already-verified bytes (a manifest) into the cache under their digest."""
        hex_digest = digest_hex(digest, "manifest")
        with self._lock_for(digest):
            cached = self.cache.lookup(hex_digest)
            if cached is not None and cached.read_bytes() == data:
                return cached
            partial = self.cache.partial / f"{hex_digest}.manifest.part"
            partial.write_bytes(data)
            return self.cache.commit(partial, hex_digest)

    def blob(
        self,
        ref: ImageRef,
        digest: str,
        size: Optional[int],
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> Path:
        """A verified blob in the cache, downloaded only when the cache does not hold it yet."""
        with self._lock_for(digest):  # images resolved in parallel may share a config or a layer
            return self._blob(ref, digest, size, progress)

    def _blob(
        self, ref: ImageRef, digest: str, size: Optional[int], progress: Optional[Callable[[int, int], None]]
    ) -> Path:
        what = f"{ref.name} blob {digest[:19]}"
        hex_digest = digest_hex(digest, what)
        cached = self.cache.holds(hex_digest, size)  # verified when it went in: not re-read
        if cached is not None:
            return cached
        endpoint = self.endpoint(ref)
        url = endpoint.url("blobs", digest)
        if self.options.offline:
            raise BundlerError(f"{what}: not in the cache, and --offline forbids fetching it from {endpoint.host}")
        partial = self.cache.partial_path(f"oci-blob:{digest}", hex_digest)
        if partial.exists() and size is not None and partial.stat().st_size >= size:
            if partial.stat().st_size == size and sha256_file(partial) == hex_digest:
                return self.cache.commit(partial, hex_digest)  # complete, but not moved in before a stop
            partial.unlink()
        try:
            actual = with_retries(
                lambda: self._download(endpoint, url, partial, what, progress),
                self.options.retries, self.options.backoff, what, url,
            )  # fmt: skip
        finally:
            drop_if_empty(partial)
        if actual != hex_digest:
            partial.unlink()
            raise BundlerError(
                f"{what}: content from {endpoint.host} does not match its digest (got sha256:{actual}); "
                "the registry's copy is damaged or was changed"
            )
        if size is not None and partial.stat().st_size != size:
            partial.unlink()
            raise BundlerError(f"{what}: {endpoint.host} sent a blob of another size than the manifest says")
        return self.cache.commit(partial, hex_digest)

    def _download(
        self,
        endpoint: Endpoint,
        url: str,
        partial: Path,
        what: str,
        progress: Optional[Callable[[int, int], None]],
    ) -> str:
        """Fetch (or resume) one blob into `partial`; returns the sha256 of the whole file."""
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.transport.get(endpoint, url, headers, what) as response:
            return receive(response, partial, have, progress)


def _implied_media_type(body: Dict[str, Any]) -> str:
    """An OCI manifest read back from the cache may not name its type (the field is optional)."""
    if isinstance(body.get("manifests"), list):
        return OCI_INDEX
    if isinstance(body.get("config"), dict):
        return OCI_MANIFEST
    return ""


def _read_limited(response: requests.Response, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_content(CHUNK):
        data.extend(chunk)
        if len(data) > MAX_MANIFEST:
            raise BundlerError(f"{what}: manifest larger than {MAX_MANIFEST} bytes; refused")
    return bytes(data)
