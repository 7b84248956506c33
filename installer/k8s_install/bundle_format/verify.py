"""Prove a bundle (an unpacked folder or the tarball itself) is exactly what the builder wrote.

SHA256SUMS lists every file of the bundle but itself and its signature SHA256SUMS.sig; bundle.yaml says
what each artifact is and must agree with it. With trusted signers, the signature is checked first.
Verification fails on a mismatch, a missing file, an extra file, a link or special file, or a path that
escapes the bundle folder.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

import yaml

from k8s_install.bundle_format.image_index import INDEX_PATH, check_image_index
from k8s_install.bundle_format.layout import (
    CLUSTER_CONFIG_NAME,
    DELTA_NAME,
    IMAGES_DIR,
    MANIFEST_NAME,
    SECRETS_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    WORKER_SECRETS_NAME,
)
from k8s_install.bundle_format.shape import check_manifest_shape, incomplete_parts, load_manifest_yaml
from k8s_install.bundle_format.signature import TrustedSigners, check_signature, describe_unchecked
from k8s_install.errors import InstallError, yaml_problem

CHUNK = 1 << 20


class VerifyResult(NamedTuple):
    files: int
    bytes: int
    sums_sha256: str
    signature: str = ""  # what the signature check found, one line
    incomplete: Tuple[str, ...] = ()  # what bundle.yaml says the build left out (--allow-incomplete)


def signature_status(sums: bytes, signature: Optional[bytes], signers: Optional[TrustedSigners], where: str) -> str:
    """Check the signature when signers are configured (raises if it does not hold), else say it was not."""
    if signers is None:
        return describe_unchecked(signature)
    return check_signature(sums, signature, signers, where).describe()


def sha256_file(path: Path, offset: int = 0, length: Optional[int] = None) -> str:
    """sha256 of a file, or of `length` bytes of it from `offset` (a member inside a tarball)."""
    try:
        with open(path, "rb", buffering=0) as stream:
            return _sha256_stream(stream, path, offset, length)
    except OSError as error:
        raise unreadable(path, error) from None


def _sha256_stream(stream, path: Path, offset: int, length: Optional[int]) -> str:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256()
    if offset:
        stream.seek(offset)
    remaining = length
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while remaining is None or remaining > 0:
        want = CHUNK if remaining is None else min(CHUNK, remaining)
        got = stream.readinto(view[:want])
        if not got:
            break
        digest.update(view[:got])
        if remaining is not None:
            remaining -= got
    if remaining:
        raise InstallError(f"{path}: truncated at offset {offset}: re-copy the bundle")
    return digest.hexdigest()


def unreadable(path: Path, error: OSError) -> InstallError:
    """A bundle file this user cannot read (copied with the wrong owner or mode)."""
    return InstallError(
        f"{path}: cannot read it ({error.strerror}): copy the bundle again keeping its permissions "
        "(`chmod -R u+rwX,go+rX` the folder) or run as a user who can read it"
    )


def read_bundle_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise unreadable(path, error) from None


def safe_relative_path(name: str, where: str) -> str:
    """Normalise a bundle-relative path, refusing absolute paths and `..` components."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise InstallError(f"{where}: path {name!r} is not a relative path inside the bundle")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{name}/":
        raise InstallError(f"{where}: path {name!r} escapes the bundle folder")
    if normal != name.rstrip("/") or normal == ".":
        raise InstallError(
            f"{where}: path {name!r} is not in the builder's form ({normal!r}); "
            "use the tarball or folder the build wrote, not a repacked or rewritten copy"
        )
    return normal


def parse_sums(text: str, where: str = SUMS_NAME) -> Dict[str, str]:
    """Read `sha256sum` output: '<64 hex>  <path>' (or ' *<path>' for binary mode)."""
    sums: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InstallError(f"{where} line {number}: not '<sha256>  <path>': {line[:80]!r}")
        name = name[1:] if name[:1] in (" ", "*") else name
        path = safe_relative_path(name, f"{where} line {number}")
        if path in sums:
            raise InstallError(f"{where} line {number}: {path} is listed twice")
        sums[path] = digest
    return sums


