"""What a build checks before its first byte is fetched: the output and cache folders take files, the programs
the build will run are installed, and (once the plan knows the sizes) the disks have room.

Each check fails with one line naming the path or program and what to do, so a build never downloads
gigabytes only to fail at the end on something that was true from the start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Tuple

from bundler.bundle_writer import remove_quietly
from bundler.deb.spec import deb_spec
from bundler.errors import BundlerError
from bundler.manifest import OsTarget, Release
from bundler.paths import key_pins_path
from bundler.plan import Plan
from bundler.progress import human_size
from bundler.rpm.keys import load_fingerprint_pins
from bundler.rpm.spec import rpm_spec

INSTALL_HINTS = {
    "rpmkeys": "the rpm package: `apt-get install rpm` or `dnf install rpm`",
    "gpg": "gnupg: `apt-get install gnupg` or `dnf install gnupg2`",
    "gpgv": "gnupg: `apt-get install gpgv` or `dnf install gnupg2`",
    "apt-get": "apt: Debian and Ubuntu targets are built on a Debian or Ubuntu machine (apt resolves their packages)",
    "apt-ftparchive": "apt-utils: `apt-get install apt-utils`",
}
HEADROOM = 1 << 20  # the installer, bundle.yaml, the SBOM and tar headers on top of the blobs


def check_writable(folder: Path, flag: str) -> None:
    """Create `folder` if needed and prove a file can be written in it (a read-only disk, a folder owned by
    someone else), removing the probe again."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".bundler-probe-", dir=folder)
    except OSError as error:
        raise BundlerError(
            f"{flag} {folder}: cannot write there ({error.strerror or error}); choose another {flag}"
        ) from None
    os.close(handle)
    remove_quietly(Path(probe))


def needed_programs(release: Release, os_target: OsTarget, arch: str) -> Dict[str, str]:
    """program -> why this build runs it, from the manifest's RPM or apt repositories."""
    if os_target.debs and deb_spec(release.raw, os_target.id, str(release.source)) is not None:
        return {
            "apt-get": f"to resolve {os_target.id}'s packages as apt does",
            "apt-ftparchive": "to write the bundle's apt repository",
            "gpg": "to read the apt repositories' pinned keys and sign the bundle's repository",
            "gpgv": "to check the apt repositories' InRelease signatures",
        }
    spec = rpm_spec(release.raw, os_target.id, str(release.source)) if os_target.rpms else None
    if spec is None:
        return {}
    fingerprints = load_fingerprint_pins(key_pins_path(release.kubernetes))
    needed: Dict[str, str] = {}
    for repo in spec.repositories:
        if not repo.gpgkey:
            continue
        needed.setdefault("rpmkeys", f"to check the signatures of repository {repo.id}'s RPMs")
        pinned = bool(repo.gpgkey_fingerprint or fingerprints.get(repo.gpgkey) or repo.gpgkey_sha256)
        if repo.gpgkey_fingerprint or fingerprints.get(repo.gpgkey):
            needed.setdefault("gpg", f"to read repository {repo.id}'s pinned key")
        signed = pinned if repo.metadata_signed is None else repo.metadata_signed
        if signed:
            needed.setdefault("gpg", f"to check repository {repo.id}'s repomd.xml signature")
            needed.setdefault("gpgv", f"to check repository {repo.id}'s repomd.xml signature")
    return needed


def check_programs(needed: Dict[str, str]) -> None:
    missing = [(name, why) for name, why in needed.items() if shutil.which(name) is None]
    if missing:
        name, why = missing[0]
        more = f" (also missing: {', '.join(n for n, _ in missing[1:])})" if missing[1:] else ""
        raise BundlerError(
            f"this build needs {name} {why}, and it is not installed: install {INSTALL_HINTS[name]}{more}"
        )


@dataclass(frozen=True)
class SpaceNeed:
    folder: Path
    bytes: int
    what: str


def space_needs(plan: Plan, cache: Path, output: Path, base_digests: FrozenSet[str] = frozenset()) -> List[SpaceNeed]:
    """What the fetch adds to the cache and what the tarball takes in the output folder (a delta leaves out
    what its base holds). Unknown sizes count as nothing: the estimate never refuses a build that fits."""
    blobs = plan.unique_blobs()
    fetch = sum(b.size or 0 for b in blobs if not b.cached)
    packed = sum(b.size or 0 for b in blobs if not (b.algorithm == "sha256" and b.digest in base_digests))
    return [SpaceNeed(cache, fetch, "downloads"), SpaceNeed(output, packed + HEADROOM, "the bundle tarball")]


def check_space(needs: List[SpaceNeed]) -> None:
    """One line naming the folder, what it needs and what is free; folders on one file system add up."""
    by_device: Dict[int, Tuple[Path, int, List[str]]] = {}
    for need in needs:
        device = os.stat(need.folder).st_dev
        folder, total, whats = by_device.get(device, (need.folder, 0, []))
        by_device[device] = (folder, total + need.bytes, whats + [f"{human_size(need.bytes)} for {need.what}"])
    for folder, total, whats in by_device.values():
        free = free_bytes(folder)
        if free is not None and total > free:
            raise BundlerError(
                f"not enough free space in {folder}: the build needs {human_size(total)} ({' and '.join(whats)}), "
                f"{human_size(free)} is free; free some space or choose another --cache/--output"
            )


def free_bytes(folder: Path) -> Optional[int]:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize
