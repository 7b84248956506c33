"""A parallel map for the planning phase (sizes, image manifests) that stops as promptly as the fetch does.

`with ThreadPoolExecutor()` waits for every submitted call when the block is left by an exception: a Ctrl-C
or a first error would sit out every pending request's timeouts and retries. Here a failure (Ctrl-C included)
sets the stop flag that retries and downloads watch, cancels what has not started, and is raised at once.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable, Iterable, List, TypeVar

from bundler import interrupt

STRAGGLER_WAIT = 1.0  # seconds the running calls get to notice the stop before the failure is raised
T = TypeVar("T")
R = TypeVar("R")


def parallel_map(function: Callable[[T], R], items: Iterable[T], jobs: int, name: str = "plan") -> List[R]:
    """[function(item) for item in items] on `jobs` threads, in order; the first failure stops the rest."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix=name)
    futures = [pool.submit(function, item) for item in items]
    try:
        results = [future.result() for future in futures]
    except BaseException:
        stop(pool, futures)
        raise
    pool.shutdown(wait=True)
    return results


def stop(pool: ThreadPoolExecutor, futures: Iterable[Future]) -> None:
    """Cancel what has not started and tell running calls to stop (at their next chunk or retry; partial
    files stay for the next run). The flag is cleared again once they have stopped, so nothing else is left
    stopped; a call stuck in a request that never answers is not waited for (bundler.main leaves without it)."""
    interrupt.STOP.set()
    pool.shutdown(wait=False, cancel_futures=True)
    running = [f for f in futures if not f.done()]
    _, still = wait(running, timeout=STRAGGLER_WAIT) if running else (set(), set())
    if not still:
        interrupt.STOP.clear()
