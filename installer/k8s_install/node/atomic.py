"""Writing a file so that it is either absent or complete, with its mode set before any byte lands (the one
way the installer writes files: managed files, the copies it keeps of them, its state, the cluster secrets).

The discipline, which a power cut at any instant must not break (tests/lab/test_live_powercut.py traces it):
write a temporary name in the same folder, fsync it, rename it over the file, fsync the folder; a folder the
write creates is made durable in its parent the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import List

from k8s_install.errors import InstallError
from k8s_install.units import human_size

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full filesystem, or the user's quota on it


def no_space_line(path: Path, needed: int) -> str:
    """The one line for a write that found its filesystem full: the path, the space needed and available."""
    try:
        free = shutil.disk_usage(str(existing_folder(Path(path)))).free
        available = f"{human_size(free)} available"
    except OSError:
        available = "available space unknown"
    return (
        f"{path}: no space left on its filesystem (needs {human_size(needed)}, {available}); nothing was "
        "half-written: free space there, then run again"
    )


def existing_folder(path: Path) -> Path:
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def write_failed(path: Path, error: OSError, size: int) -> InstallError:
    if error.errno in NO_SPACE:
        return InstallError(no_space_line(path, size))
    return InstallError(f"{path}: cannot write: {error.strerror}")


def write_atomically(path: Path, data: bytes, mode: int = 0o644, overwrite: bool = False) -> None:
    """Write to a temporary file in the same folder (created with `mode`), fsync, then rename over `path`."""
    path = Path(path)
    if not overwrite and path.exists():
        raise InstallError(f"{path}: already exists; move it away first (nothing was written)")
    try:
        make_folders(path.parent)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    except OSError as error:
        raise write_failed(path, error, len(data)) from None
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _move_without_clobbering(temporary, path)
    except OSError as error:
        _remove_quietly(temporary)
        raise write_failed(path, error, len(data)) from None
    except BaseException:
        _remove_quietly(temporary)
        raise
    _fsync_directory(path.parent)


def copy_atomically(source: Path, destination: Path) -> None:
    """A copy that is either absent or complete (a backup kept for reset), with the source's mode."""
    try:
        data, mode = Path(source).read_bytes(), stat.S_IMODE(os.stat(source).st_mode)
    except OSError as error:
        raise InstallError(f"{source}: cannot read it to keep a copy: {error.strerror}") from None
    write_atomically(destination, data, mode, overwrite=True)


def make_folders(folder: Path, mode: int = 0o777) -> None:
    """mkdir -p, each folder it creates fsynced into its parent (a rename into a folder whose own entry is
    lost at a power cut is lost too)."""
    folder = Path(folder)
    missing: List[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=mode)
        except FileExistsError:
            if not created.is_dir():
                raise
            continue
        _fsync_directory(created.parent)


TEMPORARY_SUFFIX = re.compile(r"^[a-z0-9_]{8}$")  # what tempfile.mkstemp adds after the prefix


def leftover_temporaries(path: Path) -> List[Path]:
    """Temporary files a killed write_atomically of `path` left beside it (`.NAME.XXXXXXXX`)."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return []
    return sorted(
        sibling
        for sibling in siblings
        if sibling.name.startswith(prefix)
        and TEMPORARY_SUFFIX.match(sibling.name[len(prefix) :])
        and sibling.is_file()
        and not sibling.is_symlink()
    )


TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}$")


def temporaries_under(folder: Path) -> List[Path]:
    """Temporary files of interrupted writes anywhere under a folder only the installer writes (its backups)."""
    found: List[Path] = []
    for directory, _subdirs, names in os.walk(str(folder)):
        for name in names:
            candidate = Path(directory) / name
            if TEMPORARY_NAME.match(name) and candidate.is_file() and not candidate.is_symlink():
                found.append(candidate)
    return sorted(found)


def _move_without_clobbering(temporary: str, path: Path) -> None:
    """Link (fails if `path` appeared meanwhile); file systems without links (FAT sticks) get a rename."""
    try:
        os.link(temporary, path)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "already exists") from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
