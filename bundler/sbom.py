"""sbom.spdx.json: an SPDX 2.3 JSON document of everything a bundle holds, made from its bundle.yaml.

One SPDX package per thing inside: each file artifact (version, upstream URL, sha256, a generic purl), the
installer, each RPM (rpm purl with epoch, version, release and arch; its license as the repository metadata
states it), each repository key, each image (OCI purl with its manifest digest) and each of its layers
(stored once, contained by every image that uses it), each Helm chart (depending on the images it runs) and
each of the operator's plain files. The bundle is the package the document describes,
and it CONTAINS each of them. Nothing depends on the clock or the machine: `created` is SOURCE_DATE_EPOCH
and the namespace is derived from the record, so two builds from the same inputs give the same bytes.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from bundler import __version__
from bundler.bundle_writer import BundleContents
from bundler.oci.layout import blob_path
from k8s_install.bundle_format.layout import RPMS_DIR, SBOM_NAME
from k8s_install.bundle_format.model import BundleManifest, RepositoryKey, Rpm

NOASSERTION = "NOASSERTION"
NAMESPACE_BASE = "https://spdx.k8s-offline-bundler.invalid/bundles"  # never fetched: only a unique name
REPO_NS = "{http://linux.duke.edu/metadata/repo}"
COMMON_NS = "{http://linux.duke.edu/metadata/common}"
RPM_NS = "{http://linux.duke.edu/metadata/rpm}"


def _id_part(text: str) -> str:
    """SPDX ids and LicenseRefs allow letters, digits, '.' and '-' only."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"


class _Document:
    def __init__(self) -> None:
        self.packages: List[Dict[str, Any]] = []
        self.relationships: List[Dict[str, str]] = []
        self.licenses: Dict[str, Dict[str, str]] = {}  # raw RPM license text -> extracted licensing info
        self._ids: Counter = Counter()

    def new_id(self, kind: str, label: str) -> str:
        base = f"SPDXRef-{kind}-{_id_part(label)}"
        self._ids[base] += 1
        return base if self._ids[base] == 1 else f"{base}-{self._ids[base]}"

    def add(self, package: Dict[str, Any], contained_by: Optional[str] = None) -> str:
        package.setdefault("downloadLocation", NOASSERTION)
        package.setdefault("filesAnalyzed", False)
        self.packages.append(package)
        if contained_by is not None:
            self.contains(contained_by, package["SPDXID"])
        return str(package["SPDXID"])

    def contains(self, parent: str, child: str) -> None:
        relationship = {"spdxElementId": parent, "relationshipType": "CONTAINS", "relatedSpdxElement": child}
        self.relationships.append(relationship)

    def license_ref(self, text: str) -> str:
        """RPM licenses are free text (often not SPDX ids): each distinct one is kept verbatim as a LicenseRef."""
        if text not in self.licenses:
            used = {info["licenseId"] for info in self.licenses.values()}
            ref, count = f"LicenseRef-rpm-{_id_part(text)}", 1
            while ref in used:
                count += 1
                ref = f"LicenseRef-rpm-{_id_part(text)}-{count}"
            self.licenses[text] = {
                "licenseId": ref, "name": text, "extractedText": text,
                "comment": "the License tag of the RPM as its repository metadata states it",
            }  # fmt: skip
        return self.licenses[text]["licenseId"]


def _sha256(value: str) -> List[Dict[str, str]]:
    return [{"algorithm": "SHA256", "checksumValue": value.split(":", 1)[-1]}]


def _purl(locator: str) -> List[Dict[str, str]]:
    return [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": locator}]


def _qualifiers(values: Dict[str, str]) -> str:
    present = sorted((key, value) for key, value in values.items() if value)
    return "?" + "&".join(f"{key}={quote(value, safe='/:')}" for key, value in present) if present else ""


def _read_entry(contents: BundleContents, path: str) -> Optional[bytes]:
    entry = contents.entries.get(path)
    if entry is None:
        return None
    if entry.data is not None:
        return entry.data
    return entry.source.read_bytes() if entry.source is not None else None


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)
    return data


