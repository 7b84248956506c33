"""Prove a bundle's files are exactly what the builder wrote: every problem found, not only the first.

SHA256SUMS lists every file of the bundle but itself and its signature SHA256SUMS.sig; bundle.yaml says
what each artifact is and must agree with it, and images/index.json with bundle.yaml's images. Verification
fails on a mismatch, a missing file or an extra file (each listed, as `sha256sum -c` does), and on a link, a
special file or a path that escapes the bundle folder (found while listing, see members.py).
`opened.open_bundle` runs these checks; nothing else needs to.
"""

from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Tuple

from k8s_install.bundle_format.image_index import INDEX_PATH, check_image_index
from k8s_install.bundle_format.layout import (
    CLUSTER_CONFIG_NAME,
    IMAGES_DIR,
    MANIFEST_NAME,
    SECRETS_NAME,
    SUMS_NAME,
    WORKER_SECRETS_NAME,
)
from k8s_install.bundle_format.model import BundleManifest, declared_files
from k8s_install.errors import InstallError

BLOBS_PREFIX = f"{IMAGES_DIR}/blobs/sha256/"


class VerifyResult(NamedTuple):
    files: int
    bytes: int
    sums_sha256: str
    signature: str = ""  # what the signature check found, one line
    incomplete: Tuple[str, ...] = ()  # what an --allow-incomplete build left out (bundle.yaml `incomplete`)


class VerificationFailed(InstallError):
    """The files of a bundle do not match what it says it holds; `problems` lists every one, one line each."""

    def __init__(self, where: str, problems: List[str]) -> None:
        self.where, self.problems = where, list(problems)
        more = len(self.problems) - 1
        tail = f" (and {more} more problem(s): `verify` lists them all)" if more else ""
        super().__init__(f"{where}: {self.problems[0]}{tail}")

    def summary(self) -> str:
        """The last line of `verify`, after it listed every problem."""
        count = len(self.problems)
        first = self.problems[0]
        return (
            f"{self.where}: {first}" if count == 1 else f"{self.where}: {count} problems (listed above), first: {first}"
        )


def file_problems(sums: Dict[str, str], actual: Dict[str, Tuple[str, int]], partial: bool = False) -> List[str]:
    """What is present (`actual`: path -> (sha256, size)) against SHA256SUMS, one line per file, by path.
    `partial` (a delta bundle) lets files SHA256SUMS lists be missing: its base holds them."""
    found: Dict[str, str] = {}
    for path in sorted(set(sums) | set(actual)):
        if path not in actual:
            if not partial:
                found[path] = f"{path} is missing (listed in {SUMS_NAME}); re-copy the bundle"
        elif path not in sums:
            found[path] = not_listed(path)
        elif actual[path][0] != sums[path]:
            found[path] = corrupted(path, actual[path][0], sums[path])
        elif path.startswith(BLOBS_PREFIX) and actual[path][0] != path[len(BLOBS_PREFIX) :]:
            # SHA256SUMS alone is not enough: a blob changed with its SHA256SUMS line would reach containerd
            found[path] = (
                f"{path} is not the blob its name says (sha256 {actual[path][0]}); "
                "the image was altered: re-copy the bundle from the build"
            )
    return [found[path] for path in sorted(found)]


def not_listed(path: str) -> str:
    """A file SHA256SUMS does not list; the operator's own files (secrets, a cluster.yaml) say where they go."""
    if path in (SECRETS_NAME, WORKER_SECRETS_NAME):
        return (
            f"{path} does not belong inside the bundle folder (secrets never travel in a bundle): move it "
            "beside the folder, where the installer looks for it, or pass --secrets FILE"
        )
    if path == CLUSTER_CONFIG_NAME:
        return (
            f"{path} is not part of this bundle (built without --cluster): move it out of the folder and "
            "pass --config FILE"
        )
    return f"{path} is not listed in {SUMS_NAME}: remove it or rebuild the bundle"


def corrupted(path: str, actual: str, expected: str) -> str:
    if path == CLUSTER_CONFIG_NAME:  # edited where it lies, as a hint about nodes[] may have suggested
        return (
            f"{path} was changed after the build (sha256 {actual}, expected {expected}); the bundle's copy "
            "is checked like every file: put the original back (re-copy it from the bundle tarball) and edit a copy "
            "outside the bundle folder, passed with --config FILE"
        )
    return f"{path} is corrupted: sha256 {actual}, expected {expected}; re-copy the bundle"


def manifest_problems(
    manifest: BundleManifest,
    sums: Dict[str, str],
    actual: Dict[str, Tuple[str, int]],
    read: Callable[[str], bytes],
    where: str,
    partial: bool = False,
) -> List[str]:
    """bundle.yaml against SHA256SUMS (the files it names, their sums and sizes), and its images against
    images/index.json and the blobs present."""
    problems: List[str] = []
    for path, (digest, size) in sorted(declared_files(manifest).items()):
        if path not in sums:
            problems.append(f"{MANIFEST_NAME} names {path}, which is not in {SUMS_NAME}")
        elif sums[path] != digest:
            problems.append(f"{MANIFEST_NAME} and {SUMS_NAME} disagree on the sha256 of {path}")
        elif size is not None and path in actual and actual[path][0] == digest and actual[path][1] != size:
            problems.append(f"{path} has {actual[path][1]} bytes, {MANIFEST_NAME} says {size}")
    if partial and INDEX_PATH not in actual:
        return problems  # a delta without a new image index: the base's is checked once the delta is completed
    index = read(INDEX_PATH) if INDEX_PATH in actual else None
    try:  # a delta: the blobs are in its base
        check_image_index(manifest, index, set(sums), where, None if partial else read)
    except InstallError as error:
        problems.append(without_where(str(error), where))
    return problems


def without_where(message: str, where: str) -> str:
    prefix = f"{where}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
