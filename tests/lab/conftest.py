"""Session fixtures of the lab: the cached root, the bundle, and three booted nodes on one bridge.

Building is once per test run (the root once per machine); the figures (root build, boot, installs) are
written to the session's `lab-timings.json` and printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

from tests.lab.bundle import build_lab_bundle
from tests.lab.cluster import LiveCluster
from tests.lab.node import LabCluster
from tests.lab.root import lab_root
from tests.support.cluster_files import SUBNET, write_cluster
from tests.support.registry import Registry

TOOLS = ("systemd-nspawn", "debootstrap", "nsenter", "ip", "rpmbuild", "createrepo_c", "gpg", "rpmsign")
TIMINGS: Dict[str, float] = {}


def lab_prerequisites() -> str:
    """Why the lab cannot run here, or "" when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (mounts, network namespaces, systemd-nspawn)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the lab needs {', '.join(missing)} (apt-get install systemd-container debootstrap; see .ci/run)"
    return ""


def require_lab() -> None:
    reason = lab_prerequisites()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_root_dir() -> Path:
    require_lab()
    return lab_root(TIMINGS)


@pytest.fixture(scope="session")
def lab_bundle(pushed_images, cluster_secrets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    require_lab()
    work = tmp_path_factory.mktemp("lab-bundle")
    site = work / "site"
    write_cluster(site, cluster_secrets)
    storage = work / "registry-storage"
    shutil.copytree(pushed_images.storage, storage)
    started = time.monotonic()
    with Registry(storage, work / "registry") as registry:
        tarball = build_lab_bundle(
            work / "build", site / "cluster.yaml", [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9"],
            registry,
        )  # fmt: skip
    TIMINGS["bundle build"] = time.monotonic() - started
    yield tarball


@pytest.fixture(scope="session")
def live(lab_root_dir: Path, lab_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """Three booted nodes (k8s-mn01, k8s-mn02, k8s-wn01) with the bundle unpacked, nothing installed yet."""
    # a short folder: containerd's socket path inside must stay short, and overlay options are long
    work = Path(tempfile.mkdtemp(prefix="k8slab-", dir="/var/tmp"))
    nodes = LabCluster(lab_root_dir, work)
    site = lab_bundle.parents[2] / "site"
    try:
        for name, ip in (("k8s-mn01", ".11"), ("k8s-mn02", ".22"), ("k8s-wn01", ".100")):
            nodes.add(name, f"{SUBNET}{ip}/24")
            TIMINGS[f"boot {name}"] = nodes.boot_seconds[name]
        cluster = LiveCluster(nodes, lab_bundle, site)
        cluster.unpack_everywhere()
        yield cluster
    finally:
        nodes.close()
        if os.environ.get("K8S_LAB_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        write_timings(tmp_path_factory.getbasetemp() / "lab-timings.json")


def write_timings(path: Path) -> None:
    path.write_text(json.dumps(TIMINGS, indent=1))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if TIMINGS:
        terminalreporter.write_sep("-", "lab figures (seconds)")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what:40s} {seconds:7.1f}")
