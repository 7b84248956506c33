"""The release manifest: one YAML file per Kubernetes version, read into typed records.

Format (see manifests/k8s-1.29.6.yaml): `kubernetes`, `os` (target id -> {rpms or debs, aliases}), `arches`,
`files` (name, version, url with {arch} or `arch: noarch`, optional executable / without_rpms_only),
`images` (references), `images_from_files` (file artifacts whose YAML lists more images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from bundler import paths
from bundler.errors import BundlerError
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import yaml_problem

NOARCH = "noarch"
KNOWN_ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class OsTarget:
    id: str
    rpms: bool
    aliases: Tuple[str, ...] = ()
    debs: bool = False  # Kubernetes and what it needs from apt repositories (the manifest's `deb:` section)

    @property
    def packaged(self) -> bool:
        """Kubernetes comes from OS packages (RPMs or .debs), not from the binary files."""
        return self.rpms or self.debs


@dataclass(frozen=True)
class FileSpec:
    """A file artifact as the manifest declares it, before an arch is chosen."""

    name: str
    version: str
    url: str
    arch: Optional[str] = None  # NOARCH, or None meaning "one per arch via {arch}"
    executable: bool = False
    without_rpms_only: bool = False
    sha256: Tuple[Tuple[str, str], ...] = ()  # inline pins: (arch or noarch, sum)

    def pinned_sum(self, arch: str) -> Optional[str]:
        return dict(self.sha256).get(self.arch or arch)

    def url_for(self, arch: str) -> str:
        return self.url.replace("{arch}", arch)


@dataclass(frozen=True)
class FileArtifact:
    """A file artifact resolved for one target: what to fetch and where it goes in the bundle."""

    name: str
    version: str
    url: str
    arch: str
    executable: bool
    inline_sha256: Optional[str] = None

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Release:
    kubernetes: str
    source: Path
    os_targets: Dict[str, OsTarget]
    arches: Tuple[str, ...]
    files: Tuple[FileSpec, ...]
    images: Tuple[str, ...] = ()
    images_from_files: Tuple[str, ...] = ()
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def resolve_os(self, requested: str) -> OsTarget:
        for target in self.os_targets.values():
            if requested == target.id or requested in target.aliases:
                return target
        known = ", ".join(sorted(self.os_targets))
        raise BundlerError(f"{self.source}: no target OS {requested!r}; supported: {known}")

    def files_for(self, os_target: OsTarget, arch: str) -> List[FileArtifact]:
        if arch not in self.arches:
            raise BundlerError(f"{self.source}: arch {arch!r} is not built; supported: {', '.join(self.arches)}")
        chosen = []
        for spec in self.files:
            if spec.without_rpms_only and os_target.packaged:
                continue
            spec_arch = spec.arch or arch
            chosen.append(
                FileArtifact(
                    spec.name, spec.version, spec.url_for(arch), spec_arch, spec.executable, spec.pinned_sum(arch)
                )
            )
        return chosen


def load_release(kubernetes: Optional[str], manifest_file: Optional[Path]) -> Release:
    """The release named by version (from manifests/) or read from an explicit file."""
    if manifest_file is not None:
        path = Path(manifest_file)
        if not path.is_file():
            raise BundlerError(f"{path}: manifest file not found")
    else:
        if not kubernetes:
            raise BundlerError("give --k8s VERSION or --manifest FILE")
        path = paths.manifest_path(kubernetes)
        if not path.is_file():
            versions = ", ".join(paths.supported_versions()) or "none"
            raise BundlerError(f"Kubernetes {kubernetes} is not supported; supported versions: {versions}")
    release = parse_release(_read_yaml(path), path)
    if kubernetes and release.kubernetes != kubernetes:
        raise BundlerError(f"{path}: field kubernetes is {release.kubernetes}, but --k8s {kubernetes} was asked")
    return release


def _read_yaml(path: Path) -> Dict[str, Any]:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), allow_aliases=True)
    except (OSError, UnicodeDecodeError) as error:
        raise BundlerError(f"{path}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        raise BundlerError(f"{path}: not valid YAML: {yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise BundlerError(f"{path}: a release manifest must be a mapping with a 'kubernetes' field")
    return data


def _require(data: Dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if value is None:
        raise BundlerError(f"{where}: field {key!r} is missing")
    if kind is str and isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, kind):
        raise BundlerError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def parse_release(data: Dict[str, Any], source: Path) -> Release:
    where = str(source)
    kubernetes = _require(data, "kubernetes", str, where)
    os_targets = {}
    for os_id, spec in (_require(data, "os", dict, where)).items():
        spec = spec or {}
        aliases = tuple(str(a) for a in spec.get("aliases", []))
        rpms, debs = bool(spec.get("rpms", False)), bool(spec.get("debs", False))
        if rpms and debs:
            raise BundlerError(f"{where}: os.{os_id}: a target takes its packages from RPMs or from .debs, not both")
        os_targets[str(os_id)] = OsTarget(str(os_id), rpms, aliases, debs)
    arches = tuple(str(a) for a in _require(data, "arches", list, where))
    for known in arches:
        if known not in KNOWN_ARCHES:
            raise BundlerError(f"{where}: field 'arches' has {known!r}; known: {', '.join(KNOWN_ARCHES)}")
    files = []
    names = set()
    for index, entry in enumerate(_require(data, "files", list, where)):
        item_where = f"{where}: files[{index}]"
        if not isinstance(entry, dict):
            raise BundlerError(f"{item_where}: must be a mapping with name, version, url")
        name = _require(entry, "name", str, item_where)
        if name in names:
            raise BundlerError(f"{item_where}: name {name!r} appears twice")
        names.add(name)
        url = _require(entry, "url", str, item_where)
        arch: Optional[str] = entry.get("arch")
        if arch is not None and arch != NOARCH:
            raise BundlerError(f"{item_where}: field 'arch' may only be {NOARCH!r}")
        if arch is None and "{arch}" not in url:
            raise BundlerError(f"{item_where}: url has no {{arch}} placeholder; set 'arch: noarch' if it has none")
        if not url.startswith(("https://", "http://")):
            raise BundlerError(f"{item_where}: url must be http(s)://, got {url!r}")
        files.append(
            FileSpec(
                name=name,
                version=_require(entry, "version", str, item_where),
                url=url,
                arch=arch,
                executable=bool(entry.get("executable", False)),
                without_rpms_only=bool(entry.get("without_rpms_only", False)),
                sha256=_inline_sums(entry.get("sha256"), arch, item_where),
            )
        )
    images = tuple(str(i) for i in data.get("images") or [])
    from_files = tuple(str(n) for n in data.get("images_from_files") or [])
    for name in from_files:
        if name not in names:
            raise BundlerError(f"{where}: images_from_files names {name!r}, which is not in files")
    return Release(kubernetes, source, os_targets, arches, tuple(files), images, from_files, raw=data)


def _inline_sums(value: Any, arch: Optional[str], where: str) -> Tuple[Tuple[str, str], ...]:
    """`sha256:` in a manifest entry: one sum for a noarch file, or a mapping arch -> sum."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = {arch or "": value} if arch else None
    if not isinstance(value, dict):
        raise BundlerError(f"{where}: field 'sha256' must map each arch to a sum (or be one sum for noarch)")
    sums = []
    for key, digest in value.items():
        digest = str(digest).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise BundlerError(f"{where}: field 'sha256' for {key}: {digest!r} is not a sha256 hex digest")
        sums.append((str(key), digest))
    return tuple(sums)
