"""bundle.yaml as types: what the builder writes and the installer reads, format 1.

`BundleManifest.from_yaml` / `from_mapping` check the shape once (every error one line naming the file and
the field) and return frozen dataclasses; `to_yaml` writes the bytes the builder has always written (its key
order included), so reproducible builds and deltas compare byte for byte. schemas/bundle.v1.schema.json
publishes the same contract as JSON Schema (tests keep the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import yaml

from k8s_install.bundle_format.layout import BUNDLE_FORMAT, MANIFEST_NAME
from k8s_install.bundle_format.yaml_loader import dump_yaml, load_yaml
from k8s_install.errors import InstallError, yaml_problem

FIX = "re-copy the bundle from the build, or rebuild it"
CLUSTER_CONFIG = "cluster-config"  # the name of the extras entry of cluster.yaml


class _Fields:
    """Typed reads of one mapping of bundle.yaml; a wrong value is one line naming the field."""

    def __init__(self, data: Mapping[str, Any], field: str, where: str) -> None:
        self.data, self.field, self.where = data, field, where

    def wrong(self, key: str, what: str) -> InstallError:
        name = f"{self.field}.{key}" if self.field else key
        return InstallError(f"{self.where}: {MANIFEST_NAME}: {name}: {what}; {FIX}"[:400])

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
        prefix = f"{self.field}.{key}" if self.field else key
        return [(f"{prefix}[{index}]", entry) for index, entry in enumerate(value)]

    def mapping(self, key: str) -> Optional[Mapping[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(key, "must be a mapping")
        return value


@dataclass(frozen=True)
class ArtifactFile:
    """A file artifact in files/ (a tarball, a binary, a manifest) and where it came from."""

    name: str
    path: str
    sha256: str
    size: int
    version: Optional[str] = None
    arch: Optional[str] = None
    source: Optional[str] = None  # the URL it was downloaded from
    pinned: bool = True  # its sha256 was pinned before the download (not computed with --allow-unpinned)

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "arch": self.arch,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "source": self.source,
            "pinned": self.pinned,
        }

    @classmethod
    def from_fields(cls, read: _Fields) -> ArtifactFile:
        return cls(
            read.text("name"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.optional_text("version"),
            read.optional_text("arch"),
            read.optional_text("source"),
            read.flag("pinned", True),
        )


@dataclass(frozen=True)
class InstallerFile:
    """k8s-install.pyz, built with the bundle."""

    path: str
    sha256: str
    size: int
    version: str = ""

    def to_mapping(self) -> Dict[str, Any]:
        return {"path": self.path, "version": self.version, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_fields(cls, read: _Fields) -> InstallerFile:
        return cls(read.text("path"), read.text("sha256"), read.count("size"), read.text("version"))


@dataclass(frozen=True)
class Image:
    """A container image in the OCI layout images/: its name and the manifest digest index.json names."""

    name: str
    digest: str
    media_type: str = ""
    platform: str = ""  # os/architecture[/variant]
    size: int = 0  # manifest, config and layers
    source_digest: Optional[str] = None  # the registry's manifest when the bundle holds its OCI conversion
    index_digest: Optional[str] = None  # the index the platform's manifest was chosen from

    def to_mapping(self) -> Dict[str, Any]:
        written: Dict[str, Any] = {
            "name": self.name,
            "digest": self.digest,
            "media_type": self.media_type,
            "platform": self.platform,
            "size": self.size,
        }
        if self.source_digest is not None:
            written["source_digest"] = self.source_digest
        if self.index_digest is not None:
            written["index_digest"] = self.index_digest
        return written

    @classmethod
    def from_fields(cls, read: _Fields) -> Image:
        return cls(
            read.text("name"),
            read.text("digest"),
            read.text("media_type"),
            read.text("platform"),
            read.count("size"),
            read.optional_text("source_digest"),
            read.optional_text("index_digest"),
        )


@dataclass(frozen=True)
class Rpm:
    """One RPM of the bundle's repository (rpms/Packages/)."""

    name: str
    nevra: str  # name-epoch:version-release.arch, the epoch always written
    path: str
    sha256: str
    size: int = 0
    evr: str = ""
    arch: str = ""
    repository: str = ""  # the id of the repository it was taken from
    requested: bool = False  # the release manifest asks for it (not only a dependency)
    why: str = ""  # the chain of requirements that brought it in

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "nevra": self.nevra,
            "evr": self.evr,
            "arch": self.arch,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "repository": self.repository,
            "requested": self.requested,
            "why": self.why,
        }

    @classmethod
    def from_fields(cls, read: _Fields) -> Rpm:
        return cls(
            read.text("name"),
            read.text("nevra"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.text("evr"),
            read.text("arch"),
            read.text("repository"),
            read.flag("requested", False),
            read.text("why"),
        )


@dataclass(frozen=True)
class SolverPolicy:
    """How the builder chose the packages (bundler/rpm/solver.py), recorded for whoever audits the bundle."""

    closure: str  # minimal | full
    arches: Tuple[str, ...] = ()
    solver: str = "libsolv"
    best: bool = True
    weak_dependencies: bool = False
    obsoletes: bool = True
    conflicts: bool = True

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "solver": self.solver,
            "best": self.best,
            "weak_dependencies": self.weak_dependencies,
            "arches": list(self.arches),
            "obsoletes": self.obsoletes,
            "conflicts": self.conflicts,
            "closure": self.closure,
        }

    @classmethod
    def from_fields(cls, read: _Fields) -> SolverPolicy:
        return cls(
            read.text("closure"),
            read.texts("arches"),
            read.text("solver", "libsolv"),
            read.flag("best", True),
            read.flag("weak_dependencies", False),
            read.flag("obsoletes", True),
            read.flag("conflicts", True),
        )


