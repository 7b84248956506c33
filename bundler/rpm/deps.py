"""Package requests as the manifest writes them: `name`, or `name OP [epoch:]version[-release]`."""

from __future__ import annotations

from bundler.rpm.repodata import EVR, Dependency

OPERATOR_FLAGS = {"=": "EQ", "==": "EQ", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE"}


def parse_simple(text: str) -> Dependency:
    """`name`, or `name OP [epoch:]version[-release]` (as the manifest writes package pins)."""
    parts = text.split()
    if len(parts) == 1:
        return Dependency(parts[0])
    if len(parts) == 3 and parts[1] in OPERATOR_FLAGS:
        return Dependency(parts[0], OPERATOR_FLAGS[parts[1]], EVR.parse(parts[2]))
    raise ValueError(f"{text!r} is not 'name' or 'name OP version'")
