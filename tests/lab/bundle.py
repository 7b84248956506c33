"""The bundle the lab nodes install from, made by the real `bundler build` from loopback sources.

- files: node_bundle.py's runtime artifacts (Debian's real containerd, ctr, shim and runc; small CNI,
  buildkit and nerdctl stand-ins);
- RPMs, signed by a throwaway key the bundle pins: kubeadm, kubelet, kubectl as the lab stand-ins of
  tests/lab/standins.py (launchers of /usr/lib/k8s-lab/standin; kubelet.service); and every other package
  the EL9 bundle names (chrony, keepalived, haproxy, socat, conntrack-tools, ...) as RPMs owning only a
  marker file, because the Debian node already has the real programs;
- images from a loopback registry: the test busybox, and pause:3.9 as registry.k8s.io/pause:3.9;
- cluster.yaml, packed with `--cluster` as a user would.

The kube RPMs of each release come from that minor's own stand-in "kubernetes" repository (as the real
manifests have one repository per minor). Every release the lab builds (1.29.6, and the upgrades' 1.29.15 and
1.30.14, tests/lab/upgrade.py) carries Debian's containerd 1.6 as its runtime, its artifact labelled with that
binary's own version, so the installer renders the configuration format 1.6 reads (version 2), not the 1.30
line's containerd 2.x format: containerd 2.x cannot be obtained on this machine (tests/lab/standins.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import yaml

from tests.lab import standins
from tests.lab.root import EL9_PRESENT_RPMS
from tests.support.http_server import MirrorServer
from tests.support.node_bundle import REAL_CONTAINERD, node_release_manifest, reproducible_tarball
from tests.support.registry import Registry
from tests.support.rpm_repo import FakeRpm, build_rpms, make_repo, serve_directory
from tests.support.signing import SigningKey

REPO_ROOT = Path(__file__).resolve().parents[2]
RPM_HOST = "rpms.example.invalid"
KUBE_RELEASE = "150500.1.1"
KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
# What the real manifest's rocky9 `packages:` list adds to the kube RPMs; the node has each from Debian.
PRESENT_ON_NODE = ("conntrack-tools", "socat", "iptables", "ebtables", "ethtool", "ipvsadm", "ipset", "chrony",
                   "keepalived", "haproxy", "tar", "cri-tools", "kubernetes-cni")  # fmt: skip
EMPTY_FILES = {"/usr/share/k8s-lab/rpms/{name}": "lab stand-in: the node has {name} from Debian"}


def kube_rpm(name: str, version: str = "1.29.6") -> FakeRpm:
    files = {f"/usr/bin/{name}": standins.launcher(name)}
    if name == "kubelet":
        files["/usr/lib/systemd/system/kubelet.service"] = standins.KUBELET_UNIT
    requires = ("kubelet", "kubectl", "cri-tools", "kubernetes-cni") if name == "kubeadm" else ()
    return FakeRpm(name, version, KUBE_RELEASE, arches=("x86_64",), requires=requires, files=files)


def present_rpm(name: str) -> FakeRpm:
    marker = {k.format(name=name): v.format(name=name) for k, v in EMPTY_FILES.items()}
    return FakeRpm(name, "0.lab", files=marker)


def lab_release(mirror: MirrorServer, work: Path, signer: SigningKey, version: str = "1.29.6") -> dict:
    """The release manifest: node_bundle's files plus an `rpm:` section served from the mirror."""
    kube = build_rpms([kube_rpm(name, version) for name in KUBE_PACKAGES], work / "kube-build")
    # the base repository also holds what the root's RPM database has (rocky-release): the builder checks
    # every assumed package against the repositories
    base = build_rpms([present_rpm(name) for name in PRESENT_ON_NODE] + list(EL9_PRESENT_RPMS), work / "base-build")
    signer.sign_rpms([*kube.values(), *base.values()])
    mirror.add(f"/{RPM_HOST}/key.asc", signer.public)
    key = {"gpgkey": f"https://{RPM_HOST}/key.asc", "gpgkey_sha256": hashlib.sha256(signer.public).hexdigest()}
    repositories = []
    minor = ".".join(version.split(".")[:2])
    served = (("kubernetes", f"kubernetes/v{minor}", list(kube.values())), ("base", "base", list(base.values())))
    for repo_id, where, rpms in served:
        folder = make_repo(work / "repos" / repo_id, rpms)
        signer.sign_detached(folder / "repodata" / "repomd.xml")
        serve_directory(mirror, f"/{RPM_HOST}/{where}", folder)
        repositories.append({"id": repo_id, "baseurl": f"https://{RPM_HOST}/{where}/", **key})
    manifest = node_release_manifest(mirror, {"kubernetes": version})
    replace_file_artifact(manifest, mirror, "buildkit", buildkit_standin())
    for entry in manifest["files"]:
        if entry["name"] == "containerd":
            entry["version"] = debian_containerd_version()
    manifest["rpm"] = {
        "rocky9": {
            "repositories": repositories,
            "packages": [f"{name} = {version}" for name in KUBE_PACKAGES] + list(PRESENT_ON_NODE[:-2]),
            "assumed_installed": [rpm.name for rpm in EL9_PRESENT_RPMS],
        }
    }
    return manifest


