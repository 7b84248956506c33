"""Things a test session builds once and every pytest-xdist worker shares: a folder per key, made once under
a file lock and handed to each caller as its own copy.

The folder is the run's own (tests/conftest.py sets it for the session: the pytest-xdist root shared by the
workers, or the session's basetemp without xdist), so nothing outlives the run and no other run sees it.
An entry is built in a temporary folder beside its place and renamed into place: never half-made. Without a
session folder (a helper called outside pytest), every call builds for itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

FOLDER: Optional[Path] = None  # set by tests/conftest.py for the session


def session_folder(basetemp: Path) -> Path:
    """The folder every process of this run shares: under pytest-xdist, the workers' common basetemp root."""
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    return root / "session-cache"


def key_of(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


@contextlib.contextmanager
def _locked(folder: Path, key: str) -> Iterator[None]:
    """One lock per key: a worker waits only for the entry it needs."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def built_once(key: str, build: Callable[[Path], None]) -> Optional[Path]:
    """The folder `build(folder)` filled for `key`, built the first time any worker asks; None when there is no
    session folder (the caller then builds in place). Callers copy from it and never change it."""
    if FOLDER is None:
        return None
    entry = FOLDER / key
    with _locked(FOLDER, key):
        if not entry.is_dir():
            partial = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=FOLDER))
            try:
                build(partial)
                os.replace(partial, entry)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return entry


def copy_into(entry: Path, work: Path) -> None:
    """A caller's own copy of a shared entry (modes and times kept): what a test changes stays its own."""
    shutil.copytree(entry, work, symlinks=True, dirs_exist_ok=True)


def shiv_root(fallback: Path) -> str:
    """SHIV_ROOT for a test's k8s-install.pyz runs: one folder for the whole run, so a zipapp unpacks (and Python
    compiles its modules) once per build id instead of once per test, as on a node that runs it again and again;
    `fallback` outside a session. shiv unpacks under a file lock, keyed by the zipapp's build id. A test about the
    unpacking itself, or one that changes a zipapp's contents, keeps a folder of its own."""
    return str(FOLDER / "shiv") if FOLDER is not None else str(fallback)


def shared_tarball(parts: Sequence[object], work: Path, build: Callable[[Path], Path]) -> Path:
    """A tarball `build(folder)` makes in `folder` (returning its path), made once for the run under the key
    `parts` and shared by the workers; returns this caller's own copy of it in `work`. Only the tarball is
    kept: whatever else the build wrote beside it (a site with one worker's secrets, caches) is removed."""

    def into_entry(entry: Path) -> None:
        made = build(entry / "work")
        os.replace(made, entry / made.name)
        shutil.rmtree(entry / "work")

    entry = built_once(key_of("tarball", *parts), into_entry)
    if entry is None:
        return build(work)
    (shared,) = entry.iterdir()
    work.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(shared, work / shared.name))
