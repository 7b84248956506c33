"""Version comparison exactly as rpm orders packages (rpmvercmp plus epoch:version-release), pure Python
for the node (the preflight compares the node's packages with what the bundle's RPMs require).

A version string is split into runs of digits and runs of ASCII letters; every other character only
separates runs. Numeric runs compare as numbers (leading zeros ignored) and beat alphabetic runs. `~`
sorts before anything, even the end of the string (1.0~rc1 < 1.0); `^` sorts after the end of the string
but before any further run (1.0 < 1.0^git1 < 1.0.1).
"""

from __future__ import annotations

from typing import Optional, Tuple


def _is_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _segment_end(text: str, start: int, numeric: bool) -> int:
    end = start
    while end < len(text) and text[end].isascii() and (text[end].isdigit() if numeric else text[end].isalpha()):
        end += 1
    return end


def rpmvercmp(left: str, right: str) -> int:
    """-1, 0 or 1 as rpm's rpmvercmp orders two version (or release) strings."""
    if left == right:
        return 0
    i = j = 0
    while i < len(left) or j < len(right):
        while i < len(left) and not _is_alnum(left[i]) and left[i] not in "~^":
            i += 1
        while j < len(right) and not _is_alnum(right[j]) and right[j] not in "~^":
            j += 1
        a = left[i] if i < len(left) else ""
        b = right[j] if j < len(right) else ""
        if a == "~" or b == "~":
            if a != "~":
                return 1
            if b != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if a == "^" or b == "^":
            if not a:
                return -1
            if not b:
                return 1
            if a != "^":
                return 1
            if b != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (a and b):
            break
        numeric = a.isdigit()
        end_i = _segment_end(left, i, numeric)
        end_j = _segment_end(right, j, numeric)
        if end_j == j:  # the other side has a run of the other kind here: numbers are newer
            return 1 if numeric else -1
        one, two = left[i:end_i], right[j:end_j]
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
        i, j = end_i, end_j
    at_end_left, at_end_right = i >= len(left), j >= len(right)
    if at_end_left and at_end_right:
        return 0
    return -1 if at_end_left else 1


def _evr(text: str) -> Tuple[int, str, Optional[str]]:
    epoch, colon, rest = text.partition(":")
    if not colon:
        epoch, rest = "0", text
    version, dash, release = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return (int(epoch) if epoch.isdigit() else 0, version, release if dash else None)


def compare_evr(left: str, right: str) -> int:
    """Order two `[epoch:]version[-release]` strings; the release takes part only when both sides have one
    (as rpm matches a requirement without release against any release)."""
    (e1, v1, r1), (e2, v2, r2) = _evr(left), _evr(right)
    if e1 != e2:
        return 1 if e1 > e2 else -1
    result = rpmvercmp(v1, v2)
    if result or r1 is None or r2 is None:
        return result
    return rpmvercmp(r1, r2)
