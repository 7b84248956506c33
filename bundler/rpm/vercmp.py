"""Version comparison exactly as rpm orders packages (rpmvercmp plus epoch:version-release).

A version string is split into runs of digits and runs of ASCII letters; every other character only
separates runs. Numeric runs compare as numbers (leading zeros ignored) and beat alphabetic runs. `~`
sorts before anything, even the end of the string (1.0~rc1 < 1.0); `^` sorts after the end of the string
but before any further run (1.0 < 1.0^git1 < 1.0.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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


@dataclass(frozen=True)
class EVR:
    """epoch:version-release; `release` None means "any release" when used in a requirement."""

    epoch: int
    version: str
    release: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> EVR:
        text = text.strip()
        epoch = 0
        head, colon, rest = text.partition(":")
        if colon:
            if not head.isdigit():
                raise ValueError(f"epoch {head!r} in {text!r} is not a number")
            epoch, text = int(head), rest
        version, dash, release = text.rpartition("-") if "-" in text else (text, "", "")
        if not version:
            raise ValueError(f"no version in {text!r}")
        return cls(epoch, version, release if dash else None)

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        release = f"-{self.release}" if self.release is not None else ""
        return f"{epoch}{self.version}{release}"


def compare_evr(left: EVR, right: EVR) -> int:
    """Order two EVRs; the release takes part only when both sides have one (as rpm matches deps)."""
    if left.epoch != right.epoch:
        return 1 if left.epoch > right.epoch else -1
    result = rpmvercmp(left.version, right.version)
    if result or left.release is None or right.release is None:
        return result
    return rpmvercmp(left.release, right.release)
