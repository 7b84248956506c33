"""The shape of bundle.yaml, checked once where it is read: the structure every reader relies on, and typed
reads of each field (`ManifestFields`) that name the field when it is wrong; model.py builds the types with them.

SHA256SUMS proves bundle.yaml is the file the builder wrote only when the bundle is signed; an unsigned bundle
can be edited together with its SHA256SUMS. Every reader then relies on this check instead of meeting a list
where a mapping belongs half-way through an install.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from k8s_install.bundle_format.layout import BUNDLE_FORMAT, MANIFEST_NAME
from k8s_install.bundle_format.yaml_loader import NoAliasDumper, load_yaml
from k8s_install.errors import InstallError

__all__ = ["ManifestFields", "NoAliasDumper", "check_manifest_shape", "load_manifest_yaml"]

FIX = "re-copy the bundle from the build, or rebuild it"


class ManifestFields:
    """Typed reads of one mapping of bundle.yaml; a wrong value is one line naming the field."""

    def __init__(self, data: Mapping[str, Any], field: str, where: str) -> None:
        self.data, self.field, self.where = data, field, where

    def wrong(self, key: str, what: str) -> InstallError:
        return InstallError(f"{self.where}: {MANIFEST_NAME}: {self.name(key)}: {what}; {FIX}"[:400])

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, (dict, list)):
            raise self.wrong(key, f"must be a string, got {value!r}"[:200])
        return str(value)

    def optional_text(self, key: str) -> Optional[str]:
        return None if self.data.get(key) is None else self.text(key)

    def count(self, key: str) -> int:
        value = self.data.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.wrong(key, f"must be a byte count, got {value!r}"[:200])
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.wrong(key, f"must be true or false, got {value!r}"[:200])
        return value

    def texts(self, key: str) -> Tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or any(isinstance(item, (dict, list)) for item in value):
            raise self.wrong(key, "must be a list of strings")
        return tuple(str(item) for item in value)

    def mappings(self, key: str) -> List[Tuple[str, Mapping[str, Any]]]:
        """(field name, mapping) of each entry of a list of mappings."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise self.wrong(key, "must be a list of mappings")
        return [(f"{self.name(key)}[{index}]", entry) for index, entry in enumerate(value)]

    def mapping(self, key: str) -> Optional[Mapping[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key, "must be a mapping")
        return value

    def entries(self, key: str) -> List[ManifestFields]:
        """Each entry of a list of mappings, read as fields."""
        return [ManifestFields(entry, field, self.where) for field, entry in self.mappings(key)]

    def section(self, key: str) -> Optional[ManifestFields]:
        """A nested mapping read as fields; None when absent."""
        value = self.mapping(key)
        return None if value is None else ManifestFields(value, self.name(key), self.where)

    def section_or_empty(self, key: str) -> ManifestFields:
        return self.section(key) or ManifestFields({}, self.name(key), self.where)

    def name(self, key: str) -> str:
        """The field's path in messages: rpm_repository.install[0].exact."""
        return f"{self.field}.{key}" if self.field else key


TEXT_FIELDS = ("kubernetes", "os", "arch")
LIST_SECTIONS = ("artifacts", "rpms", "debs", "images", "extras", "charts", "plain_files")  # lists of mappings
MAPPING_SECTIONS = ("installer", "rpm_repository", "deb_repository")
# entries naming a file: path and sha256
FILE_SECTIONS = ("installer", "artifacts", "rpms", "debs", "extras", "charts", "plain_files")


def _check_structure(manifest: Dict[str, Any], where: str) -> None:
    """The structure every reader relies on, checked in the order a reader meets it: the format first."""

    def wrong(field: str, what: str) -> InstallError:
        return InstallError(f"{where}: {MANIFEST_NAME}: {field}: {what}; {FIX}")

    version = manifest.get("format")
    if version != BUNDLE_FORMAT or isinstance(version, bool):
        raise wrong("format", f"{version!r} is not bundle format {BUNDLE_FORMAT}, the one this installer reads")
    for field in TEXT_FIELDS:
        value = manifest.get(field)
        if not isinstance(value, str) or not value.strip():
            raise wrong(field, f"must be a non-empty string, got {value!r}"[:200])
    if not isinstance(manifest.get("os_aliases") or [], list):
        raise wrong("os_aliases", "must be a list of OS ids")
    for section in LIST_SECTIONS:
        entries = manifest.get(section) or []
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise wrong(section, "must be a list of mappings")
    for section in MAPPING_SECTIONS:
        if not isinstance(manifest.get(section) or {}, dict):
            raise wrong(section, "must be a mapping")
    for section in FILE_SECTIONS:
        entries = manifest.get(section) or []
        for index, entry in enumerate([entries] if isinstance(entries, dict) else entries):
            field = section if isinstance(entries, dict) else f"{section}[{index}]"
            for key in ("path", "sha256"):
                if not isinstance(entry.get(key), str):
                    raise wrong(f"{field}.{key}", f"must be a string, got {entry.get(key)!r}"[:200])
            size = entry.get("size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
                raise wrong(f"{field}.size", f"must be a byte count, got {size!r}"[:200])
    for index, image in enumerate(manifest.get("images") or []):
        if not isinstance(image.get("name"), str):
            raise wrong(f"images[{index}].name", "must be an image reference")


def check_manifest_shape(manifest: Any, where: str) -> Dict[str, Any]:
    """Return bundle.yaml's mapping, or raise one line naming the field that has the wrong shape."""
    if not isinstance(manifest, dict):
        raise InstallError(
            f"{where}: {MANIFEST_NAME} is not a bundle manifest (a mapping with format, kubernetes, os, arch); {FIX}"
        )
    _check_structure(manifest, where)
    return manifest


def load_manifest_yaml(data: bytes) -> Any:
    """bundle.yaml's text as Python values; raises yaml.YAMLError (an alias included)."""
    return load_yaml(data)


def incomplete_line(parts: Sequence[str], most: int = 0) -> str:
    """How every reader of a bundle says it is incomplete (verify, inspect, the node's commands); with `most`,
    at most that many parts and how many more (`bundler inspect` lists them all)."""
    shown = list(parts[:most] if most else parts)
    more = f"; and {len(parts) - len(shown)} more (bundler inspect lists them all)" if len(parts) > len(shown) else ""
    return f"incomplete bundle (built with --allow-incomplete), missing: {'; '.join(shown)}{more}"