def rpm_licenses(contents: BundleContents) -> Dict[str, str]:
    """Bundle path of each RPM -> its License tag, read from the bundle's own published primary metadata
    (what dnf reads on the node), so it does not depend on how the RPMs were resolved."""
    repomd = _read_entry(contents, f"{RPMS_DIR}/repodata/repomd.xml")
    if repomd is None:
        return {}
    licenses: Dict[str, str] = {}
    for data in ET.fromstring(repomd).iter(f"{REPO_NS}data"):
        location = data.find(f"{REPO_NS}location")
        if data.get("type") != "primary" or location is None:
            continue
        href = location.get("href", "")
        raw = _read_entry(contents, f"{RPMS_DIR}/{href}")
        if raw is None:
            continue
        for package in ET.fromstring(_decompress(href, raw)).iter(f"{COMMON_NS}package"):
            where = package.find(f"{COMMON_NS}location")
            text = package.findtext(f"{COMMON_NS}format/{RPM_NS}license")
            if where is not None and text:
                licenses[f"{RPMS_DIR}/{where.get('href', '')}"] = text.strip()
    return licenses


def _add_files(document: _Document, manifest: BundleManifest, bundle: str) -> None:
    for artifact in manifest.artifacts:
        name, version = artifact.name, artifact.version or ""
        qualifiers = {"download_url": artifact.source or "", "checksum": f"sha256:{artifact.sha256}"}
        package: Dict[str, Any] = {
            "SPDXID": document.new_id("File", name), "name": name, "versionInfo": version or NOASSERTION,
            "packageFileName": artifact.path, "downloadLocation": artifact.source or NOASSERTION,
            "checksums": _sha256(artifact.sha256), "primaryPackagePurpose": "FILE",
            "externalRefs": _purl(f"pkg:generic/{quote(name)}@{quote(version)}{_qualifiers(qualifiers)}"),
        }  # fmt: skip
        if not artifact.pinned:
            package["comment"] = "no pinned sha256: the checksum is what the download had"
        document.add(package, bundle)
    installer = manifest.installer
    if installer:
        document.add(
            {"SPDXID": document.new_id("File", "k8s-install"), "name": installer.path,
             "versionInfo": installer.version or NOASSERTION, "packageFileName": installer.path,
             "checksums": _sha256(installer.sha256), "primaryPackagePurpose": "APPLICATION",
             "comment": "the node installer, built with the bundle"},
            bundle,
        )  # fmt: skip
    for extra in manifest.extras:
        label = (extra.repository if isinstance(extra, RepositoryKey) else "") or extra.path
        document.add(
            {"SPDXID": document.new_id("File", extra.path), "name": f"{label}: {extra.path}",
             "packageFileName": extra.path, "checksums": _sha256(extra.sha256), "primaryPackagePurpose": "FILE"},
            bundle,
        )  # fmt: skip


def _nevra_parts(entry: Rpm) -> Dict[str, str]:
    """name-epoch:version-release.arch -> its parts (the record's nevra always carries the epoch)."""
    name, arch = entry.name, entry.arch
    evr = entry.nevra[len(name) + 1 :]
    if arch and evr.endswith(f".{arch}"):
        evr = evr[: -len(arch) - 1]
    epoch, _, version_release = evr.rpartition(":")
    version, _, release = version_release.rpartition("-")
    return {"epoch": epoch or "0", "version": version, "release": release, "arch": arch}


def _add_rpms(document: _Document, manifest: BundleManifest, contents: BundleContents, bundle: str) -> None:
    if not manifest.rpms:
        return
    licenses = rpm_licenses(contents)
    repositories = manifest.rpm_repository.repositories if manifest.rpm_repository else ()
    urls = {repo.id: repo.url for repo in repositories}
    for entry in manifest.rpms:
        parts = _nevra_parts(entry)
        repository = entry.repository
        qualifiers = {"arch": parts["arch"], "epoch": parts["epoch"], "repository_url": urls.get(repository, "")}
        version = quote(f"{parts['version']}-{parts['release']}")
        purl = f"pkg:rpm/{quote(repository or 'unknown')}/{quote(entry.name)}@{version}"
        license_text = licenses.get(entry.path)
        declared = document.license_ref(license_text) if license_text else NOASSERTION
        document.add(
            {"SPDXID": document.new_id("Rpm", entry.nevra), "name": entry.name,
             "versionInfo": f"{parts['epoch']}:{parts['version']}-{parts['release']}",
             "packageFileName": entry.path, "checksums": _sha256(entry.sha256),
             "licenseDeclared": declared, "licenseConcluded": NOASSERTION, "primaryPackagePurpose": "INSTALL",
             "externalRefs": _purl(purl + _qualifiers(qualifiers)), "sourceInfo": f"repository {repository}"},
            bundle,
        )  # fmt: skip


