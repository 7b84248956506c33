"""`bundler inspect BUNDLE.tar|DIR`: verify a bundle, then say what it holds (text, or JSON with --json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import k8s_install.report as report
from bundler.errors import BundlerError
from bundler.progress import human_size
from bundler.sbom import summarise_sbom
from bundler.signing import describe_signature
from k8s_install.bundle_format.contents import describe, read_manifest, read_member
from k8s_install.bundle_format.layout import SBOM_NAME
from k8s_install.bundle_format.shape import incomplete_line
from k8s_install.bundle_format.verify import verify_bundle
from k8s_install.errors import InstallError


def inspect_document(target: Path, jobs: int = 0) -> Dict[str, Any]:
    try:
        result = verify_bundle(target, jobs)
        manifest = read_manifest(target)
        sbom = _read_sbom(target)
    except InstallError as error:
        raise BundlerError(str(error)) from None
    except ValueError as error:
        raise BundlerError(f"{target}: {SBOM_NAME} is not valid JSON: {error}") from None
    doc = describe(manifest, result.files, result.bytes, result.sums_sha256)
    signature = describe_signature(target)
    doc["signer"] = None if signature.startswith("unsigned") else signature
    doc["sbom"] = summarise_sbom(sbom) if sbom is not None else None
    return doc


def _read_sbom(target: Path) -> Any:
    """The parsed sbom.spdx.json, or None for a bundle built before SBOMs (verification has vouched for it)."""
    try:
        return json.loads(read_member(target, SBOM_NAME))
    except (FileNotFoundError, InstallError):
        return None


def render_text(target: Path, doc: Dict[str, Any]) -> List[str]:
    target_info = doc["target"]
    aliases = f" (also {', '.join(target_info['os_aliases'])})" if target_info["os_aliases"] else ""
    totals = doc["totals"]
    lines = [
        f"bundle: {target} (verified; SHA256SUMS sha256 {totals['sha256sums_sha256']})",
        f"kubernetes: {doc['kubernetes']}   installer: {doc['installer_version']}   built by: {doc['builder']}",
        f"target: {target_info['os']}{aliases} {target_info['arch']}",
        f"signer: {doc['signer'] or 'none (unsigned)'}",
        f"sbom: {doc['sbom'] or 'none'}",
        f"complete: {'no, ' + incomplete_line(doc['incomplete']) if doc['incomplete'] else 'yes'}",
        f"images ({len(doc['images'])}, {human_size(totals['image_bytes'])}):",
    ]
    lines += [f"  {image['name']}  {image['digest']}  {human_size(image['size'])}" for image in doc["images"]]
    lines.append(f"packages ({len(doc['packages'])}, {human_size(totals['package_bytes'])}):")
    lines += [f"  {package['name']}  {package['version']}.{package['arch']}" for package in doc["packages"]]
    lines.append(f"files ({len(doc['files'])}):")
    for entry in doc["files"]:
        pin = "pinned" if entry["pinned"] else "UNPINNED"
        lines.append(f"  {entry['path']}  {human_size(entry['size'])}  {pin}  sha256 {entry['sha256']}")
    lines.append(
        f"total: {totals['files']} files, {human_size(totals['bytes'])}; {totals['images']} images, "
        f"{totals['packages']} packages, {totals['unpinned_files']} unpinned file(s)"
    )
    return lines


def run_inspect(target: Path, as_json: bool = False, jobs: int = 0) -> int:
    doc = inspect_document(Path(target), jobs)
    if as_json:
        report.emit("inspect", doc)
    else:
        print("\n".join(render_text(target, doc)))
    return 0
