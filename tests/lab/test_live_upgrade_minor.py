"""The next minor live on the lab nodes: 1.29.15 -> 1.30.14 with `k8s-install.pyz upgrade`, node by node in
kubeadm's order, from the delta of a stand-in 1.30.14 (tests/lab/upgrade.py: kube RPMs 1.30.14 from the 1.30
minor's own stand-in "kubernetes" repository, kubeadm's 1.30.14 images as the test busybox under their names)
built `--from` the 1.29.15 delta, unpacked beside the 1.29.15 folder and completed with `verify --base`.
kubeadm, kubelet and kubectl are the lab's stand-ins: the tests assert their exact calls and their order.

The runtime stays Debian's containerd 1.6 (a stand-in, tests/lab/standins.py): 1.30's line is containerd 2.x,
which cannot be obtained on this machine. The lab bundles label their containerd artifact with 1.6's own
version, so the installer keeps rendering the configuration 1.6 reads (version 2) and no runtime upgrade
happens here; the 2.x configuration is tested against the release manifests without the lab.

It runs after test_live_upgrade.py on the same session nodes (file order), which leaves them on 1.29.15;
alone, it installs 1.29.6 and upgrades them to 1.29.15 first. Skipping a minor (1.29.6 straight to a 1.31
bundle) is refused by the upgrade's preflight before anything changes: tested without the lab in
tests/k8s_install/test_upgrade.py (the skew rules, and the built pyz's one-line refusal).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.lab.cluster import BUNDLE_DIR, VIP, LiveCluster
from tests.lab.conftest import TIMINGS
from tests.lab.upgrade import (
    NEXT_MINOR_RELEASE,
    NEXT_RELEASE,
    assert_rerun_changes_nothing,
    release_dir,
    run_upgrade,
    unpack_delta,
    upgrade_with_calls,
)

NODES = ("k8s-mn01", "k8s-mn02", "k8s-wn01")
OLD_DIR = release_dir(NEXT_RELEASE)
NEW_DIR = release_dir(NEXT_MINOR_RELEASE)
ADMIN = ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"]
STATE = "/var/lib/k8s-install/state.json"


def on_release(cluster: LiveCluster, name: str, version: str) -> bool:
    path = cluster[name].path(STATE)
    state = json.loads(path.read_text()) if path.exists() else {}
    return state.get("kubernetes") == version and bool((state.get("upgrade") or {}).get("completed"))


def bring_to_next_release(cluster: LiveCluster, name: str, next_delta: Path) -> None:
    """Alone, this module starts from new nodes: install 1.29.6, complete the 1.29.15 delta, upgrade."""
    node = cluster[name]
    run = cluster.install(name)
    assert run.result.returncode == 0, f"{name}: {run.output}"
    if not node.path(OLD_DIR).exists():
        unpack_delta(node, next_delta)
    done = node.run(["./k8s-install.pyz", "verify", "--base", BUNDLE_DIR], cwd=OLD_DIR, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    upgraded = run_upgrade(cluster, name, NEXT_RELEASE)
    assert upgraded.result.returncode == 0, upgraded.output


@pytest.fixture(scope="module")
def cluster(live: LiveCluster, next_delta: Path, minor_delta: Path) -> LiveCluster:
    """The three nodes on 1.29.15, the 1.30.14 delta unpacked beside its folder on each (not yet completed)."""
    for name in NODES:
        if not on_release(live, name, NEXT_RELEASE):
            bring_to_next_release(live, name, next_delta)
    for node in live.nodes.nodes.values():
        unpack_delta(node, minor_delta)
    return live


def upgrade(cluster: LiveCluster, name: str) -> Tuple[List[List[str]], int]:
    return upgrade_with_calls(cluster, name, NEXT_MINOR_RELEASE, TIMINGS, f"live upgrade 1.30.14 {name}")


def test_the_minor_delta_completes_from_the_1_29_15_folder_only(cluster: LiveCluster) -> None:
    refused = cluster["k8s-mn01"].run(
        ["./k8s-install.pyz", "verify", "--base", BUNDLE_DIR], cwd=NEW_DIR, check=False, timeout=300
    )
    assert refused.returncode != 0
    assert f"--base {BUNDLE_DIR} is not the base of this delta: it needs {Path(OLD_DIR).name}" in refused.stderr
    for name in NODES:
        node = cluster[name]
        started = time.monotonic()
        done = node.run(["./k8s-install.pyz", "verify", "--base", OLD_DIR], cwd=NEW_DIR, check=False, timeout=300)
        TIMINGS[f"verify --base 1.30.14 {name}"] = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        assert not node.path(f"{NEW_DIR}/DELTA.yaml").exists()


def test_first_control_plane_runs_upgrade_apply_of_the_next_minor(cluster: LiveCluster) -> None:
    assert upgrade(cluster, "k8s-mn01") == (
        [
            [*ADMIN, "get", "--raw", "/readyz"],
            ["kubeadm", "upgrade", "plan", f"v{NEXT_MINOR_RELEASE}"],
            ["kubeadm", "upgrade", "apply", f"v{NEXT_MINOR_RELEASE}", "--yes"],
            [*ADMIN, "drain", "k8s-mn01", "--ignore-daemonsets", "--delete-emptydir-data"],
            [*ADMIN, "uncordon", "k8s-mn01"],
        ],
        1,  # the kubelet restarted once, on the new package
    )


def test_second_control_plane_runs_upgrade_node(cluster: LiveCluster) -> None:
    assert upgrade(cluster, "k8s-mn02") == (
        [
            [*ADMIN, "get", "--raw", "/readyz"],
            ["kubeadm", "upgrade", "node"],
            [*ADMIN, "drain", "k8s-mn02", "--ignore-daemonsets", "--delete-emptydir-data"],
            [*ADMIN, "uncordon", "k8s-mn02"],
        ],
        1,
    )


def test_worker_upgrades_once_the_control_plane_runs_the_next_minor(cluster: LiveCluster) -> None:
    answer = cluster["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/version"])
    assert json.loads(answer.stdout) == {"gitVersion": f"v{NEXT_MINOR_RELEASE}"}
    assert upgrade(cluster, "k8s-wn01") == (
        [
            ["kubectl", "--kubeconfig=/etc/kubernetes/kubelet.conf", "get", "--raw", "/version"],
            ["kubeadm", "upgrade", "node"],
        ],
        1,
    )


@pytest.mark.parametrize("name", NODES)
def test_every_node_runs_the_next_minor_on_the_same_runtime(cluster: LiveCluster, name: str) -> None:
    node = cluster[name]
    packages = node.run(["rpm", "-q", "--qf", "%{NAME} %{VERSION}\n", "kubeadm", "kubelet", "kubectl"]).stdout
    expected = [f"{package} {NEXT_MINOR_RELEASE}" for package in ("kubeadm", "kubelet", "kubectl")]
    assert packages.split("\n")[:3] == expected
    state = json.loads(node.path(STATE).read_text())
    assert state["kubernetes"] == NEXT_MINOR_RELEASE and state["upgrade"]["completed"] is True
    assert state["upgrade"]["from"] == NEXT_RELEASE
    listed = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
    assert f"registry.k8s.io/kube-apiserver:v{NEXT_MINOR_RELEASE}" in listed
    config = node.path("/etc/containerd/config.toml").read_text()
    assert "\nversion = 2\n" in config and "pinned_images" not in config  # what Debian's containerd 1.6 reads
    assert node.active("kubelet") and node.active("containerd")
    if name != "k8s-wn01":
        manifest = node.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
        assert f"registry.k8s.io/kube-apiserver:v{NEXT_MINOR_RELEASE}" in manifest


def test_a_rerun_changes_nothing_and_restarts_nothing(cluster: LiveCluster) -> None:
    assert_rerun_changes_nothing(cluster, NODES, NEXT_MINOR_RELEASE, TIMINGS, "upgrade 1.30.14 re-run")
