"""What a bundle holds, read from its bundle.yaml: the one description `inspect` prints and `--json` emits.

Works on an unpacked folder or on the tarball itself (bundle.yaml is read from inside it). The caller
verifies the bundle first; this module only reads.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, Dict, List

from k8s_install.bundle_format.layout import MANIFEST_NAME
from k8s_install.bundle_format.model import ArtifactFile, BundleFile, BundleManifest, InstallerFile, RepositoryKey
from k8s_install.errors import InstallError


def read_member(target: Path, relative: str) -> bytes:
    """One file of a bundle folder or tarball."""
    target = Path(target)
    return (target / relative).read_bytes() if target.is_dir() else _member_bytes(target, relative)


def read_manifest(target: Path) -> BundleManifest:
    """bundle.yaml of a bundle folder or tarball, typed."""
    return BundleManifest.from_yaml(read_member(target, MANIFEST_NAME), str(target))


def _member_bytes(tarball: Path, relative: str) -> bytes:
    try:
        with tarfile.open(tarball, "r:") as archive:
            for member in archive:
                if member.isfile() and member.name.split("/", 1)[-1] == relative and member.name.count("/") == 1:
                    stream = archive.extractfile(member)
                    assert stream is not None
                    return stream.read()
    except (tarfile.TarError, OSError) as error:
        raise InstallError(f"{tarball}: not a readable bundle tarball ({error})") from None
    raise InstallError(f"{tarball}: no {relative} inside: this is not a bundle")


def _file(entry: BundleFile, kind: str) -> Dict[str, Any]:
    if isinstance(entry, RepositoryKey):
        name, pinned = entry.repository, entry.pinned
    else:
        name, pinned = ("k8s-install.pyz" if isinstance(entry, InstallerFile) else entry.name), True
    artifact = entry if isinstance(entry, ArtifactFile) else None
    return {
        "path": entry.path,
        "kind": kind,
        "name": name,
        "version": entry.version if isinstance(entry, (ArtifactFile, InstallerFile)) else None,
        "size": entry.size,
        "sha256": entry.sha256,
        "pinned": artifact.pinned if artifact else pinned,
        "source": artifact.source if artifact else None,
    }


def describe(manifest: BundleManifest, total_files: int, total_bytes: int, sums_sha256: str) -> Dict[str, Any]:
    """The inspect document (schema in README.md): versions, target, images, packages, files, totals."""
    installer = manifest.installer
    files: List[Dict[str, Any]] = [_file(installer, "installer")] if installer else []
    files += [_file(entry, "artifact") for entry in manifest.artifacts]
    files += [_file(entry, "extra") for entry in manifest.extras]
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
    ]
    return {
        "kubernetes": manifest.kubernetes,
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
