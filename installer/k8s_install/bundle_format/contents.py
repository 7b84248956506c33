"""What a bundle holds, read from its bundle.yaml: the one description `inspect` prints and `--json` emits.

Works on an unpacked folder or on the tarball itself (bundle.yaml is read from inside it). The caller
verifies the bundle first; this module only reads.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any, Dict, List

import yaml

from k8s_install.bundle_format.layout import MANIFEST_NAME
from k8s_install.bundle_format.shape import check_manifest_shape, incomplete_parts, load_manifest_yaml
from k8s_install.errors import InstallError, yaml_problem


def read_member(target: Path, relative: str) -> bytes:
    """One file of a bundle folder or tarball."""
    target = Path(target)
    return (target / relative).read_bytes() if target.is_dir() else _member_bytes(target, relative)


def read_manifest(target: Path) -> Dict[str, Any]:
    """bundle.yaml of a bundle folder or tarball, as a mapping."""
    data = read_member(target, MANIFEST_NAME)
    try:
        manifest = load_manifest_yaml(data)
    except yaml.YAMLError as error:
        raise InstallError(f"{target}: {MANIFEST_NAME} is not valid YAML: {yaml_problem(error)}") from None
    return check_manifest_shape(manifest, str(target))


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


def _file(entry: Dict[str, Any], kind: str) -> Dict[str, Any]:
    return {
        "path": str(entry.get("path", "")),
        "kind": kind,
        "name": str(entry.get("name", entry.get("repository", ""))),
        "version": None if entry.get("version") is None else str(entry["version"]),
        "size": int(entry.get("size") or 0),
        "sha256": str(entry.get("sha256", "")),
        "pinned": bool(entry.get("pinned", True)),
        "source": entry.get("source"),
    }


def describe(manifest: Dict[str, Any], total_files: int, total_bytes: int, sums_sha256: str) -> Dict[str, Any]:
    """The inspect document (schema in README.md): versions, target, images, packages, files, totals."""
    files: List[Dict[str, Any]] = []
    installer = manifest.get("installer")
    if isinstance(installer, dict):
        files.append(dict(_file(installer, "installer"), name="k8s-install.pyz"))
    files += [_file(entry, "artifact") for entry in manifest.get("artifacts") or []]
    files += [_file(entry, "extra") for entry in manifest.get("extras") or []]
    images = [
        {
            "name": str(image.get("name", "")),
            "digest": str(image.get("digest", "")),
            "platform": str(image.get("platform", "")),
            "size": int(image.get("size") or 0),
            "index_digest": image.get("index_digest"),
        }
        for image in manifest.get("images") or []
    ]
    packages = [
        {
            "name": str(rpm.get("name", "")),
            "version": str(rpm.get("evr", "")),
            "arch": str(rpm.get("arch", "")),
            "nevra": str(rpm.get("nevra", "")),
            "size": int(rpm.get("size") or 0),
            "sha256": str(rpm.get("sha256", "")),
            "repository": str(rpm.get("repository", "")),
            "requested": bool(rpm.get("requested", False)),
        }
        for rpm in manifest.get("rpms") or []
    ]
    return {
        "kubernetes": str(manifest.get("kubernetes", "")),
        "incomplete": incomplete_parts(manifest),
        "format": manifest.get("format"),
        "builder": str(manifest.get("builder", "")),
        "installer_version": str((installer or {}).get("version", "")) if isinstance(installer, dict) else "",
        "target": {
            "os": str(manifest.get("os", "")),
            "os_aliases": [str(alias) for alias in manifest.get("os_aliases") or []],
            "arch": str(manifest.get("arch", "")),
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
