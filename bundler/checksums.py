"""Pinned sha256 sums of upstream files, keyed by their upstream URL (checksums/k8s-<version>.sha256)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Dict, Iterator, Pattern, Tuple

from bundler.errors import BundlerError

_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S+)$")


def pin_lines(
    path: Path, pattern: Pattern[str], expected: str, valid: Callable[[re.Match], bool] = lambda _: True
) -> Iterator[Tuple[int, re.Match]]:
    """The matched lines of a pin file ('#' comments and blank lines skipped); any other line is an error
    naming the file, the line and the `expected` form. A missing file has no lines."""
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = pattern.match(line)
        if not match or not valid(match):
            raise BundlerError(f"{path} line {number}: expected '{expected}', got {line[:80]!r}")
        yield number, match


def load_pins(path: Path) -> Dict[str, str]:
    """URL -> sha256. A missing file means no pins (every artifact then needs --allow-unpinned)."""
    pins: Dict[str, str] = {}
    for number, match in pin_lines(path, _LINE, "<sha256>  <url>"):
        digest, url = match.groups()
        if pins.get(url, digest) != digest:
            raise BundlerError(f"{path} line {number}: {url} is pinned twice with different sums")
        pins[url] = digest
    return pins
