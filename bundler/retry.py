"""Retries with exponential backoff, shared by file downloads and registry requests."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from bundler.errors import BundlerError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
T = TypeVar("T")


class Retryable(Exception):
    """A failure worth another attempt: a 5xx, a refused or dropped connection, a timeout."""


def with_retries(attempt: Callable[[], T], retries: int, backoff: float, what: str, where: str, hint: str = "") -> T:
    """`attempt()` until it returns; after `retries` more failures, one BundlerError saying what and where."""
    tries = 0
    while True:
        try:
            return attempt()
        except Retryable as error:
            tries += 1
            if tries > retries:
                count = f"{tries} attempt{'s' if tries != 1 else ''}"
                raise BundlerError(f"{what}: {error} after {count} ({where})" + (f"; {hint}" if hint else "")) from None
            time.sleep(backoff * (2 ** (tries - 1)))