def _add_debs(document: _Document, manifest: BundleManifest, bundle: str) -> None:
    """Each .deb as an SPDX package with its purl (pkg:deb/<repository id>/<name>@<version>?arch=)."""
    repositories = manifest.deb_repository.repositories if manifest.deb_repository else ()
    urls = {repo.id: repo.url for repo in repositories}
    for entry in manifest.debs:
        qualifiers = {"arch": entry.arch, "repository_url": urls.get(entry.repository, "")}
        purl = f"pkg:deb/{quote(entry.repository or 'unknown')}/{quote(entry.name)}@{quote(entry.version)}"
        document.add(
            {"SPDXID": document.new_id("Deb", f"{entry.name}_{entry.version}_{entry.arch}"), "name": entry.name,
             "versionInfo": entry.version, "packageFileName": entry.path, "checksums": _sha256(entry.sha256),
             "licenseDeclared": NOASSERTION, "licenseConcluded": NOASSERTION, "primaryPackagePurpose": "INSTALL",
             "externalRefs": _purl(purl + _qualifiers(qualifiers)), "sourceInfo": f"repository {entry.repository}"},
            bundle,
        )  # fmt: skip


def _image_layers(contents: BundleContents, digest: str) -> List[Dict[str, Any]]:
    data = _read_entry(contents, blob_path(digest))
    if data is None:
        return []
    return list(json.loads(data).get("layers") or [])


def _repository_and_tag(name: str) -> Tuple[str, str]:
    """registry/path:tag -> (registry/path, tag); a name pinned by digest has no tag."""
    if "@" in name:
        return name.split("@", 1)[0], ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, ""


def _add_images(document: _Document, manifest: BundleManifest, contents: BundleContents, bundle: str) -> Dict[str, str]:
    """Each image and its layers; returns image name -> its SPDX id."""
    layer_ids: Dict[str, str] = {}
    image_ids: Dict[str, str] = {}
    for image in manifest.images:
        name, digest = image.name, image.digest
        repository, tag = _repository_and_tag(name)
        arch = image.platform.split("/")[1:2]
        qualifiers = {"repository_url": repository, "tag": tag, "arch": arch[0] if arch else ""}
        purl = f"pkg:oci/{quote(repository.rsplit('/', 1)[-1].lower())}@{quote(digest, safe='')}"
        image_id = document.add(
            {"SPDXID": document.new_id("Image", name), "name": name, "versionInfo": tag or digest,
             "checksums": _sha256(digest), "primaryPackagePurpose": "CONTAINER",
             "externalRefs": _purl(purl + _qualifiers(qualifiers)),
             "comment": f"manifest {digest}" + (f", from index {image.index_digest}" if image.index_digest else "")},
            bundle,
        )  # fmt: skip
        image_ids[name] = image_id
        for layer in _image_layers(contents, digest):
            layer_digest = str(layer["digest"])
            if layer_digest not in layer_ids:
                layer_ids[layer_digest] = document.add(
                    {"SPDXID": document.new_id("Layer", layer_digest.split(":", 1)[-1]), "name": layer_digest,
                     "packageFileName": blob_path(layer_digest), "checksums": _sha256(layer_digest),
                     "primaryPackagePurpose": "ARCHIVE", "comment": f"{layer.get('mediaType', '')}, "
                     f"{layer.get('size', '?')} bytes"},
                )  # fmt: skip
            document.contains(image_id, layer_ids[layer_digest])
    return image_ids


