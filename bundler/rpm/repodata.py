"""Read yum/dnf repository metadata: repomd.xml, and from primary.xml and filelists.xml (gz, xz, zst, bz2 or
plain) the entries of the packages being re-published. Resolving reads primary and filelists in libsolv
(bundler/rpm/solver.py); a Package here is one chosen package as the download and publish steps need it.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, Optional, Set, Tuple

from bundler.errors import BundlerError

REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"
FILELISTS_NS = "{http://linux.duke.edu/metadata/filelists}"
OTHER_NS = "{http://linux.duke.edu/metadata/other}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
FLAG_OPERATORS = {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}


@dataclass(frozen=True)
class MetadataFile:
    """One `<data>` entry of repomd.xml."""

    type: str
    href: str
    checksum_type: str
    checksum: str
    size: Optional[int]


@dataclass(frozen=True)
class Repomd:
    revision: str
    files: Dict[str, MetadataFile]


@dataclass(frozen=True)
class EVR:
    """epoch:version-release; `release` None means "any release" when used in a requirement."""

    epoch: int
    version: str
    release: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> EVR:
        text = text.strip()
        epoch = 0
        head, colon, rest = text.partition(":")
        if colon:
            if not head.isdigit():
                raise ValueError(f"epoch {head!r} in {text!r} is not a number")
            epoch, text = int(head), rest
        version, dash, release = text.rpartition("-") if "-" in text else (text, "", "")
        if not version:
            raise ValueError(f"no version in {text!r}")
        return cls(epoch, version, release if dash else None)

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        release = f"-{self.release}" if self.release is not None else ""
        return f"{epoch}{self.version}{release}"


@dataclass(frozen=True)
class Dependency:
    """A Requires/Provides entry; `flags` is None for an unversioned one, `name` may be a rich dependency."""

    name: str
    flags: Optional[str] = None  # EQ, LT, LE, GT, GE
    evr: Optional[EVR] = None
    pre: bool = False

    def __str__(self) -> str:
        if self.flags is None or self.evr is None:
            return self.name
        return f"{self.name} {FLAG_OPERATORS[self.flags]} {self.evr}"


@dataclass(frozen=True)
class Package:
    repo: str
    name: str
    arch: str
    evr: EVR
    checksum_type: str
    checksum: str
    href: str
    base: Optional[str]
    size: int
    files: Tuple[str, ...] = ()  # the published file list comes from filelists (files_of)

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr.epoch}:{self.evr.version}-{self.evr.release}.{self.arch}"

    @property
    def filename(self) -> str:
        return self.href.rsplit("/", 1)[-1]


def open_metadata(path: Path, href: str) -> IO[bytes]:
    """A decompressing reader chosen by the metadata file's name (as repomd.xml names it)."""
    raw = open(path, "rb")  # noqa: SIM115 (closed by the returned reader)
    if href.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if href.endswith(".xz"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if href.endswith(".bz2"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if href.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw


def parse_repomd(data: bytes, where: str) -> Repomd:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise BundlerError(f"{where}: repomd.xml is not valid XML ({error})") from None
    if root.tag != f"{REPO_NS}repomd":
        raise BundlerError(f"{where}: not a repomd.xml (root element {root.tag})")
    files = {}
    for entry in root.findall(f"{REPO_NS}data"):
        location = entry.find(f"{REPO_NS}location")
        checksum = entry.find(f"{REPO_NS}checksum")
        if location is None or checksum is None or not checksum.text:
            raise BundlerError(f"{where}: repomd.xml entry {entry.get('type')} lacks a location or checksum")
        size = entry.findtext(f"{REPO_NS}size")
        files[entry.get("type", "")] = MetadataFile(
            entry.get("type", ""),
            location.get("href", ""),
            checksum.get("type", "sha256"),
            checksum.text.strip().lower(),
            int(size) if size and size.isdigit() else None,
        )
    if "primary" not in files:
        raise BundlerError(f"{where}: repomd.xml names no primary metadata")
    return Repomd(root.findtext(f"{REPO_NS}revision", "").strip(), files)


def _iterate(stream: IO[bytes], tag: str, where: str) -> Iterator[ET.Element]:
    """Each complete `tag` element, freed once the caller is done with it."""
    try:
        for _, element in ET.iterparse(stream, events=("end",)):
            if element.tag == tag:
                yield element
                element.clear()
    except (ET.ParseError, EOFError, OSError, lzma.LZMAError) as error:
        raise BundlerError(f"{where}: damaged metadata ({error}); the repository may be mid-update, retry") from None


def primary_elements(stream: IO[bytes], wanted: Set[str], where: str) -> Dict[str, bytes]:
    """The raw `<package>` XML of the packages whose checksum is in `wanted` (for re-publishing)."""
    found = {}
    for element in _iterate(stream, f"{COMMON_NS}package", where):
        checksum = (element.findtext(f"{COMMON_NS}checksum") or "").strip().lower()
        if checksum in wanted:
            found[checksum] = ET.tostring(element)
    return found


FileEntry = Tuple[str, Optional[str]]  # path, type (None for a file, "dir" or "ghost")


def read_filelists(
    stream: IO[bytes], where: str, wanted: Optional[Callable[[str], bool]] = None
) -> Dict[str, Tuple[FileEntry, ...]]:
    """pkgid -> every file of that package (only the packages `wanted` accepts, when given)."""
    files: Dict[str, Tuple[FileEntry, ...]] = {}
    for element in _iterate(stream, f"{FILELISTS_NS}package", where):
        pkgid = element.get("pkgid", "").lower()
        if wanted is not None and not wanted(pkgid):
            continue
        files[pkgid] = tuple((f.text or "", f.get("type")) for f in element.findall(f"{FILELISTS_NS}file"))
    return files