def format_sums(sums: Dict[str, str]) -> str:
    return "".join(f"{sums[path]}  {path}\n" for path in sorted(sums))


def declared_files(manifest: dict) -> Dict[str, Tuple[str, Optional[int]]]:
    """Every file bundle.yaml names with its sha256 (and size when given)."""
    declared: Dict[str, Tuple[str, Optional[int]]] = {}
    for section in ("installer", "artifacts", "rpms", "extras"):
        entries = manifest.get(section) or []
        if isinstance(entries, dict):
            entries = [entries]
        for entry in entries:
            if isinstance(entry, dict) and "path" in entry and "sha256" in entry:
                declared[str(entry["path"])] = (str(entry["sha256"]), entry.get("size"))
    return declared


def check_consistency(
    sums: Dict[str, str],
    actual: Dict[str, Tuple[str, int]],
    read: Callable[[str], bytes],
    where: str,
    partial: bool = False,
) -> Dict[str, Any]:
    """Compare what is present (`actual`: path -> (sha256, size)) with SHA256SUMS and bundle.yaml, and bundle.yaml's
    images with images/index.json; `read` gives the bytes of a file of the bundle. `partial` (a delta bundle)
    lets files SHA256SUMS lists be missing: its base holds them. Returns bundle.yaml, checked."""
    missing = sorted(set(sums) - set(actual))
    if missing and not partial:
        raise InstallError(f"{where}: {len(missing)} file(s) listed in {SUMS_NAME} are missing, first {missing[0]}")
    extra = sorted(set(actual) - set(sums))
    if extra:
        raise not_listed(where, extra[0])
    for path in sorted(set(sums) & set(actual)):
        if actual[path][0] != sums[path]:
            raise corrupted(where, path, actual[path][0], sums[path])
    check_blob_digests(actual, where)
    if MANIFEST_NAME not in sums:
        raise InstallError(f"{where}: {MANIFEST_NAME} is not listed in {SUMS_NAME}")
    try:
        manifest = check_manifest_shape(load_manifest_yaml(read(MANIFEST_NAME)), where)
    except yaml.YAMLError as error:
        raise InstallError(f"{where}: {MANIFEST_NAME} is not valid YAML: {yaml_problem(error)}") from None
    for path, (digest, size) in sorted(declared_files(manifest).items()):
        if path not in sums:
            raise InstallError(f"{where}: {MANIFEST_NAME} names {path}, which is not in {SUMS_NAME}")
        if sums[path] != digest:
            raise InstallError(f"{where}: {MANIFEST_NAME} and {SUMS_NAME} disagree on the sha256 of {path}")
        if size is not None and path in actual and actual[path][1] != size:
            raise InstallError(f"{where}: {path} has {actual[path][1]} bytes, {MANIFEST_NAME} says {size}")
    if partial and INDEX_PATH not in actual:
        return manifest  # a delta without a new image index: the base's is checked once the delta is completed
    index = read(INDEX_PATH) if INDEX_PATH in actual else None
    check_image_index(manifest, index, set(sums), where, None if partial else read)  # a delta: blobs in its base
    return manifest


def not_listed(where: str, path: str) -> InstallError:
    """A file SHA256SUMS does not list; the operator's own files (secrets, a cluster.yaml) say where they go."""
    if path in (SECRETS_NAME, WORKER_SECRETS_NAME):
        return InstallError(
            f"{where}: {path} does not belong inside the bundle folder (secrets never travel in a bundle): move it "
            "beside the folder, where the installer looks for it, or pass --secrets FILE"
        )
    if path == CLUSTER_CONFIG_NAME:
        return InstallError(
            f"{where}: {path} is not part of this bundle (built without --cluster): move it out of the folder and "
            "pass --config FILE"
        )
    return InstallError(f"{where}: {path} is not listed in {SUMS_NAME}: remove it or rebuild the bundle")


