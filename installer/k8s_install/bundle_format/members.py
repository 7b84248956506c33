"""The files of a bundle where they lie: an unpacked folder, or the tarball read in place (one open file,
members read by offset, nothing unpacked). Listing refuses what a bundle never holds: links, special files,
members outside the one top folder, paths that escape it.

Only `opened.open_bundle` uses these; everything else reads a bundle through the OpenedBundle it returns.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import IO, BinaryIO, Dict, List, Tuple, Union

from k8s_install.bundle_format.layout import SUMS_NAME
from k8s_install.bundle_format.sums import safe_relative_path, sha256_file, sha256_range, unreadable
from k8s_install.errors import InstallError

COMPRESSED = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}


class FolderMembers:
    """An unpacked bundle folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.where = str(root)
        self.top = self.root.resolve().name
        self.sizes: Dict[str, int] = _walk_folder(self.root)

    def read(self, relative: str) -> bytes:
        try:
            return (self.root / relative).read_bytes()
        except OSError as error:
            raise unreadable(self.root / relative, error) from None

    def open(self, relative: str) -> IO[bytes]:
        try:
            return open(self.root / relative, "rb")
        except OSError as error:
            raise unreadable(self.root / relative, error) from None

    def sha256(self, relative: str) -> str:
        return sha256_file(self.root / relative)

    def close(self) -> None:
        pass


class TarballMembers:
    """A bundle tarball (uncompressed), opened once: every read goes through that one descriptor by offset."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(path)
        try:
            self.stream: BinaryIO = open(self.path, "rb")  # noqa: SIM115  (closed by close())
        except OSError as error:
            raise unreadable(self.path, error) from None
        try:
            self.top, self.entries = self._list()
        except BaseException:
            self.stream.close()
            raise
        self.sizes = {relative: size for relative, (_, size) in self.entries.items()}

    def _list(self) -> Tuple[str, Dict[str, Tuple[int, int]]]:
        try:
            with tarfile.open(fileobj=self.stream, mode="r:") as archive:
                members = archive.getmembers()
        except (tarfile.TarError, OSError) as error:
            raise InstallError(f"{self.where}: not a readable bundle tarball ({error}){self._hint()}") from None
        top = ""
        entries: Dict[str, Tuple[int, int]] = {}  # relative path -> (offset, size)
        for member in members:
            name = safe_relative_path(member.name, self.where)
            head = name.split("/", 1)[0]
            top = top or head
            if head != top:
                raise InstallError(f"{self.where}: member {member.name} is outside the top folder {top}/")
            if member.issym() or member.islnk():
                raise InstallError(f"{self.where}: member {member.name} is a link; a bundle holds only regular files")
            if member.isdir():
                continue
            if not member.isfile():
                raise InstallError(f"{self.where}: member {member.name} is not a regular file")
            if "/" not in name:
                raise InstallError(f"{self.where}: member {member.name} is not inside the top folder")
            relative = name.split("/", 1)[1]
            if relative in entries:
                raise InstallError(f"{self.where}: member {member.name} appears twice")
            entries[relative] = (member.offset_data, member.size)
        return top, entries

    def _hint(self) -> str:
        """A compressed tarball is unpacked as it is; a damaged one copied again."""
        try:
            self.stream.seek(0)
            head = self.stream.read(6)
        except OSError:
            return "; re-copy it"
        for magic, tool in COMPRESSED.items():
            if head.startswith(magic):
                return f"; it is compressed with {tool}: unpack it with `tar -xf` and verify the folder"
        return "; re-copy it"

    def read(self, relative: str) -> bytes:
        offset, size = self._entry(relative)
        try:
            data = os.pread(self.stream.fileno(), size, offset)
        except OSError as error:
            raise unreadable(self.path, error) from None
        if len(data) != size:
            raise InstallError(f"{self.where}: {relative} is truncated: re-copy the bundle")
        return data

    def open(self, relative: str) -> IO[bytes]:
        offset, size = self._entry(relative)
        return io.BufferedReader(MemberStream(self.stream.fileno(), offset, size))  # type: ignore[arg-type]

    def sha256(self, relative: str) -> str:
        offset, size = self._entry(relative)
        return sha256_range(self.stream.fileno(), offset, size, f"{self.where}:{relative}")

    def _entry(self, relative: str) -> Tuple[int, int]:
        try:
            return self.entries[relative]
        except KeyError:
            raise InstallError(f"{self.where}: {relative} is missing; the bundle is incomplete") from None

    def close(self) -> None:
        self.stream.close()


class MemberStream(io.RawIOBase):
    """A read-only, seekable view of `size` bytes at `offset` of an open file; reads with pread, so several
    streams (and hashing threads) share the descriptor without sharing a position. Closing it leaves the
    descriptor open: the bundle owns it."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self.fd, self.offset, self.size, self.position = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Union[bytearray, memoryview]) -> int:  # type: ignore[override]
        want = min(len(buffer), self.size - self.position)
        if want <= 0:
            return 0
        data = os.pread(self.fd, want, self.offset + self.position)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + position)
        return self.position

    def tell(self) -> int:
        return self.position


Members = Union[FolderMembers, TarballMembers]


def open_members(path: Path) -> Members:
    path = Path(path)
    if path.is_dir():
        if not (path / SUMS_NAME).is_file():  # said before walking a folder that may be anything
            raise InstallError(f"{path}: no {SUMS_NAME}: this is not a bundle folder (or it was copied incompletely)")
        return FolderMembers(path)
    if path.is_file():
        return TarballMembers(path)
    raise InstallError(f"{path}: no such bundle folder or tarball")


def _walk_folder(root: Path) -> Dict[str, int]:
    """Every regular file under root as relative path -> size; links and special files are refused."""
    found: Dict[str, int] = {}

    def refuse(error: OSError) -> None:  # os.walk would skip an unreadable folder: its files would seem missing
        raise unreadable(Path(error.filename or root), error)

    for directory, subdirs, files in os.walk(root, onerror=refuse):
        names: List[str] = subdirs + files
        for name in names:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            if stat.S_ISLNK(info.st_mode):
                raise InstallError(f"{root}: {relative} is a symbolic link; a bundle holds only regular files")
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise InstallError(f"{root}: {relative} is not a regular file")
            found[relative] = info.st_size
    return found
