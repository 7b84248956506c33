"""What every source kind (files, images, RPMs) receives while a bundle is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from bundler.bundle_writer import BundleContents
from bundler.cache import Cache
from bundler.download import Downloader, FetchOptions
from bundler.manifest import OsTarget, Release
from bundler.signing import SignKey
from k8s_install.bundle_format.model import BundleManifest


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
    extra: Dict[str, Any] = field(default_factory=dict)  # per-source options (images, rpms)


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