@dataclass(frozen=True)
class AssumedPackage:
    """A package of a minimal install the bundle leaves out, and what the bundle's RPMs require of it."""

    name: str
    nevra: str  # its version in the repositories when the bundle was built
    required: Tuple[str, ...] = ()

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "nevra": self.nevra, "required": list(self.required)}

    @classmethod
    def from_fields(cls, read: _Fields) -> AssumedPackage:
        return cls(read.text("name"), read.text("nevra"), read.texts("required"))


@dataclass(frozen=True)
class InstallRequest:
    """A package the node installs, as the release manifest asked for it."""

    name: str
    nevra: str
    exact: bool = False  # pinned to a version: the node must have this very one

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "nevra": self.nevra, "exact": self.exact}

    @classmethod
    def from_fields(cls, read: _Fields) -> InstallRequest:
        return cls(read.text("name"), read.text("nevra"), read.flag("exact", False))


@dataclass(frozen=True)
class SourceRepository:
    """A repository the RPMs were taken from, and how its metadata and packages were checked."""

    id: str
    url: str = ""
    mirror: Optional[str] = None
    revision: str = ""
    repomd_sha256: str = ""
    signature: str = ""  # how repomd.xml was checked
    repomd_asc_sha256: Optional[str] = None
    package_signatures: str = ""

    def to_mapping(self) -> Dict[str, Any]:
        written: Dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "mirror": self.mirror,
            "revision": self.revision,
            "repomd_sha256": self.repomd_sha256,
            "signature": self.signature,
        }
        if self.repomd_asc_sha256 is not None:
            written["repomd_asc_sha256"] = self.repomd_asc_sha256
        written["package_signatures"] = self.package_signatures
        return written

    @classmethod
    def from_fields(cls, read: _Fields) -> SourceRepository:
        return cls(
            read.text("id"),
            read.text("url"),
            read.optional_text("mirror"),
            read.text("revision"),
            read.text("repomd_sha256"),
            read.text("signature"),
            read.optional_text("repomd_asc_sha256"),
            read.text("package_signatures"),
        )


