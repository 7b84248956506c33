"""Write repository metadata for the bundle's `rpms/` folder, so that dnf on the node reads it as a repo.

Per package, primary.xml keeps the upstream entry (its header range, dependencies, descriptions) with the
location pointed at `Packages/<file>` and the checksum rewritten as the sha256 the builder verified.
filelists.xml lists every file (dnf resolves file dependencies from it); other.xml carries no changelogs.
Output is reproducible: sorted packages, gzip without names or times, one timestamp for all.
"""

from __future__ import annotations

import gzip
import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from bundler.rpm.repodata import COMMON_NS, RPM_NS, XML_BASE, FileEntry, Package

REPODATA = "repodata"
PACKAGES = "Packages"
COMMON_URI, RPM_URI = COMMON_NS.strip("{}"), RPM_NS.strip("{}")
FILELISTS_URI = "http://linux.duke.edu/metadata/filelists"
OTHER_URI = "http://linux.duke.edu/metadata/other"
REPO_URI = "http://linux.duke.edu/metadata/repo"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class PublishedPackage:
    package: Package
    primary_xml: bytes  # the upstream <package> element
    files: Tuple[FileEntry, ...]
    sha256: str
    size: int

    @property
    def location(self) -> str:
        return f"{PACKAGES}/{self.package.filename}"


def _package_open(item: PublishedPackage) -> str:
    name, arch = quoteattr(item.package.name), quoteattr(item.package.arch)
    return f"<package pkgid={quoteattr(item.sha256)} name={name} arch={arch}>"


def _version_attributes(package: Package) -> str:
    evr = package.evr
    return f"epoch={quoteattr(str(evr.epoch))} ver={quoteattr(evr.version)} rel={quoteattr(evr.release or '')}"


_PREFIXES = {COMMON_NS: "", RPM_NS: "rpm:", "{http://www.w3.org/XML/1998/namespace}": "xml:"}


def _qualified(name: str) -> str:
    """`{uri}local` as written in repository metadata: no prefix for the common namespace, `rpm:`."""
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    prefix = _PREFIXES.get("{" + uri + "}")
    if prefix is None:
        raise ValueError(f"unexpected XML namespace {uri} in primary metadata")
    return prefix + local


def _serialize(element: ET.Element, indent: str) -> str:
    """One element of primary.xml in the conventional form (namespaces declared once on <metadata>)."""
    tag = _qualified(element.tag)
    attributes = "".join(f" {_qualified(k)}={quoteattr(v)}" for k, v in element.attrib.items())
    children = list(element)
    text = escape(element.text or "") if (element.text or "").strip() or not children else ""
    if not children and not text:
        return f"{indent}<{tag}{attributes}/>"
    if not children:
        return f"{indent}<{tag}{attributes}>{text}</{tag}>"
    inner = "\n".join(_serialize(child, indent + "  ") for child in children)
    return f"{indent}<{tag}{attributes}>{text}\n{inner}\n{indent}</{tag}>"


def _primary(packages: Sequence[PublishedPackage]) -> bytes:
    parts: List[bytes] = []
    for item in packages:
        element = ET.fromstring(item.primary_xml)
        location = element.find(f"{COMMON_NS}location")
        checksum = element.find(f"{COMMON_NS}checksum")
        assert location is not None and checksum is not None
        location.attrib.pop(XML_BASE, None)
        location.set("href", item.location)
        checksum.set("type", "sha256")
        checksum.text = item.sha256
        text = _serialize(element, "  ")
        parts.append(text.encode())
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="{COMMON_URI}" xmlns:rpm="{RPM_URI}" '
        f'packages="{len(packages)}">\n'
    )
    return head.encode() + b"\n".join(parts) + b"\n</metadata>\n"


def _filelists(packages: Sequence[PublishedPackage]) -> bytes:
    lines = [f'{XML_HEAD}<filelists xmlns="{FILELISTS_URI}" packages="{len(packages)}">']
    for item in packages:
        package = item.package
        lines.append(_package_open(item))
        lines.append(f"  <version {_version_attributes(package)}/>")
        for path, kind in item.files:
            kind_attribute = f" type={quoteattr(kind)}" if kind else ""
            lines.append(f"  <file{kind_attribute}>{escape(path)}</file>")
        lines.append("</package>")
    lines.append("</filelists>\n")
    return "\n".join(lines).encode()


def _other(packages: Sequence[PublishedPackage]) -> bytes:
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<otherdata xmlns="{OTHER_URI}" packages="{len(packages)}">']
    for item in packages:
        package = item.package
        lines.append(f"{_package_open(item)}\n  <version {_version_attributes(package)}/>\n</package>")
    lines.append("</otherdata>\n")
    return "\n".join(lines).encode()


def _compress(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def write_repodata(packages: Sequence[PublishedPackage], timestamp: int) -> Dict[str, bytes]:
    """Relative path (under rpms/) -> content of every metadata file, repomd.xml included."""
    ordered = sorted(packages, key=lambda p: (p.package.name, p.package.arch, p.location))
    files: Dict[str, bytes] = {}
    entries = []
    for kind, document in (
        ("primary", _primary(ordered)),
        ("filelists", _filelists(ordered)),
        ("other", _other(ordered)),
    ):
        compressed = _compress(document)
        digest = hashlib.sha256(compressed).hexdigest()
        href = f"{REPODATA}/{digest}-{kind}.xml.gz"
        files[href] = compressed
        entries.append(
            f'  <data type="{kind}">\n'
            f'    <checksum type="sha256">{digest}</checksum>\n'
            f'    <open-checksum type="sha256">{hashlib.sha256(document).hexdigest()}</open-checksum>\n'
            f'    <location href="{href}"/>\n'
            f"    <timestamp>{timestamp}</timestamp>\n"
            f"    <size>{len(compressed)}</size>\n"
            f"    <open-size>{len(document)}</open-size>\n"
            "  </data>\n"
        )
    repomd = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="{REPO_URI}" xmlns:rpm="{RPM_URI}">\n'
        f"  <revision>{timestamp}</revision>\n" + "".join(entries) + "</repomd>\n"
    )
    files[f"{REPODATA}/repomd.xml"] = repomd.encode()
    return files
