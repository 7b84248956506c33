"""Retries with exponential backoff, shared by file downloads and registry requests.

Each retry is said aloud (`retrying runc in 4 s: timed out (2/5)`), and the wait ends at once when the build
is stopped (Ctrl-C, or another download failed): a stopped build never sits out a backoff.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from bundler import interrupt
from bundler.errors import BundlerError
from bundler.network_errors import Retryable, proxy_for
from bundler.progress import say

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
T = TypeVar("T")


def with_retries(attempt: Callable[[], T], retries: int, backoff: float, what: str, where: str, hint: str = "") -> T:
    """`attempt()` until it returns; after `retries` more failures, one BundlerError saying what and where."""
    tries = 0
    while True:
        interrupt.check()
        try:
            return attempt()
        except Retryable as error:
            tries += 1
            if tries > retries:
                count = f"{tries} attempt{'s' if tries != 1 else ''}"
                proxy = proxy_for(where) if where.startswith(("http://", "https://")) else None
                if proxy and "proxy" not in str(error):
                    where = f"{where}, through the proxy {proxy}"
                raise BundlerError(f"{what}: {error} after {count} ({where})" + (f"; {hint}" if hint else "")) from None
            delay = backoff * (2 ** (tries - 1))
            say(f"retrying {what} in {delay:g} s: {error} ({tries}/{retries + 1})")
            if interrupt.STOP.wait(delay):
                raise interrupt.Interrupted() from None
