"""Unpacking a bundle tarball the tests made themselves, on any Python the suite runs on.

`extractall(filter="data")` refuses members that escape the folder, but Pythons before 3.11.4 (Debian 12's
3.11.2, EL9's 3.9) lack the argument: there the tarball, written by this test run, is unpacked without it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path


def unpack_tarball(tarball: Path, folder: Path) -> None:
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(folder, filter="data")
        else:
            archive.extractall(folder)  # noqa: S202 - our own test output, see the module's docstring
