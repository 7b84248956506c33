"""Where the project's data lives: release manifests, pinned checksums and the installer source."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS_DIR = PROJECT_ROOT / "manifests"
CHECKSUMS_DIR = PROJECT_ROOT / "checksums"
INSTALLER_PACKAGE_DIR = PROJECT_ROOT / "installer"


def manifest_path(kubernetes: str) -> Path:
    return MANIFESTS_DIR / f"k8s-{kubernetes}.yaml"


def checksums_path(kubernetes: str) -> Path:
    return CHECKSUMS_DIR / f"k8s-{kubernetes}.sha256"


def key_pins_path(kubernetes: str) -> Path:
    """OpenPGP fingerprints of the RPM repositories' keys, keyed by the key's URL."""
    return CHECKSUMS_DIR / f"k8s-{kubernetes}.keys"


def supported_versions() -> list[str]:
    return sorted(p.stem[len("k8s-") :] for p in MANIFESTS_DIR.glob("k8s-*.yaml"))
