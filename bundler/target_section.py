"""A release manifest's package section for one target OS (`rpm:` or `deb:`), read the same way for both
kinds: the entry for the target, where it stands (for messages), its repositories (a non-empty list with
unique ids), and the field checks both share."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, Tuple, TypeVar

from bundler.errors import BundlerError


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Repository = TypeVar("Repository", bound=HasId)


def target_entry(raw: Dict[str, Any], section: str, os_id: str, source: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """(`<manifest>: <section>.<os>`, its mapping), or None when the manifest has none for this target."""
    found = raw.get(section)
    if found is None:
        return None
    if not isinstance(found, dict):
        raise BundlerError(f"{source}: field '{section}' must map a target OS id to its repositories and packages")
    entry = found.get(os_id)
    if entry is None:
        return None
    where = f"{source}: {section}.{os_id}"
    if not isinstance(entry, dict):
        raise BundlerError(f"{where}: must be a mapping with repositories and packages")
    return where, entry


def repositories(entry: Dict[str, Any], where: str, read: Callable[[Any, int], Repository]) -> Tuple[Repository, ...]:
    """The entry's `repositories`, each read by `read(item, index)`: at least one, no two with one id."""
    listed = entry.get("repositories")
    if not isinstance(listed, list) or not listed:
        raise BundlerError(f"{where}: field 'repositories' must be a non-empty list")
    found = tuple(read(item, index) for index, item in enumerate(listed))
    ids = [repository.id for repository in found]
    if len(set(ids)) != len(ids):
        raise BundlerError(f"{where}.repositories: two repositories share one id")
    return found


def string_list(value: Any, where: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BundlerError(f"{where}: must be a list of strings")
    return tuple(value)


def http_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise BundlerError(f"{where}: must be an http(s):// URL, got {value!r}")
    return value
