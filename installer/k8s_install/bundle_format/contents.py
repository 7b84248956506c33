"""What a bundle holds, read from its bundle.yaml: the one description `inspect` prints and `--json` emits.

The caller opens the bundle (opened.open_bundle, which verifies it) and passes its manifest; this module
only describes.
"""

from __future__ import annotations

from typing import Any, Dict, List

from k8s_install.bundle_format.model import (
    ArtifactFile,
    BundleFile,
    BundleManifest,
    Chart,
    InstallerFile,
    PlainFile,
    RepositoryKey,
)


def _file(entry: BundleFile, kind: str) -> Dict[str, Any]:
    if isinstance(entry, RepositoryKey):
        name, pinned = entry.repository, entry.pinned
    else:
        name, pinned = ("k8s-install.pyz" if isinstance(entry, InstallerFile) else entry.name), True
    artifact = entry if isinstance(entry, ArtifactFile) else None
    source = entry.source if isinstance(entry, (ArtifactFile, Chart, PlainFile)) else None
    return {
        "path": entry.path,
        "kind": kind,
        "name": name,
        "version": entry.version if isinstance(entry, (ArtifactFile, InstallerFile, Chart)) else None,
        "size": entry.size,
        "sha256": entry.sha256,
        "pinned": artifact.pinned if artifact else pinned,
        "source": source,
    }


def describe(manifest: BundleManifest, total_files: int, total_bytes: int, sums_sha256: str) -> Dict[str, Any]:
    """The inspect document (schema in docs/json-output.md): versions, target, images, packages, files, totals."""
    installer = manifest.installer
    files: List[Dict[str, Any]] = [_file(installer, "installer")] if installer else []
    files += [_file(entry, "artifact") for entry in manifest.artifacts]
    files += [_file(entry, "extra") for entry in manifest.extras]
    files += [_file(entry, "chart") for entry in manifest.charts]
    files += [_file(entry, "plain") for entry in manifest.plain_files]
    images = [
        {
            "name": image.name,
            "digest": image.digest,
            "platform": image.platform,
            "size": image.size,
            "index_digest": image.index_digest,
        }
        for image in manifest.images
    ]
    packages = [
        {
            "name": rpm.name,
            "version": rpm.evr,
            "arch": rpm.arch,
            "nevra": rpm.nevra,
            "size": rpm.size,
            "sha256": rpm.sha256,
            "repository": rpm.repository,
            "requested": rpm.requested,
        }
        for rpm in manifest.rpms
    ] + [
        {
            "name": deb.name,
            "version": deb.version,
            "arch": deb.arch,
            "nevra": f"{deb.name}_{deb.version}_{deb.arch}",
            "size": deb.size,
            "sha256": deb.sha256,
            "repository": deb.repository,
            "requested": deb.requested,
        }
        for deb in manifest.debs
    ]
    return {
        "kubernetes": manifest.kubernetes,
        "incomplete": list(manifest.incomplete),
        "format": manifest.format,
        "builder": manifest.builder,
        "installer_version": installer.version if installer else "",
        "target": {
            "os": manifest.os,
            "os_aliases": list(manifest.os_aliases),
            "arch": manifest.arch,
        },
        "signer": None,  # filled in by the caller, who can check the signature
        "images": images,
        "packages": packages,
        "charts": [
            {"name": chart.name, "version": chart.version, "source": chart.source, "images": list(chart.images)}
            for chart in manifest.charts
        ],
        "files": files,
        "totals": {
            "files": total_files,
            "bytes": total_bytes,
            "images": len(images),
            "image_bytes": sum(image["size"] for image in images),
            "packages": len(packages),
            "package_bytes": sum(package["size"] for package in packages),
            "unpinned_files": sum(1 for entry in files if not entry["pinned"]),
            "sha256sums_sha256": sums_sha256,
        },
    }
