"""Pick the image manifest for the bundle's platform out of a multi-platform index.

linux/amd64 takes any variant; linux/arm64 takes variant v8 or none. Attestation entries (buildkit's
`vnd.docker.reference.type: attestation-manifest`, platform unknown/unknown) are never chosen.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from bundler.errors import BundlerError

ATTESTATION_TYPE = "attestation-manifest"
ACCEPTED_VARIANTS = {"amd64": None, "arm64": ("", "v8")}  # None: any variant


def platform_text(platform: Dict[str, Any]) -> str:
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{text}/{platform['variant']}" if platform.get("variant") else text


def _is_attestation(entry: Dict[str, Any]) -> bool:
    annotations = entry.get("annotations") or {}
    platform = entry.get("platform") or {}
    return annotations.get("vnd.docker.reference.type") == ATTESTATION_TYPE or (
        platform.get("os"),
        platform.get("architecture"),
    ) == ("unknown", "unknown")


def matches(platform: Dict[str, Any], arch: str) -> bool:
    if platform.get("os") != "linux" or platform.get("architecture") != arch:
        return False
    accepted = ACCEPTED_VARIANTS.get(arch)
    return accepted is None or (platform.get("variant") or "") in accepted


def select_manifest(index: Dict[str, Any], arch: str, what: str) -> Dict[str, Any]:
    """The descriptor of the linux/`arch` image in an index; an error lists what the index offers."""
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise BundlerError(f"{what}: the image index has no 'manifests' list")
    offered: List[str] = []
    chosen: Optional[Dict[str, Any]] = None
    for entry in entries:
        if not isinstance(entry, dict) or _is_attestation(entry):
            continue
        platform = entry.get("platform") or {}
        offered.append(platform_text(platform))
        if chosen is None and matches(platform, arch):
            chosen = entry
    if chosen is None:
        has = ", ".join(offered) or "nothing"
        raise BundlerError(f"{what}: no linux/{arch} image in its index (it has {has}); choose another --arch or tag")
    return chosen


def check_config_platform(config: Dict[str, Any], arch: str, what: str) -> None:
    """A single-platform image must be for the bundle's platform (its config says which)."""
    platform = {
        "os": config.get("os"),
        "architecture": config.get("architecture"),
        "variant": config.get("variant"),
    }
    if not matches(platform, arch):
        raise BundlerError(f"{what}: the image is for {platform_text(platform)}, not linux/{arch}")
