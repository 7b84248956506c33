"""The lab's next releases, as delta bundles of the lab bundle's shape: a stand-in 1.29.15 over the lab bundle
(1.29.6), and a stand-in 1.30.14 over that 1.29.15.

The real builder makes each the way tests/lab/bundle.py makes the lab bundle (kubeadm, kubelet and kubectl
RPMs of the release from that minor's stand-in "kubernetes" repository, the same runtime files), with kubeadm's
control-plane images of the release (the test busybox under their names in the loopback registry, which the
upgrade imports and its preflight requires) and cluster.yaml moved to the release; `--from` the older
bundle's tarball, so only the delta is written. A delta's tarball holds the complete SHA256SUMS of its
release, so it serves as `--from` for the next delta as well as the full bundle would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import yaml

from k8s_install.upgrade import kubeadm_images
from tests.lab.bundle import build_lab_bundle
from tests.lab.node import LabNode
from tests.support.registry import Registry

INSTALLED_RELEASE = "1.29.6"  # the lab bundle's
NEXT_RELEASE = "1.29.15"  # a patch release: the same minor
NEXT_MINOR_RELEASE = "1.30.14"  # the next minor: kubeadm upgrades one minor at a time


def next_release_site(site: Path, work: Path, version: str = NEXT_RELEASE) -> Path:
    """A copy of the lab's cluster.yaml (and its secrets) with kubernetes_version moved to `version`."""
    shutil.copytree(site, work)
    config = work / "cluster.yaml"
    document = yaml.safe_load(config.read_text())
    document["kubernetes_version"] = version
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return work


def make_delta(
    work: Path,
    image_storage: Path,
    site: Path,
    old: Path,
    timings: Dict[str, float],
    version: str = NEXT_RELEASE,
    old_version: str = INSTALLED_RELEASE,
) -> Path:
    """The delta tarball of the lab's release `version` over the bundle (or delta) tarball `old` of `old_version`."""
    new_site = next_release_site(site, work / "site", version)
    storage = work / "registry-storage"
    shutil.copytree(image_storage, storage)
    started = time.monotonic()
    with Registry(storage, work / "registry") as registry:
        for image in kubeadm_images(version):
            mirrored = image.replace("registry.k8s.io/", f"docker://{registry.host}/mirrored/")
            subprocess.run(
                ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                 f"docker://{registry.host}/test/busybox:1.0", mirrored],
                check=True, capture_output=True,
            )  # fmt: skip
        images: List[str] = [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9", *kubeadm_images(version)]
        config = new_site / "cluster.yaml"
        delta = build_lab_bundle(work / "build", config, images, registry, version, "--from", str(old))
    timings[f"delta build {old_version} -> {version}"] = time.monotonic() - started
    return delta


def unpack_delta(node: LabNode, delta: Path) -> None:
    """Copy the delta tarball into /root of `node` and unpack it there, beside the bundle folder(s) already there."""
    shutil.copy2(delta, node.path(f"/root/{delta.name}"))
    node.run(["tar", "-xf", delta.name])
    node.path(f"/root/{delta.name}").unlink()
