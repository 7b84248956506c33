"""Reading fields of a parsed YAML file, with errors that name the file and the field."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any, Dict, Optional, Tuple

from k8s_install.errors import InstallError

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict = 80, 80, 2, 4, 4


def shown(value: Any) -> str:
    """A value quoted in a message, cut short: a wrong value can be a 100 KiB string or, through YAML aliases, a
    list of millions of items that a plain repr() would spell out."""
    return _SHOWN.repr(value)


class FieldReader:
    """Field access on the parsed YAML, with errors that name the file and the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, field: str, message: str) -> InstallError:
        return InstallError(f"{self.where}: {field}: {message}")

    def mapping(self, value: Any, field: str, allowed: Tuple[str, ...]) -> Dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(field, f"must be a mapping with the fields {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                prefix = f"{field}." if field != "(top level)" else ""
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}? " if close else ""
                raise self.error(f"{prefix}{key}", f"unknown field; {hint}allowed here: {', '.join(allowed)}")
        return value

    def text(self, section: Dict[str, Any], key: str, field: str, required: bool = True) -> Optional[str]:
        value = section.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.error(field, "is required")
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.error(field, f"must be a string, got {type(value).__name__}")
        return str(value).strip()

    def integer(self, section: Dict[str, Any], key: str, field: str, default: Optional[int], low: int, high: int):
        value = section.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(field, f"must be a whole number from {low} to {high}, got {shown(value)}")
        return value
