"""The SHA256SUMS codec both tools share: `sha256sum` lines in and out, bundle-relative paths checked, and
the sha256 of a file (or of a byte range of one: a member inside the bundle tarball).

SHA256SUMS lists every file of a bundle but itself and SHA256SUMS.sig, one `<64 hex>  <path>` a line, sorted
by path: exactly what `sha256sum` prints, so `sha256sum -c SHA256SUMS` in the folder checks it too.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import Dict, Optional

from k8s_install.bundle_format.layout import SUMS_NAME
from k8s_install.errors import InstallError

CHUNK = 1 << 20
HEX_DIGITS = frozenset("0123456789abcdef")


def unreadable(path: Path, error: OSError) -> InstallError:
    """A bundle file this user cannot read (copied with the wrong owner or mode)."""
    return InstallError(
        f"{path}: cannot read it ({error.strerror}): copy the bundle again keeping its permissions "
        "(`chmod -R u+rwX,go+rX` the folder) or run as a user who can read it"
    )


def sha256_file(path: Path, offset: int = 0, length: Optional[int] = None) -> str:
    """sha256 of a file, or of `length` bytes of it from `offset`."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError as error:
        raise unreadable(Path(path), error) from None
    try:
        return sha256_range(fd, offset, length, str(path))
    finally:
        os.close(fd)


def sha256_range(fd: int, offset: int, length: Optional[int], where: str) -> str:
    """sha256 of `length` bytes (None: to the end) of an open file from `offset`, read with pread: several
    threads can hash members of one tarball through one descriptor."""
    digest = hashlib.sha256()
    position, remaining = offset, length
    while remaining is None or remaining > 0:
        want = CHUNK if remaining is None else min(CHUNK, remaining)
        try:
            data = os.pread(fd, want, position)
        except OSError as error:
            raise unreadable(Path(where), error) from None
        if not data:
            break
        digest.update(data)
        position += len(data)
        if remaining is not None:
            remaining -= len(data)
    if remaining:
        raise InstallError(f"{where}: truncated at offset {position}: re-copy the bundle")
    return digest.hexdigest()


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
    """Read `sha256sum` output: '<64 hex>  <path>' (or ' *<path>' for binary mode) -> {path: sha256}."""
    sums: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        if not sep or len(digest) != 64 or not set(digest) <= HEX_DIGITS:
            raise InstallError(f"{where} line {number}: not '<sha256>  <path>': {line[:80]!r}")
        name = name[1:] if name[:1] in (" ", "*") else name
        path = safe_relative_path(name, f"{where} line {number}")
        if path in sums:
            raise InstallError(f"{where} line {number}: {path} is listed twice")
        sums[path] = digest
    return sums


def format_sums(sums: Dict[str, str]) -> str:
    """{path: sha256} as SHA256SUMS text, sorted by path."""
    return "".join(f"{sums[path]}  {path}\n" for path in sorted(sums))
