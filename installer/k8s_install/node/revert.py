"""Undo the installer's changes to a file the operator edited since, keeping the operator's edits.

A three-way merge of lines: the base is what the installer wrote (`ours`), one side is the file now
(`current`: ours plus the operator's edits), the other the original the installer replaced. Where only
the operator changed lines, theirs stay; where only the installer did, the original comes back. Where both
touched the same lines, the operator's lines win and the region is reported as a conflict.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Dict, List, NamedTuple, Optional, Sequence


class Reverted(NamedTuple):
    text: str
    conflicts: int  # regions both changed: the operator's lines were kept there


def _matches(base: Sequence[str], other: Sequence[str]) -> Dict[int, int]:
    """base line index -> other line index, for the lines the two have in common (in order)."""
    matched: Dict[int, int] = {}
    for block in SequenceMatcher(None, base, other, autojunk=False).get_matching_blocks():
        for offset in range(block.size):
            matched[block.a + offset] = block.b + offset
    return matched


def _resolve(base: List[str], current: List[str], original: List[str]) -> Optional[List[str]]:
    """One region between common lines; None when both sides changed it in ways that do not combine."""
    if current == base:
        return original  # only the installer changed it
    if original == base or current == original:
        return current  # only the operator changed it (or both alike)
    if base and current[: len(base)] == base:
        return original + current[len(base) :]  # the operator added lines after the installer's
    if base and current[-len(base) :] == base:
        return current[: -len(base)] + original  # ... or before them
    return None


def revert_installer_changes(ours: str, current: str, original: str) -> Reverted:
    base, mine, theirs = (text.splitlines(keepends=True) for text in (ours, current, original))
    in_current, in_original = _matches(base, mine), _matches(base, theirs)
    merged: List[str] = []
    conflicts = 0
    i = j_current = j_original = 0
    while True:
        sync = next((k for k in range(i, len(base)) if k in in_current and k in in_original), None)
        end_current = in_current[sync] if sync is not None else len(mine)
        end_original = in_original[sync] if sync is not None else len(theirs)
        region = _resolve(base[i:sync], mine[j_current:end_current], theirs[j_original:end_original])
        if region is None:
            conflicts += 1
            region = mine[j_current:end_current]
        merged += region
        if sync is None:
            break
        merged.append(base[sync])
        i, j_current, j_original = sync + 1, end_current + 1, end_original + 1
    return Reverted("".join(merged), conflicts)
