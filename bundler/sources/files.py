"""File artifacts of the release (tarballs, binaries, manifests) fetched over HTTP into files/."""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Dict, List, Optional

from bundler import paths
from bundler.build_context import BuildContext
from bundler.checksums import load_pins
from bundler.download import Fetched
from bundler.errors import BundlerError
from bundler.manifest import FileArtifact
from bundler.progress import Progress
from installer.layout import FILES_DIR


@dataclass(frozen=True)
class PlannedFile:
    artifact: FileArtifact
    expected: Optional[str]  # None only when unpinned downloads were allowed


def plan_files(context: BuildContext) -> List[PlannedFile]:
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


def fetch_files(context: BuildContext) -> None:
    planned = plan_files(context)
    progress = Progress(len(planned))
    results: Dict[str, Fetched] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, context.options.jobs)) as pool:
            futures = {
                pool.submit(
                    context.downloader.fetch,
                    item.artifact.name,
                    item.artifact.url,
                    item.expected,
                    progress.tracker(item.artifact.name),
                ): item
                for item in planned
            }
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            for future, item in futures.items():
                fetched = future.result()
                results[item.artifact.name] = fetched
                progress.finished(item.artifact.name, fetched.size, fetched.from_cache)
    finally:
        progress.close()
    entries = []
    for item in planned:
        artifact, fetched = item.artifact, results[item.artifact.name]
        path = f"{FILES_DIR}/{artifact.filename}"
        context.contents.add_file(path, fetched.path, fetched.sha256, fetched.size, artifact.executable)
        context.fetched_files[artifact.name] = fetched.path
        entries.append(
            {
                "name": artifact.name,
                "version": artifact.version,
                "arch": artifact.arch,
                "path": path,
                "size": fetched.size,
                "sha256": fetched.sha256,
                "source": artifact.url,
                "pinned": item.expected is not None,
            }
        )
    context.record["artifacts"] = entries
