"""The one error type of the installer: a user-facing failure with a one-line message."""

from __future__ import annotations

from typing import List, Sequence, Tuple


class InstallError(Exception):
    """Something the operator can fix. `str(error)` is the whole message, one line."""


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
