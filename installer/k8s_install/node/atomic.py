"""Writing a file so that it is either absent or complete, with its mode set before any byte lands (the one
way the installer writes files: managed files, its state, the cluster secrets)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import List

from k8s_install.errors import InstallError


def write_atomically(path: Path, data: bytes, mode: int = 0o644, overwrite: bool = False) -> None:
    """Write to a temporary file in the same folder (created with `mode`), fsync, then rename over `path`."""
    path = Path(path)
    if not overwrite and path.exists():
        raise InstallError(f"{path}: already exists; move it away first (nothing was written)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    except OSError as error:
        raise InstallError(f"{path}: cannot write: {error.strerror}") from None
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
        raise InstallError(f"{path}: cannot write: {error.strerror}") from None
    except BaseException:
        _remove_quietly(temporary)
        raise
    _fsync_directory(path.parent)


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
