"""Delta bundles: `bundler build --from OLD` writes only the files the old bundle does not already hold.

Files are matched by content (sha256), whatever their path: file artifacts, image blobs, RPMs. The delta
carries the complete new SHA256SUMS and bundle.yaml, the installer (so it can complete itself), and
DELTA.yaml naming its base. On the node, unpacked beside the base folder, `k8s-install.pyz verify --base
OLD_DIR` copies the missing files from the base by their sha256 and verifies the result: the complete new
bundle, byte for byte. The builder still downloads everything (the full SHA256SUMS needs every sum); the
delta saves what is carried into the air gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Optional

import yaml

from bundler.bundle_writer import BundleContents
from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import DELTA_NAME, INSTALLER_NAME, MANIFEST_NAME, SUMS_NAME
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import yaml_problem

ALWAYS_CARRIED = (INSTALLER_NAME, MANIFEST_NAME)  # SHA256SUMS is always written


@dataclass(frozen=True)
class Base:
    name: str  # the base bundle's top folder
    sums_sha256: Optional[str]  # its root of trust; None when only its bundle.yaml was given
    digests: FrozenSet[str]  # every file content it holds


def read_base(path: Path) -> Base:
    """The old bundle: its tarball, its unpacked folder, or its bundle.yaml (SHA256SUMS beside it is used when
    there; a bare bundle.yaml lists files and RPMs but not image blobs, so those are all carried). A tarball
    or folder is opened by the one reader: SHA256SUMS and bundle.yaml checked, the other files not hashed. An
    earlier delta's tarball serves too: its SHA256SUMS lists every file of the complete bundle it makes."""
    path = Path(path)
    if not path.exists():
        raise BundlerError(f"--from {path}: not found; give the old bundle's tarball, folder or bundle.yaml")
    if path.is_file() and (path.name == MANIFEST_NAME or path.suffix in (".yaml", ".yml")):
        if path.name == MANIFEST_NAME and (path.parent / SUMS_NAME).is_file():
            return read_base(path.parent)
        return _from_manifest(path)  # a bundle.yaml, maybe kept under another name
    try:
        with open_bundle(path, check_files=False, allow_delta=True) as bundle:
            return Base(bundle.top, bundle.sums_sha256, frozenset(bundle.sums.values()))
    except BundlerError as error:
        raise BundlerError(f"--from {error}") from None


def _from_manifest(path: Path) -> Base:
    try:
        data = load_yaml(path.read_bytes()) or {}
    except OSError as error:
        raise BundlerError(f"--from {path}: cannot read it as a bundle.yaml: {error}") from None
    except yaml.YAMLError as error:
        raise BundlerError(f"--from {path}: not valid YAML: {yaml_problem(error)}") from None
    if not isinstance(data, dict) or "kubernetes" not in data:
        raise BundlerError(f"--from {path}: not a bundle.yaml (no 'kubernetes' field)")
    manifest = BundleManifest.from_mapping(data, f"--from {path}")
    return Base(manifest.top, None, frozenset(entry.sha256 for entry in manifest.files))


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
