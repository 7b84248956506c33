"""bundle.yaml as types: what the builder writes and the installer reads, format 1.

`BundleManifest.from_yaml` / `from_mapping` check the shape once (every error one line naming the file and
the field) and return frozen dataclasses; `to_yaml` writes the bytes the builder has always written (its key
order included), so reproducible builds and deltas compare byte for byte. schemas/bundle.v1.schema.json
publishes the same contract as JSON Schema (tests keep the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from k8s_install.bundle_format.layout import BUNDLE_FORMAT, MANIFEST_NAME, bundle_dir_name
from k8s_install.bundle_format.shape import ManifestFields, check_manifest_shape
from k8s_install.bundle_format.yaml_loader import dump_yaml, load_yaml
from k8s_install.errors import InstallError, yaml_problem

CLUSTER_CONFIG = "cluster-config"  # the name of the extras entry of cluster.yaml
REGISTRY_CA = "registry-ca"  # the name of the extras entry of the site registry's CA file cluster.yaml names
CLUSTER_FILE_NAMES = (CLUSTER_CONFIG, REGISTRY_CA)


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
    def from_fields(cls, read: ManifestFields) -> ArtifactFile:
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
    def from_fields(cls, read: ManifestFields) -> InstallerFile:
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
    def from_fields(cls, read: ManifestFields) -> Image:
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
    def from_fields(cls, read: ManifestFields) -> Rpm:
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
    def from_fields(cls, read: ManifestFields) -> SolverPolicy:
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
    def from_fields(cls, read: ManifestFields) -> AssumedPackage:
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
    def from_fields(cls, read: ManifestFields) -> InstallRequest:
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
    def from_fields(cls, read: ManifestFields) -> SourceRepository:
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
    def from_fields(cls, read: ManifestFields) -> RpmRepository:
        return cls(
            read.text("path"),
            read.text("closure"),
            SolverPolicy.from_fields(read.section_or_empty("policy")),
            read.flag("gpgcheck", False),
            read.texts("keys"),
            tuple(AssumedPackage.from_fields(entry) for entry in read.entries("assumed_installed")),
            tuple(InstallRequest.from_fields(entry) for entry in read.entries("install")),
            tuple(SourceRepository.from_fields(entry) for entry in read.entries("repositories")),
        )


@dataclass(frozen=True)
class Deb:
    """One .deb of the bundle's apt repository (debs/)."""

    name: str
    version: str
    arch: str
    path: str
    sha256: str
    size: int = 0
    repository: str = ""  # the id of the repository it was taken from
    requested: bool = False  # the release manifest asks for it (not only a dependency)

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "arch": self.arch,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "repository": self.repository,
            "requested": self.requested,
        }

    @classmethod
    def from_fields(cls, read: ManifestFields) -> Deb:
        return cls(
            read.text("name"),
            read.text("version"),
            read.text("arch"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.text("repository"),
            read.flag("requested", False),
        )


@dataclass(frozen=True)
class AptSource:
    """An apt repository the .debs were taken from, and the InRelease the builder checked."""

    id: str
    url: str = ""
    suite: str = ""
    components: Tuple[str, ...] = ()
    inrelease_sha256: str = ""
    signer: str = ""  # the pinned key's fingerprint that made InRelease's good signature

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "suite": self.suite,
            "components": list(self.components),
            "inrelease_sha256": self.inrelease_sha256,
            "signer": self.signer,
        }

    @classmethod
    def from_fields(cls, read: ManifestFields) -> AptSource:
        return cls(
            read.text("id"),
            read.text("url"),
            read.text("suite"),
            read.texts("components"),
            read.text("inrelease_sha256"),
            read.text("signer"),
        )


