"""Delta bundles: `bundler build --from OLD` writes only the files the old bundle does not already hold.

Files are matched by content (sha256), whatever their path: file artifacts, image blobs, RPMs. The delta
carries the complete new SHA256SUMS and bundle.yaml, the installer (so it can complete itself), and
DELTA.yaml naming its base. On the node, unpacked beside the base folder, `k8s-install.pyz verify --base
OLD_DIR` copies the missing files from the base by their sha256 and verifies the result: the complete new
bundle, byte for byte. The builder still downloads everything (the full SHA256SUMS needs every sum); the
delta saves what is carried into the air gap.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Optional

import yaml

from bundler.bundle_writer import BundleContents
from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import DELTA_NAME, INSTALLER_NAME, MANIFEST_NAME, SUMS_NAME, bundle_dir_name
from k8s_install.bundle_format.shape import check_manifest_shape
from k8s_install.bundle_format.verify import declared_files, parse_sums
from k8s_install.errors import yaml_problem

ALWAYS_CARRIED = (INSTALLER_NAME, MANIFEST_NAME)  # SHA256SUMS is always written


@dataclass(frozen=True)
class Base:
    name: str  # the base bundle's top folder
    sums_sha256: Optional[str]  # its root of trust; None when only its bundle.yaml was given
    digests: FrozenSet[str]  # every file content it holds


def _from_sums(name: str, sums_bytes: bytes, where: str) -> Base:
    try:
        sums = parse_sums(sums_bytes.decode("utf-8", "replace"), where)
    except BundlerError as error:
        raise BundlerError(f"--from: {error}") from None
    return Base(name, hashlib.sha256(sums_bytes).hexdigest(), frozenset(sums.values()))


def read_base(path: Path) -> Base:
    """The old bundle: its tarball, its unpacked folder, or its bundle.yaml (SHA256SUMS beside it is used when
    there; a bare bundle.yaml lists files and RPMs but not image blobs, so those are all carried)."""
    path = Path(path)
    if path.is_dir():
        sums = path / SUMS_NAME
        if not sums.is_file():
            raise BundlerError(f"--from {path}: no {SUMS_NAME}: not an unpacked bundle folder")
        return _from_sums(path.name, sums.read_bytes(), str(sums))
    if not path.is_file():
        raise BundlerError(f"--from {path}: not found; give the old bundle's tarball, folder or bundle.yaml")
    if path.name == MANIFEST_NAME or path.suffix in (".yaml", ".yml"):  # a bundle.yaml kept under another name
        if path.name == MANIFEST_NAME and (path.parent / SUMS_NAME).is_file():
            return read_base(path.parent)
        try:
            manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as error:
            raise BundlerError(f"--from {path}: cannot read it as a bundle.yaml: {error}") from None
        except yaml.YAMLError as error:
            raise BundlerError(f"--from {path}: not valid YAML: {yaml_problem(error)}") from None
        if not isinstance(manifest, dict) or "kubernetes" not in manifest:
            raise BundlerError(f"--from {path}: not a bundle.yaml (no 'kubernetes' field)")
        check_manifest_shape(manifest, f"--from {path}")
        name = bundle_dir_name(str(manifest["kubernetes"]), str(manifest.get("os")), str(manifest.get("arch")))
        return Base(name, None, frozenset(digest for digest, _ in declared_files(manifest).values()))
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == SUMS_NAME and member.isfile():
                    stream = archive.extractfile(member)
                    data = stream.read() if stream else b""
                    return _from_sums(parts[0], data, f"{path}:{member.name}")
    except (tarfile.TarError, OSError) as error:
        reason = str(error).splitlines()[0].rstrip(":")  # tarfile lists every compression it tried
        raise BundlerError(
            f"--from {path}: not a bundle tarball ({reason}); give its tarball, folder or bundle.yaml"
        ) from None
    raise BundlerError(f"--from {path}: no TOP/{SUMS_NAME} inside: not a bundle tarball")


class DeltaContents(BundleContents):
    """The new bundle's contents minus what the base holds; SHA256SUMS still lists every file."""

    def __init__(self, full: BundleContents, base: Base, top: str) -> None:
        super().__init__()
        self.base = base
        self.full_sums = full.sums_text()
        self.left_out = 0
        self.left_out_bytes = 0
        for path, entry in full.entries.items():
            if entry.sha256 in base.digests and path not in ALWAYS_CARRIED:
                self.left_out += 1
                self.left_out_bytes += entry.size
            else:
                self.entries[path] = entry
        record = {
            "delta_of": top,
            "base": {"bundle": base.name, "sums_sha256": base.sums_sha256},
            "files_left_out": self.left_out,
            "complete_with": f"./{INSTALLER_NAME} verify --base ../{base.name}",
        }
        self.add_bytes(DELTA_NAME, yaml.safe_dump(record, sort_keys=False).encode())

    def sums_text(self) -> str:
        return self.full_sums
