"""One remote apt repository as the builder reads it: the pinned key, InRelease checked with it, then each
Packages index the Release lists for the target's architecture, fetched and checked by its sha256 there."""

from __future__ import annotations

import gzip
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from bundler.deb.control import Stanza, parse_stanzas
from bundler.deb.inrelease import ReleaseFile, parse_release, verify_clearsigned
from bundler.deb.spec import AptRepositorySpec
from bundler.download import Downloader, Fetched
from bundler.errors import BundlerError
from bundler.rpm.keys import KeyInfo, check_key


@dataclass(frozen=True)
class PackageEntry:
    """One stanza of a Packages index."""

    repo: str
    name: str
    version: str
    arch: str
    filename: str  # relative to the repository's URL
    size: int
    sha256: str
    stanza: Stanza

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.name, self.version, self.arch)

    @property
    def deb_name(self) -> str:
        return self.filename.rsplit("/", 1)[-1]

    @property
    def essential(self) -> bool:
        return self.stanza.text("Essential").lower() == "yes"

    @property
    def required(self) -> bool:
        return self.stanza.text("Priority").lower() == "required"


@dataclass(frozen=True)
class IndexFile:
    path: str  # relative to the repository's URL, as the Release names it under its folder
    file: Path  # the verified copy in the cache


@dataclass
class LoadedRepository:
    spec: AptRepositorySpec
    url: str
    key: Fetched
    key_info: KeyInfo
    inrelease: Fetched
    release: ReleaseFile
    indexes: List[IndexFile]
    packages: List[PackageEntry]


def fetch_listed(
    downloader: Downloader, label: str, url: str, sha256: str, listed_in: str,
    progress: Optional[Callable[[int, int], None]] = None, size: Optional[int] = None,
) -> Fetched:  # fmt: skip
    """Download `url` and prove it has the sha256 the signed metadata lists for it."""
    try:
        return downloader.fetch(label, url, sha256, progress, size)
    except BundlerError as error:
        if "checksum mismatch" not in str(error):
            raise
        raise BundlerError(
            f"{label}: checksum mismatch for {url}: {listed_in} gives sha256 {sha256}; the download, the mirror or "
            "the repository is damaged (retry, or use another mirror)"
        ) from None


def read_index(path: Path, name: str) -> str:
    if name.endswith(".xz"):
        data = lzma.decompress(path.read_bytes())
    elif name.endswith(".gz"):
        data = gzip.decompress(path.read_bytes())
    else:
        data = path.read_bytes()
    return data.decode("utf-8")


def _entries(repo: str, text: str, where: str) -> List[PackageEntry]:
    entries = []
    try:
        for stanza in parse_stanzas(text, where):
            name, version, filename = stanza.text("Package"), stanza.text("Version"), stanza.text("Filename")
            digest, size = stanza.text("SHA256").lower(), stanza.text("Size")
            if not (name and version and filename):
                raise BundlerError(f"{where}: a stanza lacks Package, Version or Filename ({name or 'no name'})")
            if len(digest) != 64 or not size.isdigit():
                raise BundlerError(f"{where}: package {name} {version} has no SHA256 or Size; apt refuses it")
            arch = stanza.text("Architecture")
            entries.append(PackageEntry(repo, name, version, arch, filename, int(size), digest, stanza))
    except ValueError as error:
        raise BundlerError(str(error)) from None
    return entries


def index_folders(spec: AptRepositorySpec, release: ReleaseFile, arch: str, where: str) -> List[str]:
    if release.architectures and arch not in release.architectures and not spec.flat:
        raise BundlerError(
            f"{where}: the repository has no packages for {arch} (its Release lists {' '.join(release.architectures)})"
        )
    if spec.flat:
        return [""]
    folders = []
    for component in spec.components:
        if release.components and component not in release.components:
            raise BundlerError(
                f"{where}: component {component!r} is not in the repository (it has {' '.join(release.components)})"
            )
        folders.append(f"{component}/binary-{arch}/")
        if "all" in release.architectures and not release.arch_all_in_arch_indexes:
            folders.append(f"{component}/binary-all/")
    return folders


def _fetch_index(
    downloader: Downloader, spec: AptRepositorySpec, url: str, candidates: List[Tuple[str, str, int]]
) -> Tuple[str, Fetched]:
    """The first of the listed compressions the repository serves; a wrong sum is never skipped over."""
    failure: Optional[BundlerError] = None
    for path, digest, size in candidates:
        try:
            fetched = fetch_listed(
                downloader, f"{spec.id} {path}", url + spec.release_dir + path, digest, "the signed Release", None, size
            )
            return path, fetched
        except BundlerError as error:
            if "checksum mismatch" in str(error):
                raise
            failure = failure or error
    assert failure is not None
    raise failure


def load_repository(
    spec: AptRepositorySpec, url: str, downloader: Downloader, fingerprint: Optional[str], arch: str, manifest: str,
    locked_inrelease: Optional[str] = None,
) -> LoadedRepository:  # fmt: skip
    """`locked_inrelease`: the sha256 of the InRelease a --lock file names; taken from the cache when it is there
    (its signature checked again, its Valid-Until not: the lock asks for that very metadata)."""
    where = f"apt repository {spec.id} ({url})"
    pinned = spec.key_fingerprint or fingerprint
    if not pinned:
        raise BundlerError(
            f"{where}: its key {spec.key} is not pinned: add `key_fingerprint` to repository {spec.id} in {manifest} "
            "or a '<fingerprint>  <key url>' line to the release's checksums/k8s-<version>.keys"
        )
    key = downloader.fetch(f"{spec.id} key", spec.key, None)
    key_info = check_key(key.path, pinned, spec.key, where)
    inrelease_url = url + spec.release_dir + "InRelease"
    locked = downloader.cached(locked_inrelease)
    inrelease = locked or downloader.fetch(f"{spec.id} InRelease", inrelease_url, None)
    content = verify_clearsigned(inrelease.path, key.path, key_info.fingerprint, where)
    release = parse_release(content, where, check_expiry=locked is None)
    indexes, packages = [], []
    for folder in index_folders(spec, release, arch, where):
        candidates = release.indexes_in(folder)
        if not candidates:
            if folder.endswith("binary-all/"):
                continue
            raise BundlerError(f"{where}: the Release lists no Packages index in {folder or 'its folder'}")
        path, fetched = _fetch_index(downloader, spec, url, candidates)
        indexes.append(IndexFile(spec.release_dir + path, fetched.path))
        try:
            text = read_index(fetched.path, path)
        except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as error:
            raise BundlerError(f"{where}: {path} is not readable: {error}") from None
        packages += _entries(spec.id, text, f"{where}: {path}")
    return LoadedRepository(spec, url, key, key_info, inrelease, release, indexes, packages)