@dataclass(frozen=True)
class DebRepository:
    """The bundle's own flat apt repository (debs/): `deb [signed-by=KEY] file:<bundle>/debs/ ./`."""

    path: str
    key: str  # the bundle path of the public key its Release is signed with (a key made for the build)
    install: Tuple[str, ...] = ()  # apt-get install arguments (name or name=version)
    install_recommends: bool = False
    minimal_system: Tuple[str, ...] = ()  # "name version" of what apt counted as installed
    repositories: Tuple[AptSource, ...] = ()

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "key": self.key,
            "install": list(self.install),
            "install_recommends": self.install_recommends,
            "minimal_system": list(self.minimal_system),
            "repositories": [entry.to_mapping() for entry in self.repositories],
        }

    @classmethod
    def from_fields(cls, read: ManifestFields) -> DebRepository:
        return cls(
            read.text("path"),
            read.text("key"),
            read.texts("install"),
            read.flag("install_recommends", False),
            read.texts("minimal_system"),
            tuple(AptSource.from_fields(entry) for entry in read.entries("repositories")),
        )


@dataclass(frozen=True)
class ClusterConfigFile:
    """cluster.yaml, validated by the builder (`build --cluster`), or (name registry-ca) the CA certificate of
    the site registry its `registry.ca_file` names, beside it; never its secrets."""

    path: str
    sha256: str
    size: int
    cluster: str  # the cluster's name
    name: str = CLUSTER_CONFIG

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "size": self.size, "cluster": self.cluster}

    @classmethod
    def from_fields(cls, read: ManifestFields) -> ClusterConfigFile:
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
    def from_fields(cls, read: ManifestFields) -> RepositoryKey:
        return cls(
            read.text("repository"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.flag("pinned", False),
            read.optional_text("fingerprint"),
        )


@dataclass(frozen=True)
class Chart:
    """A Helm chart in charts/ (a chart repository: charts/index.yaml beside the packages) and the images its
    templates name (in `images:` as well, so every node has them)."""

    name: str
    version: str
    path: str  # charts/NAME-VERSION.tgz
    sha256: str  # of the .tgz: what index.yaml's `digest` says and `helm pull` checks
    size: int
    source: str  # the chart repository's URL, or oci://HOST/PATH/NAME
    source_digest: Optional[str] = None  # OCI: the manifest digest the chart was pulled by
    images: Tuple[str, ...] = ()  # found by `helm template` with the build's values

    def to_mapping(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "source": self.source,
            "source_digest": self.source_digest,
            "images": list(self.images),
        }

    @classmethod
    def from_fields(cls, read: ManifestFields) -> Chart:
        return cls(
            read.text("name"),
            read.text("version"),
            read.text("path"),
            read.text("sha256"),
            read.count("size"),
            read.text("source"),
            read.optional_text("source_digest"),
            read.texts("images"),
        )


@dataclass(frozen=True)
class PlainFile:
    """A file the operator carries into the air gap (`build --file`), in files/plain/, and where it came from."""

    name: str
    path: str
    sha256: str
    size: int
    source: str  # the local path or the https URL it was taken from

    def to_mapping(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "sha256": self.sha256, "size": self.size, "source": self.source}

    @classmethod
    def from_fields(cls, read: ManifestFields) -> PlainFile:
        return cls(read.text("name"), read.text("path"), read.text("sha256"), read.count("size"), read.text("source"))


ExtraFile = Union[ClusterConfigFile, RepositoryKey]
BundleFile = Union[InstallerFile, ArtifactFile, Rpm, Deb, ClusterConfigFile, RepositoryKey, Chart, PlainFile]


def _extra(read: ManifestFields) -> ExtraFile:
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
    name: Optional[str] = None  # the bundle's folder (and tarball stem); absent in bundles built before it was
    deb_repository: Optional[DebRepository] = None  # Debian/Ubuntu targets: the bundle's apt repository
    debs: Tuple[Deb, ...] = ()
    charts: Tuple[Chart, ...] = ()  # Helm charts (`build --chart`), served as a chart repository from charts/
    plain_files: Tuple[PlainFile, ...] = ()  # the operator's own files (`build --file`)

    @property
    def top(self) -> str:
        """The bundle's folder name: as recorded, else as bundles were named before the name was recorded."""
        return self.name or bundle_dir_name(self.kubernetes, self.os, self.arch)

    @property
    def os_ids(self) -> List[str]:
        return [self.os, *self.os_aliases]

    @property
    def files(self) -> List[BundleFile]:
        """Every entry naming a file of the bundle with its sha256: installer, artifacts, packages, extras,
        charts and the operator's plain files."""
        files: List[BundleFile] = [self.installer] if self.installer else []
        return files + [*self.artifacts, *self.rpms, *self.debs, *self.extras, *self.charts, *self.plain_files]

    def artifact(self, name: str) -> Optional[ArtifactFile]:
        return next((entry for entry in self.artifacts if entry.name == name), None)

    @property
    def cluster_config(self) -> Optional[ClusterConfigFile]:
        return next(
            (entry for entry in self.extras if isinstance(entry, ClusterConfigFile) and entry.name == CLUSTER_CONFIG),
            None,
        )

    @property
    def registry_ca(self) -> Optional[ClusterConfigFile]:
        """The site registry's CA file cluster.yaml names, carried beside it (`build --cluster`)."""
        return next(
            (entry for entry in self.extras if isinstance(entry, ClusterConfigFile) and entry.name == REGISTRY_CA),
            None,
        )

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
        if self.name is not None:
            written["name"] = self.name
        extras = [entry.to_mapping() for entry in self.extras]
        if self.cluster_config is not None:
            written["extras"] = extras
        if self.incomplete:
            written["incomplete"] = list(self.incomplete)
        written["artifacts"] = [entry.to_mapping() for entry in self.artifacts]
        if self.images:
            written["images"] = [image.to_mapping() for image in self.images]
        if self.charts:
            written["charts"] = [chart.to_mapping() for chart in self.charts]
        if self.plain_files:
            written["plain_files"] = [entry.to_mapping() for entry in self.plain_files]
        if self.rpm_repository is not None:
            written["rpm_repository"] = self.rpm_repository.to_mapping()
            written["rpms"] = [entry.to_mapping() for entry in self.rpms]
        if self.deb_repository is not None:
            written["deb_repository"] = self.deb_repository.to_mapping()
            written["debs"] = [entry.to_mapping() for entry in self.debs]
        if "extras" not in written and (
            self.extras or self.rpm_repository is not None or self.deb_repository is not None
        ):
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
        check_manifest_shape(data, where)
        read = ManifestFields(data, "", where)
        repository, installer = read.section("rpm_repository"), read.section("installer")
        deb_repository = read.section("deb_repository")
        return cls(
            kubernetes=read.text("kubernetes"),
            os=read.text("os"),
            arch=read.text("arch"),
            builder=read.text("builder"),
            name=read.optional_text("name"),
            os_aliases=read.texts("os_aliases"),
            format=int(data["format"]),
            incomplete=read.texts("incomplete"),
            artifacts=tuple(ArtifactFile.from_fields(entry) for entry in read.entries("artifacts")),
            images=tuple(Image.from_fields(entry) for entry in read.entries("images")),
            rpm_repository=RpmRepository.from_fields(repository) if repository else None,
            rpms=tuple(Rpm.from_fields(entry) for entry in read.entries("rpms")),
            extras=tuple(_extra(entry) for entry in read.entries("extras")),
            installer=InstallerFile.from_fields(installer) if installer else None,
            deb_repository=DebRepository.from_fields(deb_repository) if deb_repository else None,
            debs=tuple(Deb.from_fields(entry) for entry in read.entries("debs")),
            charts=tuple(Chart.from_fields(entry) for entry in read.entries("charts")),
            plain_files=tuple(PlainFile.from_fields(entry) for entry in read.entries("plain_files")),
        )


def declared_files(manifest: BundleManifest) -> Dict[str, Tuple[str, Optional[int]]]:
    """Every file bundle.yaml names -> (sha256, size)."""
    return {entry.path: (entry.sha256, entry.size) for entry in manifest.files}


EMPTY_MANIFEST = BundleManifest(kubernetes="", os="", arch="")  # a bundle that holds nothing (tests, probes)
