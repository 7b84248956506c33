"""File artifacts of the release (tarballs, binaries, manifests) fetched over HTTP into files/.

The plan: one blob per artifact, pinned by its sha256 (checksums/ or the manifest). The size of an artifact
that is not cached yet is asked with HEAD, so a missing file fails before anything large is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import List, Mapping, Optional

from bundler import paths
from bundler.build_context import BuildContext
from bundler.bundle_manifest import ManifestPart
from bundler.checksums import load_pins
from bundler.download import Fetched, mirrored_url
from bundler.errors import BundlerError
from bundler.manifest import FileArtifact
from bundler.parallel import parallel_map
from bundler.plan import Blob, ProgressCallback, SourcePlan
from k8s_install.bundle_format.layout import FILES_DIR
from k8s_install.bundle_format.model import ArtifactFile

KIND = "files"


@dataclass(frozen=True)
class PlannedFile:
    artifact: FileArtifact
    expected: Optional[str]  # None only when unpinned downloads were allowed

    @property
    def path(self) -> str:
        return f"{FILES_DIR}/{self.artifact.filename}"


def pinned_files(context: BuildContext) -> List[PlannedFile]:
    """Every file artifact with its pinned sum; refuse unpinned ones unless explicitly allowed."""
    release = context.release
    pins = load_pins(paths.checksums_path(release.kubernetes))
    planned, unpinned = [], []
    for artifact in release.files_for(context.os_target, context.arch):
        expected = artifact.inline_sha256 or pins.get(artifact.url)
        if expected is None:
            unpinned.append(artifact)
        planned.append(PlannedFile(artifact, expected))
    if unpinned and not context.options.allow_unpinned:
        first = unpinned[0]
        raise BundlerError(
            f"{len(unpinned)} artifact(s) have no pinned sha256, first {first.name} ({first.url}): add it to "
            f"{paths.checksums_path(release.kubernetes).name} or pass --allow-unpinned to record computed sums"
        )
    return planned


def fetch_file(context: BuildContext, item: PlannedFile, progress: Optional[ProgressCallback] = None) -> Fetched:
    return context.downloader.fetch(item.artifact.name, item.artifact.url, item.expected, progress)


def _blob(context: BuildContext, item: PlannedFile) -> Blob:
    downloader = context.downloader
    hit = downloader.cached(item.expected)
    if hit is None and context.options.fetch.offline:
        name, url = item.artifact.name, item.artifact.url
        raise BundlerError(f"{name}: not in the cache, and --offline forbids fetching {url}")
    size = hit.size if hit is not None else downloader.probe_size(item.artifact.name, item.artifact.url)
    return Blob(
        kind="file", name=item.artifact.name, urls=(mirrored_url(item.artifact.url, context.options.fetch.mirror),),
        digest=item.expected, algorithm="sha256", size=size, places=(item.path,), cached=hit is not None,
        fetch=partial(fetch_file, context, item),
    )  # fmt: skip


def plan_files(context: BuildContext) -> SourcePlan:
    planned = pinned_files(context)
    blobs = parallel_map(partial(_blob, context), planned, context.options.jobs)

    def publish(fetched: Mapping[str, Fetched]) -> ManifestPart:
        entries = []
        for item, blob in zip(planned, blobs):
            artifact, result = item.artifact, fetched[blob.key]
            context.contents.add_file(item.path, result.path, result.sha256, result.size, artifact.executable)
            context.fetched_files[artifact.name] = result.path
            entries.append(
                ArtifactFile(
                    name=artifact.name,
                    path=item.path,
                    sha256=result.sha256,
                    size=result.size,
                    version=artifact.version,
                    arch=artifact.arch,
                    source=artifact.url,
                    pinned=item.expected is not None,
                )
            )
        return ManifestPart(artifacts=tuple(entries))

    return SourcePlan(KIND, blobs, publish)
