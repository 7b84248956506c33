"""Sizes for people: one unit system everywhere, binary (KiB, MiB, GiB), as the builder prints them."""

from __future__ import annotations


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
