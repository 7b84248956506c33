"""The build plan: every blob a bundle needs, described by its source kind before anything large is fetched.

A source kind (files, images, RPMs) reads its metadata and returns a `SourcePlan`: the blobs (where each
comes from, its digest and size, where it goes in the bundle, whether the cache has it) and a `publish`
step that, given the fetched blobs, adds them to the bundle contents and returns its part of bundle.yaml. One fetcher
(bundler/fetcher.py) fetches the blobs of every kind; `bundler build --dry-run` prints the plan instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from bundler.bundle_manifest import ManifestPart
from bundler.download import Fetched
from bundler.progress import human_size

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Blob:
    kind: str  # "file", "image", "rpm"
    name: str  # what the user reads in progress lines and errors
    urls: Tuple[str, ...]  # where it is fetched from (the first one is used)
    digest: Optional[str]  # hex, None only for an unpinned file (--allow-unpinned)
    algorithm: str  # "sha256", or what the RPM repository gives (sha1, sha512...)
    size: Optional[int]  # None when the server does not say before the download
    places: Tuple[str, ...]  # paths in the bundle
    cached: bool
    fetch: Callable[[Optional[ProgressCallback]], Fetched] = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        """Blobs with the same key are one download (a layer shared by images)."""
        return f"{self.algorithm}:{self.digest}" if self.digest else f"url:{self.urls[0]}"

    def as_data(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "urls": list(self.urls),
            "digest": f"{self.algorithm}:{self.digest}" if self.digest else None,
            "size": self.size,
            "places": list(self.places),
            "cached": self.cached,
        }


@dataclass
class SourcePlan:
    kind: str  # "files", "images", "rpms"
    blobs: List[Blob]
    publish: Callable[[Mapping[str, Fetched]], ManifestPart]  # blob key -> fetched, after every blob is in
    details: Dict[str, Any] = field(default_factory=dict)  # what the dry run shows besides blobs

    def totals(self) -> Dict[str, int]:
        unique = {blob.key: blob for blob in self.blobs}.values()
        return {
            "count": len(unique),
            "fetch_bytes": sum(b.size or 0 for b in unique if not b.cached),
            "cached_bytes": sum(b.size or 0 for b in unique if b.cached),
            "unknown_sizes": sum(1 for b in unique if b.size is None),
        }


@dataclass
class Plan:
    sources: List[SourcePlan] = field(default_factory=list)

    def unique_blobs(self) -> List[Blob]:
        """Every blob once (the first kind that names it fetches it), largest first."""
        unique: Dict[str, Blob] = {}
        for source in self.sources:
            for blob in source.blobs:
                unique.setdefault(blob.key, blob)
        return sorted(unique.values(), key=lambda b: (-(b.size or 0), b.name))

    def summary_lines(self) -> List[str]:
        lines = []
        for source in self.sources:
            totals = source.totals()
            unknown = f", {totals['unknown_sizes']} of unknown size" if totals["unknown_sizes"] else ""
            lines.append(
                f"  {source.kind}: {totals['count']} to bundle, {human_size(totals['fetch_bytes'])} to fetch, "
                f"{human_size(totals['cached_bytes'])} cached{unknown}"
            )
        return lines

    def as_data(self) -> Dict[str, Any]:
        return {
            "sources": [
                {"kind": s.kind, **s.totals(), **s.details, "blobs": [b.as_data() for b in s.blobs]}
                for s in self.sources
            ]
        }
