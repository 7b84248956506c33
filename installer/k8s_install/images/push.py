"""Copy every image of a bundle's OCI layout (images/) into a registry, keeping repository names.

Used by `k8s-install.pyz images push REGISTRY` (an unpacked bundle) and `bundler images push BUNDLE
REGISTRY` (a folder or the tarball, read in place); standard library only. It reads the bundle open_bundle
opened, so every byte sent has been checked against SHA256SUMS.

`registry.k8s.io/coredns/coredns:v1.11.1` goes to `REGISTRY/[PREFIX/]coredns/coredns:v1.11.1`, and a Docker Hub
name in any spelling (`nginx:1.25`, `library/nginx:1.25`, `docker.io/nginx:1.25`) to `REGISTRY/[PREFIX/]library/
nginx:1.25`: the path the nodes' containerd asks its mirror for (images/names.py). Per the OCI
distribution spec, for every blob: HEAD (present: skipped), else a cross-repository mount from a repository
this run already filled, else an upload: one PUT (monolithic) when it is no bigger than the chunk size,
else PATCH chunks and a closing PUT. The manifest goes last (by tag, or by digest for a digest-only name),
and is skipped when the registry already has it under that tag with the same digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Tuple

from k8s_install.bundle_format.layout import IMAGES_DIR
from k8s_install.bundle_format.opened import OpenedBundle
from k8s_install.errors import InstallError
from k8s_install.images.names import parse_image_name
from k8s_install.images.push_options import check_prefix
from k8s_install.images.registry_client import RegistryClient

NAME_ANNOTATION = "io.containerd.image.name"
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_ACCEPT = ", ".join(
    INDEX_TYPES + ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
)
DEFAULT_CHUNK = 64 << 20


class LayoutSource:
    """The bundle's images/ folder, read through the opened (verified) bundle: a folder, or the tarball in place."""

    def __init__(self, bundle: OpenedBundle) -> None:
        self.opened = bundle
        self.bundle = bundle.path  # for messages

    def size(self, relative: str) -> int:
        return self.opened.size(relative)

    def open(self, relative: str) -> IO[bytes]:
        return self.opened.open(relative)

    def read_json(self, relative: str) -> dict:
        with self.open(relative) as stream:
            data = stream.read()
        try:
            value = json.loads(data)
        except ValueError:
            raise InstallError(f"{self.bundle}: {relative} is not JSON; re-copy the bundle") from None
        if not isinstance(value, dict):
            raise InstallError(f"{self.bundle}: {relative} is not a JSON object; re-copy the bundle")
        return value

    def has_images(self) -> bool:
        return self.opened.has(f"{IMAGES_DIR}/index.json")


