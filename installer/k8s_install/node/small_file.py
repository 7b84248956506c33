"""Reading a small input file (cluster.yaml, the secrets) with a bound, whatever the path names.

stat() says 0 bytes for /dev/zero, a pipe or /dev/stdin, so a size check before reading bounds nothing: the
read itself stops one byte past the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def read_small_file(path: Path, limit: int) -> Optional[bytes]:
    """The file's bytes, or None when it holds more than `limit` bytes. Raises OSError as open() does."""
    with open(path, "rb") as stream:
        data = stream.read(limit + 1)
    return None if len(data) > limit else data
