"""Delta bundles against full ones for the real release steps 1.29.6 -> 1.29.15 and 1.29.15 -> 1.30.14.

The real artifacts cannot be downloaded here, so each release is a stand-in of real shape: what the release
holds and what two releases share follows the real data (manifests/k8s-<v>.yaml with the pinned sha256 of
checksums/, kubeadm's image tags, the kube RPMs of each minor), and each artifact is random bytes seeded by its
identity (a file's pinned sha256, an image's reference, an RPM's name and version), so two releases share
exactly the artifacts whose pins are the same. Sizes are tests/bench/release.py's estimates of the real ones
(image base layers are shared between versions of an image; an own layer changes with its tag). Everything is
built by the real `bundler build` from loopback servers, and `--from` the previous release's tarball.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from bundler.checksums import load_pins
from tests.bench.release import (
    BASES,
    FILES,
    FILES_HOST,
    IMAGES,
    MIB,
    OTHER_RPMS,
    REPO,
    push_image,
    serve_rpm_repository,
)

STEPS = (("1.29.6", "1.29.15"), ("1.29.15", "1.30.14"))
CALICO_IMAGES = [name for name in IMAGES if "calico" in name]
KUBE_RPM_MIB = {"kubelet": 21, "kubeadm": 10, "kubectl": 10, "kubernetes-cni": 8, "cri-tools": 7}
MINOR_RPMS = {  # the kube RPMs that go with each minor (../shared/pins/UPGRADES.md section 2)
    "1.29": {"cri-tools": "1.29.0", "kubernetes-cni": "1.3.0"},
    "1.30": {"cri-tools": "1.30.0", "kubernetes-cni": "1.4.0"},
}


def seeded(identity: str, size: int) -> bytes:
    return random.Random(hashlib.sha256(identity.encode()).digest()).randbytes(size)


def image_size(reference: str) -> Tuple[str, Tuple[int, ...]]:
    """(base layer, own layer sizes in MiB) of release.py's estimate, by repository (any tag)."""
    repository = reference.rsplit(":", 1)[0]
    for name, shape in IMAGES.items():
        if name.rsplit(":", 1)[0] == repository:
            return shape
    raise KeyError(f"no size estimate for {reference}")


def release_manifest(version: str, mirror, registry_url: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Serve the stand-in of release `version` and return its manifest for the builder."""
    real = yaml.safe_load((REPO / f"manifests/k8s-{version}.yaml").read_text())
    pins = load_pins(REPO / f"checksums/k8s-{version}.sha256")
    files: List[Dict[str, object]] = []
    for entry in real["files"]:
        if entry.get("without_rpms_only") or entry["name"] == "calico-manifest":
            continue
        url = entry["url"].replace("{arch}", "amd64")
        data = seeded(pins[url], FILES[entry["name"]] * MIB)
        path = f"/{FILES_HOST}/{version}/{entry['name']}-amd64"
        mirror.add(path, data)
        url = f"https://{path[1:]}".replace("amd64", "{arch}")
        files.append({"name": entry["name"], "version": str(entry["version"]), "url": url,
                      "sha256": {"amd64": hashlib.sha256(data).hexdigest()}})  # fmt: skip
    calico = _calico(CALICO_IMAGES)
    mirror.add(f"/{FILES_HOST}/calico/calico-typha.yaml", calico)
    files.append({"name": "calico-manifest", "version": "3.28.0", "arch": "noarch", "url": f"https://{FILES_HOST}"
                  "/calico/calico-typha.yaml", "sha256": hashlib.sha256(calico).hexdigest()})  # fmt: skip
    for reference in real["images"] + CALICO_IMAGES:
        base, own = image_size(reference)
        layers = [seeded(f"base {base}", BASES[base] * MIB)] if base else []
        layers += [seeded(f"{reference} layer {index}", mib * MIB) for index, mib in enumerate(own)]
        push_image(registry_url, reference, layers)
    minor = version.rsplit(".", 1)[0]
    kube = {name: version for name in ("kubelet", "kubeadm", "kubectl")} | MINOR_RPMS[minor]
    packages = {(name, kube_version): seeded(f"rpm {name}-{kube_version}", KUBE_RPM_MIB[name] * MIB)
                for name, kube_version in kube.items()}  # fmt: skip
    rng = random.Random(7)  # the OS packages: one repository snapshot for every release
    for index in range(OTHER_RPMS):
        packages[(f"lib-bench{index}", "1.0")] = seeded(f"rpm lib-bench{index}", rng.randrange(100_000, 8 * MIB))
    serve_rpm_repository(mirror, f"repo-{version}", packages)
    return {
        "kubernetes": version, "os": {"rocky9": {"rpms": True}}, "arches": ["amd64"], "files": files,
        "images": list(real["images"]), "images_from_files": ["calico-manifest"],
        "rpm": {"rocky9": {"repositories": [{"id": "bench", "baseurl": f"https://rpms.example.invalid/repo-{version}/"}],
                           "packages": [name for name, _ in packages]}},
    }  # fmt: skip


def _calico(images: List[str]) -> bytes:
    containers = "".join(f"        - name: c{i}\n          image: {image}\n" for i, image in enumerate(images))
    return (f"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: calico-node}}\nspec:\n  template:\n"
            f"    spec:\n      containers:\n{containers}").encode()  # fmt: skip


def build(manifest: dict, work: Path, mirror_url: str, host: str, *extra: str) -> Path:  # type: ignore[type-arg]
    release = work / f"release-{manifest['kubernetes']}-{len(extra)}.yaml"
    release.write_text(yaml.safe_dump(manifest, sort_keys=False))
    output = work / f"out-{manifest['kubernetes']}-{'delta' if extra else 'full'}"
    result = subprocess.run(
        [sys.executable, "-m", "bundler", "build", "--manifest", str(release), "--mirror", mirror_url,
         "--insecure-registry", host, "--registry-mirror", f"registry.k8s.io=http://{host}/k8s",
         "--registry-mirror", f"docker.io=http://{host}/hub", "--cache", str(work / "cache"),
         "--output", str(output), "--allow-incomplete", *extra],
        cwd=REPO, env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"), capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"bundler build failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    return next(output.glob("*.tar"))


def measure(work: Path) -> List[str]:
    from tests.support.http_server import MirrorServer
    from tests.support.registry import Registry

    mirror = MirrorServer().start()
    registry = Registry(work / "registry-storage", work / "registry").start()
    lines = []
    try:
        manifests = {v: release_manifest(v, mirror, registry.url) for v in ("1.29.6", "1.29.15", "1.30.14")}
        full = {v: build(m, work, mirror.url, registry.host) for v, m in manifests.items()}
        for old, new in STEPS:
            delta = build(manifests[new], work, mirror.url, registry.host, "--from", str(full[old]))
            size, whole = delta.stat().st_size, full[new].stat().st_size
            lines.append(
                f"delta {old} -> {new}: {size / MIB:.0f} MiB against the full {new} bundle's {whole / MIB:.0f} MiB; "
                f"ratio {size / whole:.2f}"
            )
    finally:
        registry.stop()
        mirror.stop()
    return lines + ["(stand-in bytes of estimated sizes; what is shared follows the real pins: see the module)"]


def run() -> List[str]:
    if not shutil.which("docker-registry"):
        return ["delta: skipped (needs Debian's docker-registry)"]
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as work:
        return measure(Path(work))


if __name__ == "__main__":
    print("\n".join(run()))