@dataclass(frozen=True)
class RpmRepository:
    """The bundle's own RPM repository (rpms/) and what the node installs from it."""

    path: str
    closure: str
    policy: SolverPolicy
    gpgcheck: bool  # every package's repository had a key: the node checks signatures
    keys: Tuple[str, ...] = ()  # bundle paths of the repository keys
    assumed_installed: Tuple[AssumedPackage, ...] = ()
    install: Tuple[InstallRequest, ...] = ()
    repositories: Tuple[SourceRepository, ...] = ()

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "closure": self.closure,
            "policy": self.policy.to_mapping(),
            "gpgcheck": self.gpgcheck,
            "keys": list(self.keys),
            "assumed_installed": [entry.to_mapping() for entry in self.assumed_installed],
            "install": [entry.to_mapping() for entry in self.install],
            "repositories": [entry.to_mapping() for entry in self.repositories],
        }

    @classmethod
    def from_fields(cls, read: _Fields) -> RpmRepository:
        policy = read.mapping("policy") or {}
        return cls(
            read.text("path"),
            read.text("closure"),
            SolverPolicy.from_fields(_Fields(policy, "rpm_repository.policy", read.where)),
            read.flag("gpgcheck", False),
            read.texts("keys"),
            tuple(AssumedPackage.from_fields(_Fields(e, f, read.where)) for f, e in read.mappings("assumed_installed")),
            tuple(InstallRequest.from_fields(_Fields(e, f, read.where)) for f, e in read.mappings("install")),
            tuple(SourceRepository.from_fields(_Fields(e, f, read.where)) for f, e in read.mappings("repositories")),
        )


@dataclass(frozen=True)
class ClusterConfigFile:
    """cluster.yaml, validated by the builder (`build --cluster`); never its secrets."""

    path: str
    sha256: str
    size: int
    cluster: str  # the cluster's name
    name: str = CLUSTER_CONFIG

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "size": self.size, "cluster": self.cluster}

    @classmethod
    def from_fields(cls, read: _Fields) -> ClusterConfigFile:
        return cls(
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.text("cluster"),
            read.text("name", CLUSTER_CONFIG),
        )


