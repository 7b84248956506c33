"""`bundler releases`: the Kubernetes releases this builder knows and what each bundles, from the release
manifests alone (no network): the version to give `--k8s`, target OSes and arches, file components, images and
the OS packages (RPMs and .debs) asked for per target."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from bundler import paths
from bundler.manifest import Release, load_release
from k8s_install.report import document


def _packages(release: Release, section: str) -> Dict[str, List[str]]:
    """Target id -> the packages its `rpm:` or `deb:` section asks for, as the manifest writes them."""
    entries = release.raw.get(section)
    return {
        str(os_id): [str(p) for p in (spec or {}).get("packages") or []]
        for os_id, spec in (entries.items() if isinstance(entries, dict) else ())
    }


def describe(release: Release) -> Dict[str, Any]:
    return {
        "kubernetes": release.kubernetes,
        "manifest": str(release.source),
        "os": [
            {
                "id": t.id,
                "aliases": list(t.aliases),
                "kubernetes_from": "rpms" if t.rpms else "debs" if t.debs else "files",
            }
            for t in release.os_targets.values()
        ],
        "arches": list(release.arches),
        "files": [{"name": f.name, "version": f.version} for f in release.files],
        "images": list(release.images),
        "images_from_files": list(release.images_from_files),
        "rpm_packages": _packages(release, "rpm"),
        "deb_packages": _packages(release, "deb"),
    }


def run_releases(as_json: bool) -> int:
    described = [describe(load_release(version, None)) for version in paths.supported_versions()]
    if as_json:
        print(json.dumps(document("releases", {"releases": described}), indent=2))
        return 0
    for entry in described:
        print("\n".join(_text(entry)))
    print("build one with: bundler build --k8s VERSION (or --cluster cluster.yaml naming kubernetes_version)")
    return 0


def _text(entry: Dict[str, Any]) -> List[str]:
    targets = ", ".join(t["id"] + (f" (also {', '.join(t['aliases'])})" if t["aliases"] else "") for t in entry["os"])
    lines = [f"Kubernetes {entry['kubernetes']}: os {targets}; arch {', '.join(entry['arches'])}"]
    lines.append("  files:  " + ", ".join(f"{f['name']} {f['version']}" for f in entry["files"]))
    images = [image.rsplit("/", 1)[-1] for image in entry["images"]]
    images += [f"the images named in {name}" for name in entry["images_from_files"]]
    lines.append("  images: " + ", ".join(images))
    for kind in ("rpm", "deb"):
        lines += _package_lines(f"{kind}s", entry[f"{kind}_packages"])
    return lines


def _package_lines(kind: str, by_target: Dict[str, List[str]]) -> List[str]:
    """One line per distinct package list, naming every target that asks for it (the deb targets share one)."""
    targets: Dict[Tuple[str, ...], List[str]] = {}
    for os_id, packages in by_target.items():
        targets.setdefault(tuple(packages), []).append(os_id)
    return [f"  {kind} ({', '.join(ids)}): " + ", ".join(packages) for packages, ids in targets.items()]
