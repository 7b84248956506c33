"""The one user-error root of both tools: a failure the user can act on, reported as one line.

This module imports nothing of the project, so every layer of the installer and of the builder can raise
`UserError`, and each tool's `main` catches this one type (exit 1, one line; anything else is a bug: exit 3).
`InstallError` (installer code) and `bundler.errors.BundlerError` (builder code) are other names for it:
an error raised deep in the installer's code reaches `bundler`'s `main` unchanged, with no translation.
"""

from __future__ import annotations

import os
import select
import sys
from typing import List, Sequence, Tuple


class UserError(Exception):
    """Something the user can fix. `str(error)` is the whole message: what failed, on which
    file/field/artifact, and what to do."""


InstallError = UserError


def yaml_problem(error: Exception) -> str:
    """A YAML parser error as one line: what is wrong and on which line (PyYAML's own text spans several)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is not None and "'\\t'" in str(problem):
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{where}: a tab character, which YAML does not allow here: use spaces"
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def one_line(message: str) -> str:
    """The one line a user error prints, even when a message (a tool's output) spans several."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


class ErrorList(InstallError):
    """Several user errors found in one pass over a file (four mistakes, one run): one line each, then a line
    that counts them. `lines` is what the command prints; one error alone is just its line."""

    SHOWN = 100  # a file with thousands of broken entries still fits a screen's scrollback

    def __init__(self, errors: Sequence[str], subject: str) -> None:
        self.errors: Tuple[str, ...] = tuple(errors)
        lines = [one_line(error) for error in self.errors[: self.SHOWN]]
        if len(self.errors) > 1:
            hidden = len(self.errors) - len(lines)
            more = f" ({hidden} more not shown)" if hidden else ""
            lines.append(f"{subject}: {len(self.errors)} errors{more}; fix them all and run again")
        self.lines: Tuple[str, ...] = tuple(lines)
        super().__init__("\n".join(lines))


def error_lines(error: Exception) -> List[str]:
    """What a command prints for a user error: each line of an ErrorList, else the message as one line."""
    if isinstance(error, ErrorList):
        return list(error.lines)
    return [one_line(str(error))]


STDOUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for `cat` or `grep` when the reader left early


def stdout_reader_left(error: BaseException) -> bool:
    """Whether `error` means the reader of our standard output has gone (`... --json | head`), not that some
    other pipe or socket broke (that one is a real failure)."""
    if not isinstance(error, BrokenPipeError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (AttributeError, ValueError, OSError):  # no poll, or stdout closed or not a file
        return False
    return any(events & select.POLLERR for _, events in poller.poll(0))  # a pipe with no reader left


def stdout_closed() -> int:
    """Leave quietly, as other Unix tools do when their reader left: no message, no crash log; standard output
    now points at /dev/null, so the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return STDOUT_CLOSED
