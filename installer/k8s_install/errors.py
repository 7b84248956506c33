"""The one error type of the installer: a user-facing failure with a one-line message."""

from __future__ import annotations


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
