"""The bundle.yaml a build writes, assembled from what each source returns.

Each source kind returns a `ManifestPart` from its publish step (files: artifacts; images: images; RPMs: the
repository, its packages and keys); `build` adds the target, cluster.yaml's entry, what is incomplete and the
installer, and `assemble` puts them into one `BundleManifest` (k8s_install/bundle_format/model.py). No
source writes into another's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from bundler import __version__
from bundler.manifest import OsTarget, Release
from k8s_install.bundle_format.model import (
    ArtifactFile,
    BundleManifest,
    Chart,
    ClusterConfigFile,
    Deb,
    DebRepository,
    ExtraFile,
    Image,
    InstallerFile,
    PlainFile,
    Rpm,
    RpmRepository,
)


@dataclass(frozen=True)
class ManifestPart:
    """What one source kind adds to bundle.yaml."""

    artifacts: Tuple[ArtifactFile, ...] = ()
    images: Tuple[Image, ...] = ()
    rpm_repository: Optional[RpmRepository] = None
    rpms: Tuple[Rpm, ...] = ()
    extras: Tuple[ExtraFile, ...] = ()
    deb_repository: Optional[DebRepository] = None
    debs: Tuple[Deb, ...] = ()
    charts: Tuple[Chart, ...] = ()
    plain_files: Tuple[PlainFile, ...] = ()


def assemble(
    release: Release,
    os_target: OsTarget,
    arch: str,
    parts: Sequence[ManifestPart],
    cluster_files: Sequence[ClusterConfigFile],  # cluster.yaml first, then the registry CA it names
    incomplete: Sequence[str],
    installer: InstallerFile,
) -> BundleManifest:
    repositories = [part.rpm_repository for part in parts if part.rpm_repository is not None]
    apt_repositories = [part.deb_repository for part in parts if part.deb_repository is not None]
    return BundleManifest(
        kubernetes=release.kubernetes,
        os=os_target.id,
        arch=arch,
        builder=f"bundler {__version__}",
        os_aliases=tuple(os_target.aliases),
        incomplete=tuple(incomplete),
        artifacts=tuple(entry for part in parts for entry in part.artifacts),
        images=tuple(entry for part in parts for entry in part.images),
        rpm_repository=repositories[0] if repositories else None,
        rpms=tuple(entry for part in parts for entry in part.rpms),
        extras=tuple(cluster_files) + tuple(entry for part in parts for entry in part.extras),
        installer=installer,
        deb_repository=apt_repositories[0] if apt_repositories else None,
        debs=tuple(entry for part in parts for entry in part.debs),
        charts=tuple(entry for part in parts for entry in part.charts),
        plain_files=tuple(entry for part in parts for entry in part.plain_files),
    )
