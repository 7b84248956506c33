"""Session fixtures of the lab: the cached root, the bundle, and three booted nodes on one bridge.

Building is once per test run (the root once per machine), the next releases' deltas too (tests/lab/upgrade.py,
shared by the playbook's and the installer's upgrade tests); the figures (root build, boot, installs, delta
builds, upgrades) are written to the session's `lab-timings.json` and printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.conftest import LAB_FIGURES
from tests.lab.bundle import make_lab_bundle
from tests.lab.cluster import LiveCluster, booted_lab
from tests.lab.node import python39_program
from tests.lab.root import lab_root
from tests.lab.upgrade import NEXT_MINOR_RELEASE, NEXT_RELEASE, make_delta
from tests.support.cluster_files import write_cluster
from tests.support.session_cache import shared_tarball

TOOLS = ("systemd-nspawn", "mmdebstrap", "nsenter", "ip", "rpmbuild", "createrepo_c", "gpg", "rpmsign")
TIMINGS: Dict[str, float] = {}


def lab_prerequisites() -> str:
    """Why the lab cannot run here, or "" when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (mounts, network namespaces, systemd-nspawn)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the lab needs {', '.join(missing)} (apt-get install systemd-container mmdebstrap; see .ci/run)"
    if python39_program() is None:
        return (
            "the lab runs the installer with Python 3.9 as EL9 nodes do: install 3.9 with pyenv, or set "
            "PYTHON39 to a 3.9 installed in a folder of its own (not the system's /usr)"
        )
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
def lab_bundle(pushed_images, cluster_secrets, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """(bundle tarball, folder of cluster.yaml and its secrets). The tarball is built once for the run, by the
    first pytest-xdist worker that asks, and each worker gets a copy: the test images it is made from are the
    same in every worker (buildah commits them with --timestamp 0), its cluster.yaml is the same, and it holds
    no secrets. The site beside it is this worker's (its own cluster secrets)."""
    require_lab()
    work = tmp_path_factory.mktemp("lab-bundle")
    site = work / "site"
    write_cluster(site, cluster_secrets)
    tarball = shared_tarball(
        ("lab bundle", "1.29.6"), work / "build",
        lambda folder: make_lab_bundle(folder, pushed_images.storage, cluster_secrets, TIMINGS)[0],
    )  # fmt: skip
    return tarball, site


@pytest.fixture(scope="session")
def next_delta(lab_bundle, pushed_images, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The delta tarball of the stand-in 1.29.15 over the lab bundle (1.29.6), built once for the run as the
    bundle is (over the same shared tarball), each worker's a copy."""
    tarball, site = lab_bundle
    work = tmp_path_factory.mktemp("lab-delta")
    return shared_tarball(
        ("lab delta", NEXT_RELEASE), work,
        lambda folder: make_delta(folder, pushed_images.storage, site, tarball, TIMINGS, NEXT_RELEASE),
    )  # fmt: skip


@pytest.fixture(scope="session")
def minor_delta(lab_bundle, next_delta: Path, pushed_images, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The delta tarball of the stand-in 1.30.14 over the 1.29.15 one (`--from` its delta tarball, whose
    SHA256SUMS is the complete 1.29.15 bundle's)."""
    _tarball, site = lab_bundle
    work = tmp_path_factory.mktemp("lab-delta-minor")
    return shared_tarball(
        ("lab delta", NEXT_MINOR_RELEASE), work,
        lambda folder: make_delta(folder, pushed_images.storage, site, next_delta, TIMINGS, NEXT_MINOR_RELEASE,
                                  NEXT_RELEASE),
    )  # fmt: skip


@pytest.fixture(scope="session")
def live(
    lab_root_dir: Path, lab_bundle: Tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveCluster]:
    """Three booted nodes (k8s-mn01, k8s-mn02, k8s-wn01) with the bundle unpacked, nothing installed yet."""
    try:
        with booted_lab(lab_root_dir, *lab_bundle, "k8slab-", TIMINGS) as cluster:
            yield cluster
    finally:
        write_timings(tmp_path_factory.getbasetemp() / "lab-timings.json")


def write_timings(path: Path) -> None:
    path.write_text(json.dumps(TIMINGS, indent=1))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """The figures so far travel with each lab test's teardown report: tests/conftest.py prints them at the end,
    also when the lab ran in a pytest-xdist worker."""
    outcome = yield
    if call.when == "teardown" and TIMINGS:
        outcome.get_result().user_properties.append((LAB_FIGURES, dict(TIMINGS)))
