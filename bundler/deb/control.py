"""Debian control data (deb822): the stanzas of Release, Packages and dpkg's status file.

A stanza is `Field: value` lines, a continuation line starts with a space or a tab, and a blank line ends
the stanza. Field names are case-insensitive; they are kept as written and looked up without case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple


@dataclass(frozen=True)
class Stanza:
    fields: Tuple[Tuple[str, str], ...]  # (name as written, value with continuation lines joined by "\n")

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        wanted = name.lower()
        return next((value for key, value in self.fields if key.lower() == wanted), default)

    def text(self, name: str) -> str:
        return self.get(name) or ""

    def without(self, names: Tuple[str, ...]) -> Stanza:
        dropped = {name.lower() for name in names}
        return Stanza(tuple((k, v) for k, v in self.fields if k.lower() not in dropped))

    def render(self) -> str:
        lines = []
        for key, value in self.fields:
            first, *rest = value.split("\n")
            lines.append(f"{key}: {first}".rstrip() if first else f"{key}:")
            lines += [line if line.startswith((" ", "\t")) else f" {line}" for line in rest]
        return "\n".join(lines) + "\n"


def parse_stanzas(text: str, where: str) -> Iterator[Stanza]:
    """Every stanza of `text`; ValueError naming `where` and the line for a line that is not a field."""
    fields: List[Tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                yield Stanza(tuple(fields))
                fields = []
            continue
        if line.startswith((" ", "\t")):
            if not fields:
                raise ValueError(f"{where}: line {number} continues a field, but no field came before it")
            key, value = fields[-1]
            fields[-1] = (key, f"{value}\n{line[1:]}")
            continue
        if line.startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon or not key or " " in key:
            raise ValueError(f"{where}: line {number} is not a 'Field: value' line: {line[:80]!r}")
        fields.append((key, value.strip()))
    if fields:
        yield Stanza(tuple(fields))


def checksum_lines(value: str) -> Dict[str, Tuple[str, int]]:
    """A Release file's SHA256 field: path -> (sha256, size)."""
    listed: Dict[str, Tuple[str, int]] = {}
    for line in value.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            listed[parts[2]] = (parts[0].lower(), int(parts[1]))
    return listed
