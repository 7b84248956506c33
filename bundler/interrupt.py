"""Ctrl-C that stops promptly: download threads check a shared flag between chunks.

Python delivers SIGINT to the main thread only; while it waits for a thread pool to finish, downloads
would run to completion. The handler sets STOP, every download loop calls `check()` between chunks and
raises `Interrupted` (a KeyboardInterrupt), and the partial file stays in the cache for the next run.
"""

from __future__ import annotations

import signal
import threading

STOP = threading.Event()


class Interrupted(KeyboardInterrupt):
    pass


def check() -> None:
    if STOP.is_set():
        raise Interrupted()


def install_handler() -> None:
    def on_interrupt(signum: int, frame: object) -> None:
        STOP.set()
        signal.default_int_handler(signum, frame)  # type: ignore[arg-type]

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_interrupt)
