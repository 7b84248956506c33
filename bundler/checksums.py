"""Pinned sha256 sums of upstream files, keyed by their upstream URL (checksums/k8s-<version>.sha256)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

from bundler.errors import BundlerError

_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S+)$")


def load_pins(path: Path) -> Dict[str, str]:
    """URL -> sha256. A missing file means no pins (every artifact then needs --allow-unpinned)."""
    if not path.is_file():
        return {}
    pins: Dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise BundlerError(f"{path} line {number}: expected '<sha256>  <url>', got {line[:80]!r}")
        digest, url = match.groups()
        if pins.get(url, digest) != digest:
            raise BundlerError(f"{path} line {number}: {url} is pinned twice with different sums")
        pins[url] = digest
    return pins
