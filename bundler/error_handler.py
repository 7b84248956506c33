"""How a `bundler` command's outcome becomes its exit code: 0 or the command's own, 1 an error the user can fix
(one line each), 130 interrupted, 3 a bug (the traceback in a log file named on screen, not on it), and quietly
141 when the reader of its output left early (`| head`)."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import traceback
from typing import Callable

from k8s_install.errors import UserError, error_lines, stdout_closed, stdout_reader_left


def exit_code_of(command: Callable[[], int]) -> int:
    """Run `command`, saying on stderr what went wrong when it did not end normally."""
    try:
        code = command()
        sys.stdout.flush()  # a reader that left early (`| head`) shows here, not in the interpreter's exit
        return code
    except UserError as error:
        for line in error_lines(error):
            print(f"bundler: error: {line}", file=sys.stderr)
        return _leave(1)
    except KeyboardInterrupt:
        print("bundler: interrupted; run the same command again to continue from the cache", file=sys.stderr)
        return _leave(130)
    except Exception as error:
        if stdout_reader_left(error):
            return stdout_closed()
        try:
            with tempfile.NamedTemporaryFile("w", prefix="bundler-crash-", suffix=".log", delete=False) as log:
                traceback.print_exc(file=log)
        except OSError:  # no writable temporary folder: the details go to the screen instead of being lost
            traceback.print_exc()
            print("bundler: internal error; please report it with the traceback above", file=sys.stderr)
            return _leave(3)
        print(f"bundler: internal error; details in {log.name}; please report it", file=sys.stderr)
        return _leave(3)


def _leave(code: int) -> int:
    """Exit now when a stopped request is still running in a worker thread: a server that accepts and never
    answers would otherwise hold the exit for its timeout and every retry (Python joins worker threads at
    exit). Whatever it downloaded so far stays in the cache's partial file for the next run."""
    lingering = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if lingering and threading.current_thread() is threading.main_thread():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
