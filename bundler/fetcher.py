"""The one fetch: every blob of every source kind through one thread pool, largest first.

Each item prints its line as soon as it is finished. The first failure stops the others: it sets the flag
every download checks between chunks (the one Ctrl-C sets), queued items never start, and the error that
names the item is raised at once.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Dict, Optional

from bundler.download import Fetched
from bundler.parallel import stop
from bundler.plan import Blob, Plan
from bundler.progress import FetchProgress


def fetch_all(plan: Plan, jobs: int, interactive: Optional[bool] = None) -> Dict[str, Fetched]:
    """blob key -> verified file in the cache, for every blob of the plan."""
    blobs = plan.unique_blobs()
    progress = FetchProgress(sum(b.size or 0 for b in blobs), len(blobs), interactive)
    results: Dict[str, Fetched] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fetch")
    futures: Dict[Future, Blob] = {}
    failed = False
    try:
        futures = {pool.submit(_fetch_one, blob, progress): blob for blob in blobs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is not None:
                    failed = True
                    raise error
                results[futures[future].key] = future.result()
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            stop(pool, futures)
        else:
            pool.shutdown(wait=True)
        progress.close()
    return results


def _fetch_one(blob: Blob, progress: FetchProgress) -> Fetched:
    fetched = blob.fetch(progress.tracker(blob.key, blob.size is not None))
    progress.finished(blob.key, blob.name, fetched.size, fetched.from_cache)
    return fetched
