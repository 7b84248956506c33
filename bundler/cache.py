"""A content-addressed download cache: `<root>/sha256/<hex>` holds only bytes whose sum was checked.

Partial downloads live in `<root>/partial/` under a name derived from the URL and expected sum, so an
interrupted build resumes them; an entry appears in `sha256/` only by `os.replace` after verification.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Iterator, Optional

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "k8s-bundler"


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "sha256"
        self.partial = self.root / "partial"

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.blobs / sha256

    def lookup(self, sha256: str) -> Optional[Path]:
        path = self.path_for(sha256)
        return path if path.is_file() else None

    def partial_path(self, url: str, expected: Optional[str]) -> Path:
        key = hashlib.sha256(f"{url}\0{expected or ''}".encode()).hexdigest()[:32]
        return self.partial / f"{key}.part"

    @contextlib.contextmanager
    def locked(self, partial: Path) -> Iterator[None]:
        """Exclusive use of one partial download, across threads and processes sharing the cache.

        The lock file is removed when the holder is done, so no build leaves empty files behind; a waiter
        that wakes up holding a removed lock file opens the current one instead."""
        lock_path = partial.with_suffix(".lock")
        while True:
            handle = open(lock_path, "a+b")  # noqa: SIM115 (closed below)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                current = os.stat(lock_path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(handle.fileno()).st_ino:
                break
            handle.close()  # the holder removed it meanwhile: lock the file that is there now
        try:
            yield
        finally:  # cleanup that fails (a disk gone read-only) must not hide the error being raised
            drop_if_empty(partial)
            with contextlib.suppress(OSError):
                lock_path.unlink(missing_ok=True)  # still held: a waiter then sees it gone and takes a new one
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def holds(self, sha256: str, size: Optional[int] = None) -> Optional[Path]:
        """The entry for `sha256`, trusted without re-reading: only verified bytes ever enter `sha256/`.
        An entry of the wrong size (damaged on disk) is dropped and fetched again."""
        path = self.lookup(sha256)
        if path is not None and size is not None and path.stat().st_size != size:
            path.unlink()
            return None
        return path

    def commit(self, verified_file: Path, sha256: str) -> Path:
        """Move a file whose sum has been checked into the cache (atomic, same filesystem)."""
        target = self.path_for(sha256)
        os.replace(verified_file, target)
        return target


def drop_if_empty(partial: Path) -> None:
    """A partial download that never received a byte is not worth keeping."""
    try:
        if partial.stat().st_size == 0:
            partial.unlink()
    except OSError:  # gone already, or a disk that refuses even this: never hide the error being reported
        pass
