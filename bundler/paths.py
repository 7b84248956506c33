"""Where the project's data lives: release manifests, pinned checksums and the installer source.

In a checkout they are the top-level manifests/ and checksums/ folders; an installed copy (wheel, pipx)
carries them inside the package (setup.py copies them there at build time). The installer source is
wherever its package was imported from.
"""

from __future__ import annotations

from pathlib import Path

import k8s_install

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def _data_dir(name: str) -> Path:
    packaged = PACKAGE_DIR / "release_data" / name  # see setup.py
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


MANIFESTS_DIR = _data_dir("manifests")
CHECKSUMS_DIR = _data_dir("checksums")
INSTALLER_PACKAGE_DIR = Path(k8s_install.__file__).resolve().parent


def manifest_path(kubernetes: str) -> Path:
    return MANIFESTS_DIR / f"k8s-{kubernetes}.yaml"


def checksums_path(kubernetes: str) -> Path:
    return CHECKSUMS_DIR / f"k8s-{kubernetes}.sha256"


def key_pins_path(kubernetes: str) -> Path:
    """OpenPGP fingerprints of the RPM repositories' keys, keyed by the key's URL."""
    return CHECKSUMS_DIR / f"k8s-{kubernetes}.keys"


def supported_versions() -> list[str]:
    """Oldest first, as versions (1.29.6 before 1.29.15)."""
    names = [p.stem[len("k8s-") :] for p in MANIFESTS_DIR.glob("k8s-*.yaml")]
    return sorted(names, key=lambda v: [int(part) if part.isdigit() else 0 for part in v.split(".")])