@dataclass(frozen=True)
class RepositoryKey:
    """The public key of an RPM repository, in rpms/keys/."""

    repository: str
    path: str
    sha256: str
    size: int
    pinned: bool = False  # its fingerprint is pinned in the project (keys/), not only taken from the repository
    fingerprint: Optional[str] = None

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "repository": self.repository,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "pinned": self.pinned,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_fields(cls, read: _Fields) -> RepositoryKey:
        return cls(
            read.text("repository"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.flag("pinned", False),
            read.optional_text("fingerprint"),
        )


ExtraFile = Union[ClusterConfigFile, RepositoryKey]
BundleFile = Union[InstallerFile, ArtifactFile, Rpm, ClusterConfigFile, RepositoryKey]


def _extra(read: _Fields) -> ExtraFile:
    return RepositoryKey.from_fields(read) if "repository" in read.data else ClusterConfigFile.from_fields(read)


@dataclass(frozen=True)
class BundleManifest:
    """bundle.yaml: the target, the builder, and every file, image and package the bundle holds."""

    kubernetes: str
    os: str
    arch: str
    builder: str = ""
    os_aliases: Tuple[str, ...] = ()  # other OS ids the bundle also installs on (rhel9 for rocky9)
    format: int = BUNDLE_FORMAT
    incomplete: Tuple[str, ...] = ()  # parts a node needs that a --allow-incomplete build left out
    artifacts: Tuple[ArtifactFile, ...] = ()
    images: Tuple[Image, ...] = ()
    rpm_repository: Optional[RpmRepository] = None
    rpms: Tuple[Rpm, ...] = ()
    extras: Tuple[ExtraFile, ...] = ()
    installer: Optional[InstallerFile] = None

    @property
    def os_ids(self) -> List[str]:
        return [self.os, *self.os_aliases]

    @property
    def files(self) -> List[BundleFile]:
        """Every entry naming a file of the bundle with its sha256: installer, artifacts, RPMs, extras."""
        return ([self.installer] if self.installer else []) + [*self.artifacts, *self.rpms, *self.extras]

    def artifact(self, name: str) -> Optional[ArtifactFile]:
        return next((entry for entry in self.artifacts if entry.name == name), None)

    @property
    def cluster_config(self) -> Optional[ClusterConfigFile]:
        return next((entry for entry in self.extras if isinstance(entry, ClusterConfigFile)), None)

    @property
    def repository_keys(self) -> Tuple[RepositoryKey, ...]:
        return tuple(entry for entry in self.extras if isinstance(entry, RepositoryKey))

    # -- writing -------------------------------------------------------------------------------------------

    def to_mapping(self) -> Dict[str, Any]:
        """bundle.yaml as plain values, keys in the order the builder has always written them (the order its
        sources added them: cluster.yaml's entry before the rest when given, the RPM keys after the RPMs)."""
        written: Dict[str, Any] = {
            "format": self.format,
            "kubernetes": self.kubernetes,
            "os": self.os,
            "os_aliases": list(self.os_aliases),
            "arch": self.arch,
            "builder": self.builder,
        }
        extras = [entry.to_mapping() for entry in self.extras]
        if self.cluster_config is not None:
            written["extras"] = extras
        if self.incomplete:
            written["incomplete"] = list(self.incomplete)
        written["artifacts"] = [entry.to_mapping() for entry in self.artifacts]
        if self.images:
            written["images"] = [image.to_mapping() for image in self.images]
        if self.rpm_repository is not None:
            written["rpm_repository"] = self.rpm_repository.to_mapping()
            written["rpms"] = [entry.to_mapping() for entry in self.rpms]
        if "extras" not in written and (self.extras or self.rpm_repository is not None):
            written["extras"] = extras
        if self.installer is not None:
            written["installer"] = self.installer.to_mapping()
        return written

    def to_yaml(self) -> str:
        return dump_yaml(self.to_mapping())

    # -- reading -------------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: Union[str, bytes], where: str) -> BundleManifest:
        """Parse and check bundle.yaml's text; `where` names it in messages (a folder, a tarball, a file)."""
        try:
            data = load_yaml(text)
        except yaml.YAMLError as error:
            raise InstallError(f"{where}: {MANIFEST_NAME} is not valid YAML: {yaml_problem(error)}") from None
        return cls.from_mapping(data, where)

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> BundleManifest:
        """The typed manifest, or one line naming the field that has the wrong shape."""
        if not isinstance(data, dict):
            raise InstallError(
                f"{where}: {MANIFEST_NAME} is not a bundle manifest "
                f"(a mapping with format, kubernetes, os, arch); {FIX}"
            )
        check_shape(data, where)
        read = _Fields(data, "", where)

        def entries(key: str) -> List[_Fields]:
            return [_Fields(entry, field, where) for field, entry in read.mappings(key)]

        repository = read.mapping("rpm_repository")
        installer = read.mapping("installer")
        return cls(
            kubernetes=read.text("kubernetes"),
            os=read.text("os"),
            arch=read.text("arch"),
            builder=read.text("builder"),
            os_aliases=read.texts("os_aliases"),
            format=int(data["format"]),
            incomplete=read.texts("incomplete"),
            artifacts=tuple(ArtifactFile.from_fields(entry) for entry in entries("artifacts")),
            images=tuple(Image.from_fields(entry) for entry in entries("images")),
            rpm_repository=None
            if repository is None
            else RpmRepository.from_fields(_Fields(repository, "rpm_repository", where)),
            rpms=tuple(Rpm.from_fields(entry) for entry in entries("rpms")),
            extras=tuple(_extra(entry) for entry in entries("extras")),
            installer=None if installer is None else InstallerFile.from_fields(_Fields(installer, "installer", where)),
        )


TEXT_FIELDS = ("kubernetes", "os", "arch")
LIST_SECTIONS = ("artifacts", "rpms", "images", "extras")  # lists of mappings
MAPPING_SECTIONS = ("installer", "rpm_repository")
FILE_SECTIONS = ("installer", "artifacts", "rpms", "extras")  # entries naming a file: path and sha256


def check_shape(manifest: Dict[str, Any], where: str) -> None:
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


def declared_files(manifest: BundleManifest) -> Dict[str, Tuple[str, Optional[int]]]:
    """Every file bundle.yaml names -> (sha256, size)."""
    return {entry.path: (entry.sha256, entry.size) for entry in manifest.files}


EMPTY_MANIFEST = BundleManifest(kubernetes="", os="", arch="")  # a bundle that holds nothing (tests, probes)
