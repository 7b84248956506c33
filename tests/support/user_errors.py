"""What every user error looks like from outside."""

from __future__ import annotations

import subprocess


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """A user error: exit 1 and exactly one line on stderr, never a traceback (both tools, every command)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
