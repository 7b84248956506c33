"""Progress reporting: tqdm bars when stderr is a terminal, plain lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import threading
from typing import Callable, Dict, Optional

from tqdm import tqdm


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Progress:
    """One bar per download plus a total; thread-safe."""

    def __init__(self, total_items: int, interactive: Optional[bool] = None) -> None:
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._lock = threading.Lock()
        self._bars: Dict[str, tqdm] = {}
        self._total = tqdm(total=total_items, desc="artifacts", unit="file", position=0) if self.interactive else None

    def tracker(self, label: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if not self.interactive:
                return
            with self._lock:
                bar = self._bars.get(label)
                if bar is None:
                    bar = tqdm(total=total or None, desc=label, unit="B", unit_scale=True, leave=False)
                    self._bars[label] = bar
                bar.update(done - bar.n)

        return update

    def finished(self, label: str, size: int, from_cache: bool) -> None:
        with self._lock:
            bar = self._bars.pop(label, None)
            if bar is not None:
                bar.close()
            origin = "cache" if from_cache else "downloaded"
            if self._total is not None:
                self._total.update(1)
                self._total.write(f"  {label}: {human_size(size)} ({origin}, verified)")
            else:
                print(f"  {label}: {human_size(size)} ({origin}, verified)", file=sys.stderr, flush=True)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            if self._total is not None:
                self._total.close()
