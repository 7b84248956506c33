"""Progress of the one fetch: a tqdm bar in bytes against the plan's total when stderr is a terminal, plain
lines otherwise (CI logs, pipes). Either way one line per item as soon as it is finished."""

from __future__ import annotations

import sys
import threading
from typing import Callable, Dict, Optional, Set

from tqdm import tqdm

from k8s_install.units import human_size  # one unit system (binary) for both tools

_ACTIVE_BAR: Optional[tqdm] = None  # the bar on screen, if any: other lines are written above it


def say(line: str) -> None:
    """A line on stderr from any thread (a retry, a warning), above the progress bar when one is shown."""
    bar = _ACTIVE_BAR
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


class FetchProgress:
    """Thread-safe. `tracker(key)` gives a download its `progress(done, total)` callback; `finished` prints
    the item's line and counts its bytes (all of them, also when it came from the cache)."""

    def __init__(self, total_bytes: int, total_items: int, interactive: Optional[bool] = None) -> None:
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.total_bytes = total_bytes
        self.total_items = total_items
        self.items_done = 0
        self.bytes_done = 0  # bytes of finished items
        self._seen: Dict[str, int] = {}  # key -> bytes of an unfinished download counted in the bar
        self._unsized: Set[str] = set()
        self._lock = threading.Lock()
        self._bar: Optional[tqdm] = None
        if self.interactive:
            self._bar = tqdm(
                total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc="fetch",
                dynamic_ncols=True, file=sys.stderr,
            )  # fmt: skip
            global _ACTIVE_BAR
            _ACTIVE_BAR = self._bar

    def tracker(self, key: str, size_known: bool = True) -> Callable[[int, int], None]:
        if not size_known:
            self._unsized.add(key)

        def update(done: int, total: int) -> None:
            with self._lock:
                if key in self._unsized and total:
                    self._grow(key, total)
                before = self._seen.get(key, 0)
                self._seen[key] = done
                if self._bar is not None and done != before:
                    self._bar.update(done - before)  # goes back when a retry starts over

        return update

    def finished(self, key: str, label: str, size: int, from_cache: bool) -> None:
        with self._lock:
            counted = self._seen.pop(key, 0)
            if key in self._unsized:
                self._grow(key, size)
            self.items_done += 1
            self.bytes_done += size
            if self._bar is not None:
                self._bar.update(size - counted)
            origin = "cache" if from_cache else "downloaded"
            line = f"  [{self.items_done}/{self.total_items}] {label}: {human_size(size)} ({origin}, verified)"
            if self._bar is not None:
                self._bar.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr, flush=True)

    def _grow(self, key: str, size: int) -> None:
        """An item whose size the plan did not know: its size joins the total once known."""
        self._unsized.discard(key)
        self.total_bytes += size
        if self._bar is not None:
            self._bar.total = self.total_bytes
            self._bar.refresh()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                global _ACTIVE_BAR
                _ACTIVE_BAR = None
                self._bar.close()
                self._bar = None