def blob_path(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64:
        raise InstallError(f"unexpected digest {digest!r} in the image layout; re-copy the bundle")
    return f"{IMAGES_DIR}/blobs/sha256/{hex_digest}"


@dataclass(frozen=True)
class Target:
    name: str  # as in the bundle: registry.k8s.io/pause:3.9
    repository: str  # in the target registry, prefix included: mirror/pause
    reference: str  # tag, or digest for a digest-only name


def target_for(name: str, prefix: str, registry: str = "") -> Target:
    """The path containerd asks a mirror for (images/names.py: `nginx:1.25` is `library/nginx`), under `prefix`.

    An image already named after the target `registry` keeps its own path, without the prefix: a node pulls it
    by that name, straight from the registry, not through a mirror's `override_path`.
    """
    parsed = parse_image_name(name)
    repository = parsed.repository
    if prefix and parsed.registry != registry:
        repository = f"{prefix.strip('/')}/{repository}"
    return Target(name, repository, parsed.reference)


@dataclass
class PushReport:
    images: List[str] = field(default_factory=list)  # "name -> registry/repository:reference"
    manifests_pushed: int = 0
    manifests_present: int = 0
    blobs_uploaded: int = 0
    blobs_chunked: int = 0  # of the uploaded, those sent in PATCH chunks
    blobs_mounted: int = 0
    blobs_present: int = 0
    bytes_uploaded: int = 0


class Pusher:
    def __init__(
        self, source: LayoutSource, client: RegistryClient, chunk_size: int = DEFAULT_CHUNK,
        echo: Callable[[str], None] = print,
    ) -> None:  # fmt: skip
        self.source = source
        self.client = client
        self.chunk_size = chunk_size
        self.echo = echo
        self.report = PushReport()
        self.placed: Dict[str, str] = {}  # digest -> a repository of the target that holds it

    def push_all(self, prefix: str = "") -> PushReport:
        if not self.source.has_images():
            raise InstallError(f"{self.source.bundle}: the bundle holds no images (no {IMAGES_DIR}/index.json)")
        index = self.source.read_json(f"{IMAGES_DIR}/index.json")
        targets: Dict[Tuple[str, str], str] = {}
        for entry in index.get("manifests") or []:
            name = str((entry.get("annotations") or {}).get(NAME_ANNOTATION, ""))
            if not name:
                raise InstallError(f"{self.source.bundle}: an image in {IMAGES_DIR}/index.json has no name")
            target = target_for(name, prefix, self.client.host)
            clash = targets.get((target.repository, target.reference))
            if clash is not None:
                raise InstallError(
                    f"{clash} and {name} would both become {target.repository}:{target.reference}: "
                    "push them with different --prefix values"
                )
            targets[(target.repository, target.reference)] = name
            self.push_manifest(target.repository, target.reference, str(entry["digest"]), str(entry["mediaType"]))
            where = f"{self.client.host}/{target.repository}{'@' if ':' in target.reference else ':'}{target.reference}"
            self.report.images.append(f"{name} -> {where}")
            self.echo(f"  {name} -> {where}")
        return self.report

    def push_manifest(self, repository: str, reference: str, digest: str, media_type: str) -> None:
        document = self._read_blob(digest)
        manifest = json.loads(document)
        if media_type in INDEX_TYPES:
            for child in manifest.get("manifests") or []:
                self.push_manifest(repository, str(child["digest"]), str(child["digest"]), str(child["mediaType"]))
        else:
            for blob in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
                self.push_blob(repository, str(blob["digest"]))
        path = f"/v2/{repository}/manifests/{reference}"
        scope = _scope(repository)
        head = self.client.request("HEAD", path, scope, {"Accept": MANIFEST_ACCEPT})
        if head.status == 200 and head.header("docker-content-digest") == digest:
            self.report.manifests_present += 1
            return
        put = self.client.request("PUT", path, scope, {"Content-Type": media_type}, document)
        self.client.check(put, (201,), f"pushing the manifest of {repository}:{reference}")
        answered = put.header("docker-content-digest")
        if answered and answered != digest:
            raise InstallError(f"{self.client.host}: stored {repository} as {answered}, expected {digest}")
        self.report.manifests_pushed += 1

    def _read_blob(self, digest: str) -> bytes:
        with self.source.open(blob_path(digest)) as stream:
            return stream.read()

    def push_blob(self, repository: str, digest: str) -> None:
        scope = _scope(repository)
        head = self.client.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope)
        if head.status == 200:
            self.report.blobs_present += 1
            self.placed.setdefault(digest, repository)
            return
        uploads = f"/v2/{repository}/blobs/uploads/"
        origin = self.placed.get(digest)
        location = ""
        if origin is not None:  # a mount needs pull on the origin as well: both scopes in one token
            mount_scope = f"{scope} repository:{origin}:pull"
            mount = self.client.request("POST", f"{uploads}?mount={digest}&from={origin}", mount_scope,
                                        {"Content-Length": "0"}, b"")  # fmt: skip
            if mount.status == 201:
                self.report.blobs_mounted += 1
                return
            if mount.status == 202:  # the registry did not mount: it opened an upload instead
                location = mount.header("location")
        if not location:
            start = self.client.request("POST", uploads, scope, {"Content-Length": "0"}, b"")
            location = self.client.check(start, (202,), f"starting the upload of {digest} to {repository}").header(
                "location"
            )
        if not location:
            raise InstallError(f"{self.client.host}: no Location for the upload of {digest}")
        size = self.source.size(blob_path(digest))
        with self.source.open(blob_path(digest)) as stream:
            if size <= self.chunk_size:
                self._put(location, digest, scope, stream, size)
            else:
                self._chunked(location, digest, scope, stream, size)
                self.report.blobs_chunked += 1
        self.report.blobs_uploaded += 1
        self.report.bytes_uploaded += size
        self.placed[digest] = repository

    def _put(self, location: str, digest: str, scope: str, stream: IO[bytes], size: int) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        put = self.client.request("PUT", _with_digest(location, digest), scope, headers, stream)
        self.client.check(put, (201,), f"uploading {digest}")

    def _chunked(self, location: str, digest: str, scope: str, stream: IO[bytes], size: int) -> None:
        sent = 0
        while sent < size:
            chunk = stream.read(min(self.chunk_size, size - sent))
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(chunk)),
                "Content-Range": f"{sent}-{sent + len(chunk) - 1}",
            }
            patch = self.client.request("PATCH", location, scope, headers, chunk)
            location = self.client.check(patch, (202,), f"uploading a chunk of {digest}").header("location") or location
            sent += len(chunk)
        close = self.client.request("PUT", _with_digest(location, digest), scope, {"Content-Length": "0"}, b"")
        self.client.check(close, (201,), f"finishing the upload of {digest}")


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest.replace(':', '%3A')}"


def registry_host(text: str) -> str:
    host = text.strip().rstrip("/")
    if "://" in host or "/" in host or not host:
        raise InstallError(f"registry {text!r}: give HOST[:PORT] only (https is used; repositories go under --prefix)")
    return host


@dataclass(frozen=True)
class PushOptions:
    registry: str
    prefix: str = ""
    ca_file: Optional[str] = None
    auth_file: Optional[str] = None
    plain_http: bool = False  # loopback test registries only; never implied
    chunk_size: int = DEFAULT_CHUNK


def push_bundle(bundle: OpenedBundle, options: PushOptions, echo: Callable[[str], None] = print) -> PushReport:
    """Push every image of an opened (so verified) bundle, folder or tarball; see the module docstring."""
    from k8s_install.images.registry_client import read_auth_file

    host = registry_host(options.registry)
    prefix = check_prefix(options.prefix)
    credential = None
    if options.auth_file:
        credential = read_auth_file(Path(options.auth_file), host)
        if credential is None:
            raise InstallError(f'{options.auth_file}: no entry for {host} under "auths"')
    client = RegistryClient(host, credential, options.ca_file, options.plain_http)
    try:
        return Pusher(LayoutSource(bundle), client, options.chunk_size, echo).push_all(prefix)
    finally:
        client.close()


def summary(report: PushReport, host: str) -> str:
    return (
        f"pushed {len(report.images)} image(s) to {host}: {report.blobs_uploaded} blob(s) uploaded "
        f"({report.bytes_uploaded / 1048576:.1f} MiB, {report.blobs_chunked} in chunks), "
        f"{report.blobs_mounted} mounted, {report.blobs_present} already there; "
        f"{report.manifests_pushed} manifest(s) written, {report.manifests_present} unchanged"
    )
