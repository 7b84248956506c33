"""Reading fields of a parsed YAML file, with errors that name the file and the field.

The reader collects errors instead of stopping at the first: a check of one field raises (`error`), the
section that reads it catches that into the list (`attempt`), and `raise_errors` reports them all at the end.
"""

from __future__ import annotations

import difflib
import reprlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

from k8s_install.errors import ErrorList, InstallError

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict = 80, 80, 2, 4, 4
Value = TypeVar("Value")


def shown(value: Any) -> str:
    """A value quoted in a message, cut short: a wrong value can be a 100 KiB string or, through YAML aliases, a
    list of millions of items that a plain repr() would spell out."""
    return _SHOWN.repr(value)


def nearest(value: Any, choices: Sequence[str], aliases: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The choice `value` most likely misspells (`wrker` -> worker, `ipip` -> IPIP) or names in other words
    (`aliases`: `master` -> control-plane), or None."""
    if aliases and str(value).lower() in aliases:
        return aliases[str(value).lower()]
    by_folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[close[0]] if close else None


def did_you_mean(value: Any, choices: Sequence[str], aliases: Optional[Mapping[str, str]] = None) -> str:
    """The words 'did you mean X? ' when one choice is close to `value`, else ''."""
    close = nearest(value, choices, aliases)
    return f"did you mean {close}? " if close is not None else ""


class FieldReader:
    """Field access on the parsed YAML, with errors that name the file and the field."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.errors: List[str] = []

    def error(self, field: str, message: str) -> InstallError:
        return InstallError(f"{self.where}: {field}: {message}")

    def report(self, field: str, message: str) -> None:
        """Record an error and go on checking."""
        self.errors.append(str(self.error(field, message)))

    def attempt(self, read: Callable[..., Value], *arguments: Any) -> Optional[Value]:
        """What `read(*arguments)` returns, or None when it raised an InstallError (recorded)."""
        try:
            return read(*arguments)
        except InstallError as error:
            self.errors.append(str(error))
            return None

    def raise_errors(self) -> None:
        if self.errors:
            raise ErrorList(self.errors, self.where)

    def mapping(self, value: Any, field: str, allowed: Tuple[str, ...]) -> Optional[Dict[str, Any]]:
        """The section as a dict ({} when absent), its unknown fields reported; None when it is not a mapping."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.report(field, f"must be a mapping with the fields {', '.join(allowed)}")
            return None
        for key in value:
            if key not in allowed:
                prefix = f"{field}." if field != "(top level)" else ""
                hint = did_you_mean(key, allowed)
                self.report(f"{prefix}{key}", f"unknown field; {hint}allowed here: {', '.join(allowed)}")
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

    def choice(
        self,
        section: Dict[str, Any],
        key: str,
        field: str,
        choices: Sequence[str],
        default: Optional[str] = None,
        note: str = "",
        aliases: Optional[Mapping[str, str]] = None,
    ) -> str:
        """One of `choices` (`default` when absent), or an error that suggests the nearest."""
        value = self.text(section, key, field, required=default is None) or default or ""
        if value not in choices:
            listed = " or ".join(choices) if len(choices) == 2 else ", ".join(choices)
            hint = did_you_mean(value, choices, aliases)
            raise self.error(field, f"unknown {key} {shown(value)}: {hint}use {listed}{note}")
        return value

    def integer(
        self, section: Dict[str, Any], key: str, field: str, default: Optional[int], low: int, high: int
    ) -> Optional[int]:
        value = section.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(field, f"must be a whole number from {low} to {high}, got {shown(value)}")
        return value

    def boolean(self, section: Dict[str, Any], key: str, field: str, default: bool) -> bool:
        value = section.get(key, default)
        if not isinstance(value, bool):
            close = nearest(value, ("true", "false")) if isinstance(value, str) else None
            hint = f": did you mean {close}?" if close else ""
            raise self.error(field, f"must be true or false, got {shown(value)}{hint}")
        return value
