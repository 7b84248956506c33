"""One remote RPM repository as the builder sees it: its repomd.xml (signature checked when the key is
pinned, unless the manifest says the repository publishes none: `metadata_signed: false`), then primary and
filelists fetched by the checksums repomd.xml gives."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from bundler.download import Downloader, Fetched
from bundler.errors import BundlerError
from bundler.rpm.keys import KeyInfo, check_key
from bundler.rpm.repodata import (
    FileEntry,
    MetadataFile,
    Package,
    Repomd,
    open_metadata,
    parse_repomd,
    primary_elements,
    read_filelists,
)
from bundler.rpm.signature import verify_detached
from bundler.rpm.solver import RepoMetadata
from bundler.rpm.spec import RepositorySpec

HASH_NAMES = {"sha": "sha1", "sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384",
              "sha512": "sha512", "md5": "md5"}  # fmt: skip


def fetch_checked(
    downloader: Downloader, label: str, url: str, checksum_type: str, checksum: str,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Fetched:  # fmt: skip
    """Download `url` and prove it has the checksum the repository metadata gives, whatever its type."""
    kind = HASH_NAMES.get(checksum_type.lower())
    if kind is None:
        raise BundlerError(f"{label}: unknown checksum type {checksum_type!r} in the repository metadata")
    if kind == "sha256":
        try:
            return downloader.fetch(label, url, checksum, progress)
        except BundlerError as error:
            if "checksum mismatch" not in str(error):
                raise
            raise BundlerError(
                f"{label}: checksum mismatch for {url}: the repository metadata gives sha256 {checksum}; the "
                "download, the mirror or the repository is damaged (retry, or try without --rpm-mirror)"
            ) from None
    fetched = downloader.fetch(label, url, None, progress)
    digest = hashlib.new(kind)
    with open(fetched.path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != checksum:
        raise BundlerError(f"{label}: checksum mismatch for {url}: the repository metadata gives {kind} {checksum}")
    return fetched


class RemoteRepository:
    def __init__(
        self,
        spec: RepositorySpec,
        url: str,
        downloader: Downloader,
        fingerprint: Optional[str] = None,
        locked: Optional[Dict[str, str]] = None,
        manifest: str = "the release manifest",
    ) -> None:
        self.spec = spec
        self.manifest = manifest  # for messages that say which field to change
        self.fingerprint = spec.gpgkey_fingerprint or fingerprint  # the key's pin, from the manifest or checksums/
        self.key_info: Optional[KeyInfo] = None
        self.locked = locked or {}  # "repomd", "signature", "key" -> sha256 from --lock: taken from the cache
        self.id = spec.id
        self.url = url
        self.downloader = downloader
        self.repomd: Optional[Repomd] = None
        self.repomd_sha256 = ""
        self.key: Optional[Fetched] = None
        self.signer: Optional[str] = None
        self.signature_sha256: Optional[str] = None

    def load(self) -> RepoMetadata:
        """Read repomd.xml (signature checked when the key is pinned) and fetch primary; filelists on demand."""
        fetched = self._unpinned("repomd", f"{self.id} repomd.xml", self.url + "repodata/repomd.xml")
        self.repomd_sha256 = fetched.sha256
        where = f"repository {self.id}"
        if self.spec.gpgkey:
            if self.spec.gpgkey_sha256:
                self.key = self.downloader.fetch(f"{self.id} key", self.spec.gpgkey, self.spec.gpgkey_sha256)
            else:
                self.key = self._unpinned("key", f"{self.id} key", self.spec.gpgkey)
            if self.fingerprint:
                self.key_info = check_key(self.key.path, self.fingerprint, self.spec.gpgkey, where)
        if self.metadata_must_be_signed and self.key is not None:
            signature_url = self.url + "repodata/repomd.xml.asc"
            try:
                signature = self._unpinned("signature", f"{self.id} repomd.xml.asc", signature_url)
            except BundlerError as error:
                why = "its key is pinned" if self.key_pinned else f"{self.manifest} says metadata_signed: true"
                raise BundlerError(
                    f"{where}: {why}, so repomd.xml must be signed, but {signature_url} could not be "
                    f"fetched ({error}); if the repository publishes no metadata signature (Rocky Linux, Fedora, "
                    f"EPEL and RHEL do not), set `metadata_signed: false` on repository {self.id} in "
                    f"{self.manifest}: the pinned key then checks every package's signature instead"
                ) from None
            self.signature_sha256 = signature.sha256
            self.signer = verify_detached(fetched.path, signature.path, self.key.path, where)
            if self.fingerprint and self.signer.upper() != self.fingerprint:
                raise BundlerError(
                    f"{where}: repomd.xml is signed by {self.signer}, not by the pinned key {self.fingerprint}"
                )
        self.repomd = parse_repomd(fetched.path.read_bytes(), f"repository {self.id} ({self.url})")
        primary = (self._metadata("primary"), self.repomd.files["primary"].href)
        return RepoMetadata(self.id, primary, self._filelists_file)

    @property
    def key_pinned(self) -> bool:
        return self.spec.gpgkey_sha256 is not None or self.fingerprint is not None

    @property
    def metadata_must_be_signed(self) -> bool:
        """The manifest's `metadata_signed` when given, else: whenever the key is pinned."""
        return self.key_pinned if self.spec.metadata_signed is None else self.spec.metadata_signed

    @property
    def metadata_check(self) -> str:
        """What was proven about repomd.xml, for bundle.yaml."""
        if self.signer:
            return f"verified ({self.signer})"
        if self.spec.metadata_signed is False:
            return "not published (metadata_signed: false)"
        return "not checked (no pinned key)"

    def _filelists_file(self) -> Optional[Tuple[Path, str]]:
        entry = self._entry("filelists")
        return None if entry is None else (self._metadata("filelists"), entry.href)

    def _unpinned(self, what: str, label: str, url: str) -> Fetched:
        """A file that may change upstream (repomd.xml, its signature, an unpinned key): the copy the --lock
        file names when the cache has it (no request), else the current one."""
        locked = self.downloader.cached(self.locked.get(what))
        return locked if locked is not None else self.downloader.fetch(label, url, None)

    def _entry(self, kind: str) -> Optional[MetadataFile]:
        assert self.repomd is not None, "load() first"
        return self.repomd.files.get(kind)

    def _metadata(self, kind: str) -> Path:
        entry = self._entry(kind)
        assert entry is not None
        label = f"{self.id} {kind}"
        return fetch_checked(self.downloader, label, self.url + entry.href, entry.checksum_type, entry.checksum).path

    def files_of(self, checksums: List[str]) -> Dict[str, Tuple[FileEntry, ...]]:
        """pkgid -> files for these packages only (reads filelists without keeping the rest)."""
        entry = self._entry("filelists")
        if entry is None:
            return {}
        wanted = set(checksums)
        with open_metadata(self._metadata("filelists"), entry.href) as stream:
            return read_filelists(stream, f"repository {self.id} filelists", wanted.__contains__)

    def primary_xml(self, checksums: List[str]) -> Dict[str, bytes]:
        entry = self._entry("primary")
        assert entry is not None
        with open_metadata(self._metadata("primary"), entry.href) as stream:
            return primary_elements(stream, set(checksums), f"repository {self.id} primary")

    def package_url(self, package: Package) -> str:
        base = urljoin(self.url, package.base) if package.base else self.url  # xml:base may be relative to the repo
        if urlsplit(base).scheme not in ("http", "https"):
            raise BundlerError(
                f"repository {self.id}: {package.href} has location xml:base {package.base!r}, not an http(s) URL; "
                "fix the repository's metadata"
            )
        return (base if base.endswith("/") else base + "/") + package.href
