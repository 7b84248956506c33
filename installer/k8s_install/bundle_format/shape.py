"""The shape of bundle.yaml, checked once where it is read (verify, load_bundle, inspect).

SHA256SUMS proves bundle.yaml is the file the builder wrote only when the bundle is signed; an unsigned bundle
can be edited together with its SHA256SUMS. Every reader then relies on this check instead of meeting a list
where a mapping belongs half-way through an install.
"""

from __future__ import annotations

from typing import Any, Dict, List

import yaml

from k8s_install.bundle_format.layout import BUNDLE_FORMAT, MANIFEST_NAME
from k8s_install.errors import InstallError

TEXT_FIELDS = ("kubernetes", "os", "arch")
LIST_SECTIONS = ("artifacts", "rpms", "images", "extras")  # lists of mappings
MAPPING_SECTIONS = ("installer", "rpm_repository")
FILE_SECTIONS = ("installer", "artifacts", "rpms", "extras")  # entries naming a file: path and sha256


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases: the builder never writes one (NoAliasDumper), and nested aliases
    expand exponentially for whoever walks the result (a few hundred bytes can stand for gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"uses the YAML alias *{event.anchor}, which the builder never writes", event.start_mark
            )
        return super().compose_node(parent, index)


class NoAliasDumper(yaml.SafeDumper):
    """What the builder writes bundle.yaml with: a value used twice is written twice, never as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def load_manifest_yaml(data: bytes) -> Any:
    """bundle.yaml's text as Python values; raises yaml.YAMLError (an alias included)."""
    return yaml.load(data, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)


def check_manifest_shape(manifest: Any, where: str) -> Dict[str, Any]:
    """Return bundle.yaml's mapping, or raise one line naming the field that has the wrong shape."""
    fix = "re-copy the bundle from the build, or rebuild it"
    if not isinstance(manifest, dict):
        raise InstallError(
            f"{where}: {MANIFEST_NAME} is not a bundle manifest (a mapping with format, kubernetes, os, arch); {fix}"
        )

    def wrong(field: str, what: str) -> InstallError:
        return InstallError(f"{where}: {MANIFEST_NAME}: {field}: {what}; {fix}")

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
    missing = manifest.get("incomplete") or []
    if not isinstance(missing, list) or not all(isinstance(part, str) for part in missing):
        raise wrong("incomplete", "must be a list of the parts the build left out")
    return manifest


def incomplete_parts(manifest: Dict[str, Any]) -> List[str]:
    """What a bundle built with `bundler build --allow-incomplete` lacks of a node (bundle.yaml `incomplete`)."""
    return [str(part) for part in manifest.get("incomplete") or []]


def incomplete_line(parts: List[str], most: int = 0) -> str:
    """How every reader of a bundle says it is incomplete (verify, inspect, the node's commands); with `most`,
    at most that many parts and how many more (`bundler inspect` lists them all)."""
    shown = parts[:most] if most else parts
    more = f"; and {len(parts) - len(shown)} more (bundler inspect lists them all)" if len(parts) > len(shown) else ""
    return f"incomplete bundle (built with --allow-incomplete), missing: {'; '.join(shown)}{more}"