def debian_containerd_version() -> str:
    """The version of the containerd the lab bundles (Debian's, tests/support/node_bundle.py), e.g. 1.6.20."""
    shown = subprocess.run([REAL_CONTAINERD[0], "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r" v?(\d+\.\d+\.\d+)", shown)
    if not found:
        raise AssertionError(f"containerd --version: no version in {shown!r}")
    return found.group(1)


def buildkit_standin() -> bytes:
    """buildkit's release tarball with a buildkitd that stays up as the daemon does (tests/lab/standins.py)."""
    daemon = standins.BUILDKITD.encode()
    return reproducible_tarball(
        [("bin/buildkitd", daemon), ("bin/buildctl", b"#!/bin/sh\necho 'buildctl (lab stand-in)'\n")]
    )


def replace_file_artifact(manifest: dict, mirror: MirrorServer, name: str, data: bytes) -> None:
    """Serve `data` as the amd64 file of artifact `name`, and pin its sha256."""
    for entry in manifest["files"]:
        if entry["name"] == name:
            mirror.add("/" + entry["url"].replace("{arch}", "amd64").split("://", 1)[1], data)
            entry["sha256"] = {"amd64": hashlib.sha256(data).hexdigest()}


ReleaseMaker = Callable[[MirrorServer, SigningKey], dict]


def build_lab_bundle(
    work: Path, cluster_yaml: Path, images: List[str], registry: Registry, version: str = "1.29.6", *extra: str,
    release_maker: Optional[ReleaseMaker] = None,
) -> Path:  # fmt: skip
    """Build with the real builder and return the bundle tarball (unpacked by each node itself); `extra`
    arguments go to `bundler build` (e.g. --from OLD for a delta); `release_maker` writes another release
    manifest than the EL9 lab's (the Debian lab's, tests/lab/debian.py)."""
    work.mkdir(parents=True, exist_ok=True)
    mirror = MirrorServer().start()
    signer = SigningKey("k8s-lab")
    try:
        if release_maker is not None:
            manifest = release_maker(mirror, signer)
        else:
            manifest = lab_release(mirror, work, signer, version)
        manifest["images"] = images
        release = work / "release.yaml"
        release.write_text(yaml.safe_dump(manifest, sort_keys=False))
        result = subprocess.run(
            [sys.executable, "-m", "bundler", "build", "--manifest", str(release), "--mirror", mirror.url,
             "--cache", str(work / "cache"), "--output", str(work / "out"), "--cluster", str(cluster_yaml),
             "--insecure-registry", registry.host, "--allow-incomplete",
             "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored", *extra],
            capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"bundler build failed: {result.stdout}{result.stderr}")
    finally:
        signer.close()
        mirror.stop()
    shutil.rmtree(work / "cache", ignore_errors=True)
    (tarball,) = (work / "out").glob("*.tar")  # the bundle, or with --from its delta
    return tarball


def make_lab_bundle(
    work: Path, image_storage: Path, secrets: object, timings: Dict[str, float], *extra: str,
    release_maker: Optional[ReleaseMaker] = None,
) -> Tuple[Path, Path]:  # fmt: skip
    """cluster.yaml and its secrets in `work/site`, and the bundle tarball built with the test images served
    from a copy of `image_storage`; returns (tarball, site). `extra` and `release_maker`: as build_lab_bundle's."""
    from tests.support.cluster_files import write_cluster

    site = work / "site"
    write_cluster(site, secrets)  # type: ignore[arg-type]
    storage = work / "registry-storage"
    shutil.copytree(image_storage, storage)
    started = time.monotonic()
    with Registry(storage, work / "registry") as registry:
        images = [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9"]
        tarball = build_lab_bundle(
            work / "build", site / "cluster.yaml", images, registry, "1.29.6", *extra, release_maker=release_maker
        )
    timings["bundle build"] = time.monotonic() - started
    return tarball, site
