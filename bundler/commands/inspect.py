"""`bundler inspect BUNDLE.tar|DIR`: verify a bundle, then say what it holds (text, or JSON with --json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import k8s_install.report as report
from bundler.errors import BundlerError
from bundler.progress import human_size
from bundler.sbom import summarise_sbom
from k8s_install.bundle_format.contents import describe
from k8s_install.bundle_format.layout import SBOM_NAME
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.bundle_format.shape import incomplete_line


def inspect_document(target: Path, jobs: int = 0) -> Dict[str, Any]:
    """Open the bundle once (verified), then describe it from what that one opening read."""
    try:
        with open_bundle(target, jobs=jobs) as bundle:
            doc = describe(bundle.manifest, len(bundle.files), sum(bundle.files.values()), bundle.sums_sha256)
            doc["signer"] = bundle.signature.describe() if bundle.signature.signed else None
            sbom = json.loads(bundle.read(SBOM_NAME)) if bundle.has(SBOM_NAME) else None  # None: built before SBOMs
    except ValueError as error:
        raise BundlerError(f"{target}: {SBOM_NAME} is not valid JSON: {error}") from None
    doc["sbom"] = summarise_sbom(sbom) if sbom is not None else None
    return doc


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
    if doc["charts"]:
        lines.append(f"charts ({len(doc['charts'])}, served as a chart repository from charts/):")
        for chart in doc["charts"]:
            images = ", ".join(chart["images"]) or "no images"
            lines.append(f"  {chart['name']}  {chart['version']}  from {chart['source']}  ({images})")
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