def corrupted(where: str, path: str, actual: str, expected: str) -> InstallError:
    if path == CLUSTER_CONFIG_NAME:  # edited where it lies, as a hint about nodes[] may have suggested
        return InstallError(
            f"{where}: {path} was changed after the build (sha256 {actual}, expected {expected}); the bundle's copy "
            f"is checked like every file: put the original back (re-copy it from the bundle tarball) and edit a copy "
            "outside the bundle folder, passed with --config FILE"
        )
    return InstallError(f"{where}: {path} is corrupted: sha256 {actual}, expected {expected}; re-copy the bundle")


BLOBS_PREFIX = f"{IMAGES_DIR}/blobs/sha256/"


def check_blob_digests(actual: Dict[str, Tuple[str, int]], where: str) -> None:
    """Every content-addressed file (images/blobs/sha256/X) hashes to X: SHA256SUMS alone is not enough, as a
    blob changed together with its SHA256SUMS line would pass it and reach containerd."""
    for path in sorted(actual):
        if path.startswith(BLOBS_PREFIX) and actual[path][0] != path[len(BLOBS_PREFIX) :]:
            raise InstallError(
                f"{where}: {path} is not the blob its name says (sha256 {actual[path][0]}); "
                "the image was altered: re-copy the bundle from the build"
            )


def _walk_bundle(root: Path) -> List[str]:
    """Every regular file under root as a relative path; links and special files are refused."""
    found: List[str] = []

    def refuse(error: OSError) -> None:  # os.walk would skip an unreadable folder: its files would seem missing
        raise unreadable(Path(error.filename or root), error)

    for directory, subdirs, files in os.walk(root, onerror=refuse):
        for name in subdirs + files:
            full = os.path.join(directory, name)
            mode = os.lstat(full).st_mode
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            if stat.S_ISLNK(mode):
                raise InstallError(f"{root}: {relative} is a symbolic link; a bundle holds only regular files")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise InstallError(f"{root}: {relative} is not a regular file")
            found.append(relative)
    return found


