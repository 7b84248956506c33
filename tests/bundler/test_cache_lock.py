"""The cache's per-download lock: exclusive across threads while its lock file comes and goes, and gone after."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bundler.cache import Cache


def test_lock_is_exclusive_and_leaves_no_file(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.ensure()
    partial = cache.partial_path("https://example.invalid/file", None)
    inside, overlaps = [0], []

    def worker() -> None:
        for _ in range(200):
            with cache.locked(partial):
                inside[0] += 1
                time.sleep(0.0002)  # let the others run while this one holds the lock
                if inside[0] != 1:
                    overlaps.append(inside[0])
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert list(cache.partial.iterdir()) == []


def test_an_empty_partial_file_is_dropped_and_a_started_one_kept(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.ensure()
    empty, started = cache.partial_path("a", None), cache.partial_path("b", None)
    with cache.locked(empty):
        empty.write_bytes(b"")
    with cache.locked(started):
        started.write_bytes(b"first bytes")
    assert [p.name for p in cache.partial.iterdir()] == [started.name]
