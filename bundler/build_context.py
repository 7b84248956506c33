"""What every source kind (files, images, RPMs) receives while a bundle is built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from bundler.bundle_writer import BundleContents
from bundler.cache import Cache
from bundler.download import Downloader, FetchOptions
from bundler.errors import BundlerError
from bundler.manifest import OsTarget, Release
from bundler.signing import SignKey
from bundler.zipapp import DEFAULT_EPOCH
from k8s_install.bundle_format.model import BundleManifest


def source_date_epoch() -> int:
    """The time every bundle entry carries (SOURCE_DATE_EPOCH, for reproducible builds)."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return DEFAULT_EPOCH
    if not value.isdigit():
        raise BundlerError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ImageOptions:
    """The command line's container image options, beside the release manifest's own images."""

    images: Tuple[str, ...] = ()  # --image REF
    image_files: Tuple[str, ...] = ()  # --image-file FILE: one reference a line
    registry_auth: Tuple[str, ...] = ()  # --registry-auth HOST=USER:PASSWORD_FILE
    insecure_registries: Tuple[str, ...] = ()  # --insecure-registry HOST
    registry_mirrors: Tuple[str, ...] = ()  # --registry-mirror HOST=URL

    @property
    def any_images(self) -> bool:
        return bool(self.images or self.image_files)


@dataclass(frozen=True)
class WorkloadOptions:
    """Helm charts and plain files the operator carries beside the release (bundler/sources/charts.py,
    bundler/sources/plain_files.py)."""

    charts: Tuple[str, ...] = ()  # --chart REF
    chart_values: Tuple[str, ...] = ()  # --chart-values [NAME=]FILE, for `helm template`
    files: Tuple[str, ...] = ()  # --file SRC[=NAME]


@dataclass(frozen=True)
class RpmOptions:
    closure: str = "minimal"  # --rpm-closure: one of bundler.rpm.spec.CLOSURES
    mirror: Optional[str] = None  # --rpm-mirror NAME: a mirror the release manifest names


@dataclass
class BuildOptions:
    kubernetes: Optional[str]
    arch: str = "amd64"
    os: str = "rocky9"
    output: Path = Path(".")
    cache: Optional[Path] = None
    jobs: int = 4
    manifest: Optional[Path] = None
    allow_unpinned: bool = False
    fetch: FetchOptions = field(default_factory=FetchOptions)
    cluster: Optional[Path] = None
    lock: Optional[Path] = None
    sign_key: Optional[SignKey] = None  # --sign-key, checked before any download
    dry_run: bool = False  # resolve and print the plan, fetch nothing large, write nothing
    json: bool = False  # the dry run's plan as JSON on stdout
    allow_incomplete: bool = False  # a bundle missing parts of a node (tests, partial bundles): warn only
    images: ImageOptions = field(default_factory=ImageOptions)
    rpms: RpmOptions = field(default_factory=RpmOptions)
    delta_from: Optional[Path] = None  # --from OLD: write a delta against this earlier bundle
    workloads: WorkloadOptions = field(default_factory=WorkloadOptions)


@dataclass
class BuildContext:
    options: BuildOptions
    release: Release
    os_target: OsTarget
    arch: str
    cache: Cache
    downloader: Downloader
    contents: BundleContents
    lock: Optional[BundleManifest] = None  # pins read back from --lock (the bundle.yaml of an earlier build)
    fetched_files: Dict[str, Path] = field(default_factory=dict)  # artifact name -> verified cache path
    chart_images: List[Tuple[str, str]] = field(default_factory=list)  # (image, the chart naming it)