def verify_directory(root: Path, jobs: int = 0, signers: Optional[TrustedSigners] = None) -> VerifyResult:
    """Verify an unpacked bundle folder, hashing files on several threads."""
    root = Path(root)
    sums_path = root / SUMS_NAME
    if root.is_file():
        raise InstallError(f"{root}: a file, not the unpacked bundle folder: unpack it with `tar -xf`, use the folder")
    if not root.exists():
        raise InstallError(f"{root}: no such bundle folder")
    if not sums_path.is_file() or sums_path.is_symlink():
        raise InstallError(f"{root}: no {SUMS_NAME}: this is not a bundle folder (or it was copied incompletely)")
    sums_bytes = read_bundle_file(sums_path)
    sig_path = root / SIGNATURE_NAME
    signature = read_bundle_file(sig_path) if sig_path.is_file() and not sig_path.is_symlink() else None
    status = signature_status(sums_bytes, signature, signers, str(root))
    sums = parse_sums(sums_bytes.decode("utf-8", "replace"), str(sums_path))
    present = [path for path in _walk_bundle(root) if path not in (SUMS_NAME, SIGNATURE_NAME)]
    workers = jobs or min(8, (os.cpu_count() or 2) * 2)

    def measure(relative: str) -> Tuple[str, Tuple[str, int]]:
        full = root / relative
        return relative, (sha256_file(full), full.stat().st_size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        actual = dict(pool.map(measure, _largest_first(root, present)))
    manifest = check_consistency(sums, actual, lambda relative: read_bundle_file(root / relative), str(root))
    total = sum(size for _, size in actual.values())
    sums_sha256 = hashlib.sha256(sums_bytes).hexdigest()
    return VerifyResult(len(actual), total, sums_sha256, status, tuple(incomplete_parts(manifest)))


def _largest_first(root: Path, paths: Iterable[str]) -> List[str]:
    return sorted(paths, key=lambda p: -(root / p).stat().st_size)


def verify_tarball(
    path: Path, jobs: int = 0, signers: Optional[TrustedSigners] = None, delta: bool = False
) -> VerifyResult:
    """Verify a bundle tarball in place, without unpacking it (uncompressed tar only). With `delta`, a delta
    bundle's tarball: its DELTA.yaml is required, and the files it left out (its base holds them) may be
    missing; every file it does carry must match."""
    path = Path(path)
    where = str(path)
    try:
        with tarfile.open(path, "r:") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, OSError) as error:
        raise InstallError(f"{where}: not a readable bundle tarball ({error}){_compression_hint(path)}") from None
    top: Optional[str] = None
    files: Dict[str, tarfile.TarInfo] = {}
    for member in members:
        name = safe_relative_path(member.name, where)
        head = name.split("/", 1)[0]
        if top is None:
            top = head
        if head != top:
            raise InstallError(f"{where}: member {member.name} is outside the top folder {top}/")
        if member.issym() or member.islnk():
            raise InstallError(f"{where}: member {member.name} is a link; a bundle holds only regular files")
        if member.isdir():
            continue
        if not member.isfile():
            raise InstallError(f"{where}: member {member.name} is not a regular file")
        if "/" not in name:
            raise InstallError(f"{where}: member {member.name} is not inside the top folder")
        relative = name.split("/", 1)[1]
        if relative in files:
            raise InstallError(f"{where}: member {member.name} appears twice")
        files[relative] = member
    if SUMS_NAME not in files:
        raise InstallError(f"{where}: no {SUMS_NAME} in the tarball: this is not a bundle")
    sums_member = files.pop(SUMS_NAME)
    sums_bytes = _read_member(path, sums_member)
    if delta and files.pop(DELTA_NAME, None) is None:
        raise InstallError(f"{where}: no {DELTA_NAME} in the tarball: this is not a delta bundle")
    sig_member = files.pop(SIGNATURE_NAME, None)
    signature = _read_member(path, sig_member) if sig_member is not None else None
    status = signature_status(sums_bytes, signature, signers, where)
    sums = parse_sums(sums_bytes.decode("utf-8", "replace"), f"{where}:{SUMS_NAME}")
    workers = jobs or min(8, (os.cpu_count() or 2) * 2)

    def measure(item: Tuple[str, tarfile.TarInfo]) -> Tuple[str, Tuple[str, int]]:
        relative, member = item
        return relative, (sha256_file(path, member.offset_data, member.size), member.size)

    ordered = sorted(files.items(), key=lambda item: -item[1].size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        actual = dict(pool.map(measure, ordered))
    manifest = check_consistency(sums, actual, lambda relative: _read_member(path, files[relative]), where, delta)
    total = sum(member.size for member in files.values())
    sums_sha256 = hashlib.sha256(sums_bytes).hexdigest()
    return VerifyResult(len(actual), total, sums_sha256, status, tuple(incomplete_parts(manifest)))


COMPRESSED = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}


def _compression_hint(path: Path) -> str:
    """What to do with a tarball that does not open: a compressed one is unpacked as it is, a damaged one
    copied again."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(6)
    except OSError:
        return "; re-copy it"
    for magic, tool in COMPRESSED.items():
        if head.startswith(magic):
            return f"; it is compressed with {tool}: unpack it with `tar -xf` and verify the folder"
    return "; re-copy it"


def _read_member(path: Path, member: tarfile.TarInfo) -> bytes:
    with open(path, "rb") as stream:
        stream.seek(member.offset_data)
        return stream.read(member.size)


def verify_bundle(target: Path, jobs: int = 0, signers: Optional[TrustedSigners] = None) -> VerifyResult:
    target = Path(target)
    if target.is_dir():
        return verify_directory(target, jobs, signers)
    if target.is_file():
        return verify_tarball(target, jobs, signers)
    raise InstallError(f"{target}: no such bundle folder or tarball")
