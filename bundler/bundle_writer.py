"""Write a bundle tarball reproducibly: sorted entries, owner 0:0, one fixed mtime, fixed modes.

The tarball holds one top folder. SHA256SUMS (every file but itself and its signature) is generated here,
from sums the caller already verified, so the writer never re-reads the bytes it lists; SHA256SUMS.sig, when
the caller signed the same text, goes beside it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Optional

from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import SIGNATURE_NAME, SUMS_NAME
from k8s_install.bundle_format.sums import format_sums, safe_relative_path

COPY_BUFFER = 4 << 20


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    executable: bool = False
    source: Optional[Path] = None
    data: Optional[bytes] = None


class BundleContents:
    """What goes into the bundle folder: relative path -> entry (a cached file or bytes)."""

    def __init__(self) -> None:
        self.entries: Dict[str, Entry] = {}

    def _put(self, path: str, entry: Entry) -> None:
        path = safe_relative_path(path, "bundle contents")
        existing = self.entries.get(path)
        if existing is not None and existing.sha256 != entry.sha256:
            raise BundlerError(f"two different files would both be written to {path} in the bundle")
        self.entries[path] = entry

    def add_file(self, path: str, source: Path, sha256: str, size: int, executable: bool = False) -> None:
        self._put(path, Entry(sha256, size, executable, source=Path(source)))

    def add_bytes(self, path: str, data: bytes, executable: bool = False) -> None:
        self._put(path, Entry(hashlib.sha256(data).hexdigest(), len(data), executable, data=data))

    def sums_text(self) -> str:
        return format_sums({path: entry.sha256 for path, entry in self.entries.items()})


def _info(name: str, epoch: int, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _directories(paths: list) -> list:
    found = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            found.add("/".join(parts[:depth]))
    return sorted(found)


class _TarStream:
    """A ustar/pax stream written by hand so file bodies go kernel-side (copy_file_range), not through
    Python buffers: headers come from tarfile.TarInfo.tobuf, bodies are padded to 512-byte blocks, and the
    archive ends with two zero blocks padded to tarfile's record size."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.written = 0

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        self.written += len(data)

    def _pad(self, size: int, unit: int = tarfile.BLOCKSIZE) -> None:
        remainder = size % unit
        if remainder:
            self._write(b"\0" * (unit - remainder))

    def add(self, info: tarfile.TarInfo, data: Optional[bytes] = None, source: Optional[Path] = None) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if data is not None:
            self._write(data)
        elif source is not None:
            self._copy(source, info.size)
        self._pad(info.size)

    def _copy(self, source: Path, size: int) -> None:
        self.stream.flush()
        with open(source, "rb") as origin:
            copied = 0
            while copied < size:
                try:
                    step = os.copy_file_range(origin.fileno(), self.stream.fileno(), size - copied)
                except OSError as error:
                    if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    step = 0
                if step == 0:  # not supported here, or a short source: copy the rest in Python
                    origin.seek(copied)
                    self.stream.seek(0, os.SEEK_END)
                    remaining = size - copied
                    while remaining:
                        block = origin.read(min(COPY_BUFFER, remaining))
                        if not block:
                            raise BundlerError(f"{source} shrank while it was being packed; build again")
                        self.stream.write(block)
                        remaining -= len(block)
                    break
                copied += step
        self.stream.seek(0, os.SEEK_END)
        self.written += size

    def close(self) -> None:
        self._write(b"\0" * (2 * tarfile.BLOCKSIZE))
        self._pad(self.written, tarfile.RECORDSIZE)
        self.stream.flush()


def remove_quietly(path: Path) -> None:
    """Cleanup that never hides the error being reported (a read-only disk refuses even this unlink)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_tarball(
    contents: BundleContents, top: str, output: Path, epoch: int, signature: Optional[bytes] = None
) -> str:
    """Write `output` atomically; returns the sha256 of SHA256SUMS (the bundle's root of trust).
    `signature` is the signature of contents.sums_text(), written as SHA256SUMS.sig."""
    sums = contents.sums_text().encode()
    generated = {SUMS_NAME: sums} if signature is None else {SUMS_NAME: sums, SIGNATURE_NAME: signature}
    all_paths = sorted(list(contents.entries) + list(generated))
    temporary = output.with_name(f".{output.name}.partial")
    try:
        with open(temporary, "wb") as stream:
            archive = _TarStream(stream)
            archive.add(_info(top, epoch, tarfile.DIRTYPE, 0o755))
            for directory in _directories(all_paths):
                archive.add(_info(f"{top}/{directory}", epoch, tarfile.DIRTYPE, 0o755))
            for path in all_paths:
                name = f"{top}/{path}"
                if path in generated:
                    data = generated[path]
                    archive.add(_info(name, epoch, tarfile.REGTYPE, 0o644, len(data)), data=data)
                    continue
                entry = contents.entries[path]
                mode = 0o755 if entry.executable else 0o644
                info = _info(name, epoch, tarfile.REGTYPE, mode, entry.size)
                archive.add(info, data=entry.data, source=entry.source)
            archive.close()
        os.replace(temporary, output)
    except OSError as error:
        remove_quietly(temporary)
        if error.errno == errno.ENOSPC:
            raise BundlerError(f"disk full while writing {output}: free space or choose --output") from None
        raise BundlerError(f"cannot write {output}: {error.strerror or error}") from None
    except BaseException:
        remove_quietly(temporary)
        raise
    return hashlib.sha256(sums).hexdigest()
