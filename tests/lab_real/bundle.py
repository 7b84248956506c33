"""Stage 2 of `make lab-real`: the stand-in release 1.35.0 and its bundle, made by the real `bundler build`.

The release manifest (written to CACHE/<commit>/release.yaml) is made as the lab's other stand-in releases
are (tests/lab/bundle.py): every URL served by a loopback mirror with its sha256 pinned, RPMs from a signed
loopback repository, images from the loopback registry tests/lab_real/images.py filled. What differs:

- kubeadm, kubelet, kubectl RPMs hold the binaries built from source (tests/lab_real/build.py), with the
  kubelet.service and the 10-kubeadm.conf drop-in of the upstream RPMs;
- cni-plugins is Debian's real containernetworking-plugins (bridge, host-local, loopback, portmap);
- calico-manifest is tests/lab_real/calico-standin.yaml (real Calico cannot be had here);
- images: kube-* v1.35.0, etcd 3.6.4-0, pause 3.10.1 (real, built here), coredns and Calico's (stand-ins).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from tests.lab.bundle import (
    KUBE_PACKAGES,
    KUBE_RELEASE,
    PRESENT_ON_NODE,
    RPM_HOST,
    debian_containerd_version,
    present_rpm,
    replace_file_artifact,
)
from tests.lab.root import EL9_PRESENT_RPMS
from tests.lab_real import build, images
from tests.support.cluster_files import SUBNET, cluster_document
from tests.support.http_server import MirrorServer
from tests.support.node_bundle import node_release_manifest, reproducible_tarball
from tests.support.registry import Registry
from tests.support.rpm_repo import build_rpms, make_repo, serve_directory
from tests.support.signing import SigningKey

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TOP = f"k8s-bundle-{build.RELEASE}-rocky9-amd64"
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CNI_DIR = Path("/usr/lib/cni")
NODES = [
    {"name": "k8s-mn01", "ip": f"{SUBNET}.11", "role": "control-plane"},
    {"name": "k8s-mn02", "ip": f"{SUBNET}.22", "role": "control-plane"},
    {"name": "k8s-wn01", "ip": f"{SUBNET}.100", "role": "worker"},
]

# What the upstream kubelet RPM installs (kubernetes/release, packages/rpm/kubelet.service and
# 10-kubeadm.conf): kubeadm's flags file and /etc/sysconfig/kubelet feed the kubelet's command line.
KUBELET_SERVICE = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""
KUBEADM_DROPIN = (
    "# Note: This dropin only works with kubeadm and kubelet v1.11+\n"
    "[Service]\n"
    'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf'
    ' --kubeconfig=/etc/kubernetes/kubelet.conf"\n'
    'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"\n'
    "# kubeadm init and join write this file: KUBELET_KUBEADM_ARGS\n"
    "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
    "# the user's last-resort overrides: KUBELET_EXTRA_ARGS\n"
    "EnvironmentFile=-/etc/sysconfig/kubelet\n"
    "ExecStart=\n"
    "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS"
    " $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n"
)


def kube_rpm_spec(name: str, binary: Path, extra: Dict[str, Path]) -> str:
    files = {f"/usr/bin/{name}": binary, **extra}
    lines = [
        "%global debug_package %{nil}",
        "%global __os_install_post %{nil}",
        "%global _build_id_links none",
        "%define _binary_payload w1.gzdio",
        f"Name: {name}",
        f"Version: {build.RELEASE}",
        f"Release: {KUBE_RELEASE}",
        f"Summary: {name} {build.KUBE_VERSION} built from source for the lab",
        "License: ASL 2.0",
        "AutoReqProv: no",
    ]
    if name == "kubeadm":
        lines += [f"Requires: {r}" for r in ("kubelet", "kubectl", "cri-tools", "kubernetes-cni")]
    lines += ["%description", f"{name} built from source (tests/lab_real/build.py)", "%install"]
    for target, source in sorted(files.items()):
        mode = "755" if "/bin/" in target else "644"
        lines.append(f"install -D -m {mode} {source} %{{buildroot}}{target}")
    lines += ["%files", *sorted(files)]
    return "\n".join(lines) + "\n"


def build_kube_rpms(bin_dir: Path, work: Path) -> List[Path]:
    top = work / "rpmbuild"
    work.mkdir(parents=True, exist_ok=True)
    (work / "kubelet.service").write_text(KUBELET_SERVICE)
    (work / "10-kubeadm.conf").write_text(KUBEADM_DROPIN)
    built = []
    for name in KUBE_PACKAGES:
        extra: Dict[str, Path] = {}
        if name == "kubelet":
            extra = {
                "/usr/lib/systemd/system/kubelet.service": work / "kubelet.service",
                "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": work / "10-kubeadm.conf",
            }
        spec = work / f"{name}.spec"
        spec.write_text(kube_rpm_spec(name, bin_dir / name, extra))
        subprocess.run(
            ["rpmbuild", "-bb", "--target", "x86_64", "--define", f"_topdir {top}", str(spec)],
            check=True,
            capture_output=True,
        )
        built.append(top / "RPMS" / "x86_64" / f"{name}-{build.RELEASE}-{KUBE_RELEASE}.x86_64.rpm")
    return built


def cni_tarball() -> bytes:
    return reproducible_tarball([(f"./{name}", (CNI_DIR / name).read_bytes()) for name in CNI_PLUGINS])


def release_manifest(mirror: MirrorServer, work: Path, signer: SigningKey, bin_dir: Path) -> dict:
    kube = build_kube_rpms(bin_dir, work / "kube-build")
    base = build_rpms([present_rpm(name) for name in PRESENT_ON_NODE] + list(EL9_PRESENT_RPMS), work / "base-build")
    signer.sign_rpms([*kube, *base.values()])
    mirror.add(f"/{RPM_HOST}/key.asc", signer.public)
    key = {"gpgkey": f"https://{RPM_HOST}/key.asc", "gpgkey_sha256": hashlib.sha256(signer.public).hexdigest()}
    minor = ".".join(build.RELEASE.split(".")[:2])
    repositories = []
    for repo_id, where, rpms in (("kubernetes", f"kubernetes/v{minor}", kube), ("base", "base", list(base.values()))):
        folder = make_repo(work / "repos" / repo_id, rpms)
        signer.sign_detached(folder / "repodata" / "repomd.xml")
        serve_directory(mirror, f"/{RPM_HOST}/{where}", folder)
        repositories.append({"id": repo_id, "baseurl": f"https://{RPM_HOST}/{where}/", **key})
    manifest = node_release_manifest(mirror, {"kubernetes": build.RELEASE})
    replace_file_artifact(manifest, mirror, "cni-plugins", cni_tarball())
    from tests.lab.bundle import buildkit_standin

    replace_file_artifact(manifest, mirror, "buildkit", buildkit_standin())
    calico = (HERE / "calico-standin.yaml").read_bytes()
    for entry in manifest["files"]:
        if entry["name"] == "containerd":
            entry["version"] = debian_containerd_version()
        if entry["name"] == "calico-manifest":
            mirror.add("/" + entry["url"].split("://", 1)[1], calico)
            entry["sha256"] = hashlib.sha256(calico).hexdigest()
    manifest["rpm"] = {
        "rocky9": {
            "repositories": repositories,
            "packages": [f"{name} = {build.RELEASE}" for name in KUBE_PACKAGES] + list(PRESENT_ON_NODE[:-2]),
            "assumed_installed": [rpm.name for rpm in EL9_PRESENT_RPMS],
        }
    }
    manifest["images"] = sorted(name for name in images.image_names().values() if "calico" not in name)
    manifest["images_from_files"] = ["calico-manifest"]
    return manifest


def build_bundle(work: Path, registry_storage: Path, timings: Dict[str, float]) -> Tuple[Path, Path]:
    """(bundle tarball, site folder with cluster.yaml and its secrets)."""
    from k8s_install.cluster.secrets import generate_secrets, worker_secrets, write_secrets

    site = work / "site"
    site.mkdir(parents=True, exist_ok=True)
    document = cluster_document(NODES)
    document["kubernetes_version"] = build.RELEASE
    (site / "cluster.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    secrets = generate_secrets(document["name"])
    write_secrets(site / "cluster-secrets.yaml", secrets)
    write_secrets(site / "cluster-secrets-worker.yaml", worker_secrets(secrets))
    started = time.monotonic()
    mirror = MirrorServer().start()
    signer = SigningKey("k8s-lab-real")
    storage = work / "registry-storage"
    shutil.rmtree(storage, ignore_errors=True)
    shutil.copytree(registry_storage, storage)
    try:
        with Registry(storage, work / "registry") as registry:
            manifest = release_manifest(mirror, work, signer, build.cache_dir() / "bin")
            release = work / "release.yaml"
            release.write_text(yaml.safe_dump(manifest, sort_keys=False))
            shutil.copy2(release, build.cache_dir() / f"release-{build.RELEASE}.yaml")  # to read after the run
            result = subprocess.run(
                [sys.executable, "-m", "bundler", "build", "--manifest", str(release), "--mirror", mirror.url,
                 "--cache", str(work / "cache"), "--output", str(work / "out"), "--cluster", str(site / "cluster.yaml"),
                 "--insecure-registry", registry.host, "--allow-incomplete",
                 "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",
                 "--registry-mirror", f"docker.io=http://{registry.host}/dockerio"],
                capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
            )  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"bundler build failed: {result.stdout[-3000:]}{result.stderr[-3000:]}")
    finally:
        signer.close()
        mirror.stop()
    shutil.rmtree(work / "cache", ignore_errors=True)
    shutil.rmtree(storage, ignore_errors=True)
    timings["bundle build"] = time.monotonic() - started
    (tarball,) = (work / "out").glob("*.tar")
    return tarball, site
