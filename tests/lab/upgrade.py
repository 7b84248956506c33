"""The next release for the lab's upgrade: a stand-in 1.29.15 of the lab bundle's shape, built as a delta over it.

The real builder makes it the way tests/lab/bundle.py makes the lab bundle (kubeadm, kubelet and kubectl
RPMs of 1.29.15, same runtime files), with kubeadm's control-plane images of the release (the test busybox
under their names in the loopback registry, which the upgrade imports and its preflight requires) and
cluster.yaml moved to the release; `--from` the lab bundle's tarball, so only the delta is written.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict

import yaml

from k8s_install.upgrade import kubeadm_images
from tests.lab.bundle import build_lab_bundle
from tests.support.registry import Registry

NEXT_RELEASE = "1.29.15"


def next_release_site(site: Path, work: Path, version: str = NEXT_RELEASE) -> Path:
    """A copy of the lab's cluster.yaml (and its secrets) with kubernetes_version moved to `version`."""
    shutil.copytree(site, work)
    config = work / "cluster.yaml"
    document = yaml.safe_load(config.read_text())
    document["kubernetes_version"] = version
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return work


def make_next_delta(work: Path, image_storage: Path, site: Path, old: Path, timings: Dict[str, float]) -> Path:
    """The delta tarball of the lab's next release over the bundle tarball `old`."""
    new_site = next_release_site(site, work / "site")
    storage = work / "registry-storage"
    shutil.copytree(image_storage, storage)
    started = time.monotonic()
    with Registry(storage, work / "registry") as registry:
        for image in kubeadm_images(NEXT_RELEASE):
            mirrored = image.replace("registry.k8s.io/", f"docker://{registry.host}/mirrored/")
            subprocess.run(
                ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                 f"docker://{registry.host}/test/busybox:1.0", mirrored],
                check=True, capture_output=True,
            )  # fmt: skip
        images = [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9", *kubeadm_images(NEXT_RELEASE)]
        delta = build_lab_bundle(
            work / "build", new_site / "cluster.yaml", images, registry, NEXT_RELEASE, "--from", str(old)
        )
    timings["delta build 1.29.6 -> 1.29.15"] = time.monotonic() - started
    return delta