def _add_workloads(document: _Document, manifest: BundleManifest, bundle: str, image_ids: Dict[str, str]) -> None:
    """Each Helm chart (it DEPENDS_ON the images its templates run) and each of the operator's plain files."""
    for chart in manifest.charts:
        if chart.source_digest:
            qualifiers = {"repository_url": chart.source.split("://", 1)[-1], "tag": chart.version}
            purl = f"pkg:oci/{quote(chart.name.lower())}@{quote(chart.source_digest, safe='')}"
        else:
            qualifiers = {"repository_url": chart.source, "checksum": f"sha256:{chart.sha256}"}
            purl = f"pkg:generic/{quote(chart.name)}@{quote(chart.version)}"
        chart_id = document.add(
            {"SPDXID": document.new_id("Chart", f"{chart.name}-{chart.version}"), "name": chart.name,
             "versionInfo": chart.version, "packageFileName": chart.path, "downloadLocation": chart.source,
             "checksums": _sha256(chart.sha256), "primaryPackagePurpose": "SOURCE",
             "externalRefs": _purl(purl + _qualifiers(qualifiers)),
             "comment": f"Helm chart; images: {', '.join(chart.images) or 'none'}"},
            bundle,
        )  # fmt: skip
        for image in chart.images:
            if image in image_ids:
                document.relationships.append(
                    {
                        "spdxElementId": chart_id,
                        "relationshipType": "DEPENDS_ON",
                        "relatedSpdxElement": image_ids[image],
                    }
                )
    for entry in manifest.plain_files:
        remote = entry.source.startswith("https://")
        document.add(
            {"SPDXID": document.new_id("File", f"plain-{entry.name}"), "name": entry.name,
             "packageFileName": entry.path, "downloadLocation": entry.source if remote else NOASSERTION,
             "checksums": _sha256(entry.sha256), "primaryPackagePurpose": "FILE",
             "comment": f"the operator's file, from {entry.source}"},
            bundle,
        )  # fmt: skip


def sbom_document(manifest: BundleManifest, contents: BundleContents, epoch: int) -> Dict[str, Any]:
    top = manifest.top
    record = manifest.to_mapping()  # bundle.yaml as it is written: the namespace changes when any of it does
    identity = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
    document = _Document()
    bundle = document.add(
        {"SPDXID": "SPDXRef-Bundle", "name": top, "versionInfo": manifest.kubernetes,
         "primaryPackagePurpose": "ARCHIVE", "supplier": NOASSERTION,
         "comment": f"offline Kubernetes bundle for {manifest.os} {manifest.arch}, made by {manifest.builder}"},
    )  # fmt: skip
    _add_files(document, manifest, bundle)
    _add_rpms(document, manifest, contents, bundle)
    _add_debs(document, manifest, bundle)
    _add_workloads(document, manifest, bundle, _add_images(document, manifest, contents, bundle))
    describes = {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": bundle}
    result: Dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": top,
        "documentNamespace": f"{NAMESPACE_BASE}/{top}-{identity}",
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "creators": [f"Tool: bundler-{__version__}"],
        },
        "documentDescribes": [bundle],
        "packages": document.packages,
        "relationships": [describes, *document.relationships],
    }
    if document.licenses:
        result["hasExtractedLicensingInfos"] = [document.licenses[text] for text in sorted(document.licenses)]
    return result


def add_sbom(contents: BundleContents, manifest: BundleManifest, epoch: int) -> None:
    """Put sbom.spdx.json into the bundle; call once, with the whole manifest, after every source added its files."""
    text = json.dumps(sbom_document(manifest, contents, epoch), indent=2, ensure_ascii=False) + "\n"
    contents.add_bytes(SBOM_NAME, text.encode())


KINDS = (("File", "files"), ("Rpm", "RPMs"), ("Image", "images"), ("Layer", "layers"), ("Chart", "charts"))


def summarise_sbom(document: Dict[str, Any]) -> str:
    """One line about a parsed sbom.spdx.json (for `bundler inspect`): how many of each kind, and licenses."""
    kinds = Counter(str(package.get("SPDXID", "")).split("-")[1] for package in document.get("packages") or [])
    parts = [f"{kinds[kind]} {label}" for kind, label in KINDS]
    licenses = len(document.get("hasExtractedLicensingInfos") or [])
    return f"{document.get('spdxVersion', '?')} SBOM: " + ", ".join(parts) + f", {licenses} distinct RPM licenses"
