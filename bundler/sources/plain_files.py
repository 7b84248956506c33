"""The operator's own files (`bundler build --file SRC[=NAME]`) carried in files/plain/NAME.

SRC is a local file, read once while the build plans (its bytes go into the cache under their sha256, so
what is bundled is what was hashed), or an https URL pinned by its sha256 (`URL@sha256:HEX`), fetched and
verified like every release artifact. Each is listed in SHA256SUMS, in bundle.yaml `plain_files:` and in
the SBOM.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from bundler.build_context import BuildContext
from bundler.bundle_manifest import ManifestPart
from bundler.download import Fetched, mirrored_url
from bundler.errors import BundlerError
from bundler.plan import Blob, ProgressCallback, SourcePlan
from k8s_install.bundle_format.layout import PLAIN_FILES_DIR
from k8s_install.bundle_format.model import PlainFile
from k8s_install.bundle_format.sums import sha256_file

KIND = "plain_files"
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$")
PINNED_URL = re.compile(r"^(?P<url>https://[^\s]+?)@sha256:(?P<digest>[0-9a-f]{64})(?:=(?P<name>[^=/]+))?$")
FORM = "--file PATH[=NAME] or --file https://HOST/PATH@sha256:HEX[=NAME]"


@dataclass(frozen=True)
class FileRequest:
    name: str  # its name in files/plain/
    source: str  # the local path or the URL
    expected: Optional[str] = None  # the URL's pinned sha256 (hex); None for a local file

    @property
    def is_url(self) -> bool:
        return self.expected is not None

    @property
    def path(self) -> str:
        return f"{PLAIN_FILES_DIR}/{self.name}"


def _checked_name(name: str, text: str) -> str:
    if not SAFE_NAME.match(name):
        raise BundlerError(
            f"--file {text}: {name!r} is not a plain file name (letters, digits, . _ + -; no folders): "
            "give one with =NAME"
        )
    return name


def parse_file_request(text: str) -> FileRequest:
    """`PATH[=NAME]` or `https://HOST/PATH@sha256:HEX[=NAME]`; an https URL without its sha256 is refused."""
    if text.startswith(("https://", "http://")):
        match = PINNED_URL.match(text)
        if match is None:
            if text.startswith("http://"):
                raise BundlerError(f"--file {text}: plain http is not accepted; give an https URL with its sha256")
            raise BundlerError(
                f"--file {text}: a URL needs its pinned sha256: append @sha256:HEX (the sha256sum of the file "
                f"you expect), as in {FORM}"
            )
        url = match.group("url")
        name = match.group("name") or url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        return FileRequest(_checked_name(name, text), url, match.group("digest"))
    source, name = text, ""
    if not Path(text).exists() and "=" in text:
        source, _, name = text.rpartition("=")
    path = Path(source)
    if not path.is_file():
        what = "is a folder: give its files one by one" if path.is_dir() else "no such file"
        raise BundlerError(f"--file {source}: {what} ({FORM})")
    return FileRequest(_checked_name(name or path.name, text), str(path))


def requested_files(context: BuildContext) -> List[FileRequest]:
    requests = [parse_file_request(text) for text in context.options.workloads.files]
    seen: Dict[str, str] = {}
    for request in requests:
        if request.name in seen:
            raise BundlerError(
                f"--file {request.source}: another --file ({seen[request.name]}) is also named {request.name}; "
                "give one of them another name with =NAME"
            )
        seen[request.name] = request.source
    return requests


def _take_local(context: BuildContext, request: FileRequest) -> Fetched:
    """Copy the local file into the cache under the sha256 of the bytes copied: those are what is bundled."""
    cache = context.cache
    partial_path = cache.partial / f"local-{os.getpid()}-{request.name}.part"
    try:
        shutil.copyfile(request.source, partial_path)
    except OSError as error:
        raise BundlerError(f"--file {request.source}: cannot read it: {error.strerror}") from None
    digest = sha256_file(partial_path)
    size = partial_path.stat().st_size
    held = cache.holds(digest, size)
    if held is not None:
        partial_path.unlink()
        return Fetched(held, digest, size, True)
    return Fetched(cache.commit(partial_path, digest), digest, size, True)


def _fetch_url(context: BuildContext, request: FileRequest, progress: Optional[ProgressCallback] = None) -> Fetched:
    return context.downloader.fetch(f"file {request.name}", request.source, request.expected, progress)


def _blob(context: BuildContext, request: FileRequest) -> Blob:
    if not request.is_url:
        taken = _take_local(context, request)
        return Blob(
            kind="file", name=request.name, urls=(f"file://{os.path.abspath(request.source)}",),
            digest=taken.sha256, algorithm="sha256", size=taken.size, places=(request.path,), cached=True,
            fetch=lambda _progress: taken,
        )  # fmt: skip
    downloader = context.downloader
    hit = downloader.cached(request.expected)
    if hit is None and context.options.fetch.offline:
        raise BundlerError(f"file {request.name}: not in the cache, and --offline forbids fetching {request.source}")
    size = hit.size if hit is not None else downloader.probe_size(f"file {request.name}", request.source)
    return Blob(
        kind="file", name=request.name, urls=(mirrored_url(request.source, context.options.fetch.mirror),),
        digest=request.expected, algorithm="sha256", size=size, places=(request.path,), cached=hit is not None,
        fetch=partial(_fetch_url, context, request),
    )  # fmt: skip


def plan_plain_files(context: BuildContext) -> Optional[SourcePlan]:
    requests = requested_files(context)
    if not requests:
        return None
    blobs = [_blob(context, request) for request in requests]

    def publish(fetched: Mapping[str, Fetched]) -> ManifestPart:
        entries = []
        for request, blob in zip(requests, blobs):
            result = fetched[blob.key]
            executable = not request.is_url and os.access(request.source, os.X_OK)
            context.contents.add_file(request.path, result.path, result.sha256, result.size, executable)
            entries.append(PlainFile(request.name, request.path, result.sha256, result.size, request.source))
        return ManifestPart(plain_files=tuple(entries))

    return SourcePlan(KIND, blobs, publish)
