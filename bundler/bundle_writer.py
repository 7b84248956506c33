"""Write a bundle tarball reproducibly: sorted entries, owner 0:0, one fixed mtime, fixed modes.

The tarball holds one top folder. SHA256SUMS (every file but itself) is generated here, from sums the
caller already verified, so the writer never re-reads the bytes it lists.
"""

from __future__ import annotations

import errno
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from bundler.errors import BundlerError
from installer.layout import SUMS_NAME
from installer.verify import format_sums, safe_relative_path

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
        import hashlib

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


def write_tarball(contents: BundleContents, top: str, output: Path, epoch: int) -> str:
    """Write `output` atomically; returns the sha256 of SHA256SUMS (the bundle's root of trust)."""
    import hashlib

    sums = contents.sums_text().encode()
    all_paths = sorted(list(contents.entries) + [SUMS_NAME])
    temporary = output.with_name(f".{output.name}.partial")
    try:
        with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as archive:
            archive.copybufsize = COPY_BUFFER  # type: ignore[attr-defined]  # tarfile's copy buffer (16 KiB)
            archive.addfile(_info(top, epoch, tarfile.DIRTYPE, 0o755))
            for directory in _directories(all_paths):
                archive.addfile(_info(f"{top}/{directory}", epoch, tarfile.DIRTYPE, 0o755))
            for path in all_paths:
                name = f"{top}/{path}"
                if path == SUMS_NAME:
                    archive.addfile(_info(name, epoch, tarfile.REGTYPE, 0o644, len(sums)), io.BytesIO(sums))
                    continue
                entry = contents.entries[path]
                mode = 0o755 if entry.executable else 0o644
                info = _info(name, epoch, tarfile.REGTYPE, mode, entry.size)
                if entry.data is not None:
                    archive.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    with open(entry.source, "rb") as stream:
                        archive.addfile(info, stream)
        os.replace(temporary, output)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise BundlerError(f"disk full while writing {output}: free space or choose --output") from None
        raise BundlerError(f"cannot write {output}: {error.strerror or error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return hashlib.sha256(sums).hexdigest()
