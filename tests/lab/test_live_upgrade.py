"""`k8s-install.pyz upgrade` live on the lab nodes: 1.29.6 installed on the three nodes, the next release's
delta bundle (tests/lab/upgrade.py) unpacked beside the old bundle folder and completed with `verify --base`,
then each node upgraded in turn (first control plane, second control plane killed with SIGKILL half-way and
run again, worker), a re-run changing nothing. kubeadm, kubelet and kubectl are the lab's stand-ins: the
tests assert their exact calls and their order (tests/lab/standins.py records them).

It runs after test_live_cluster.py on the same session nodes (file order), so it first converges each node
to the 1.29.6 install again (that file ends with resets); alone, it installs them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.lab.cluster import BUNDLE_DIR, ROLES, VIP, LiveCluster, Run
from tests.lab.conftest import TIMINGS
from tests.lab.node import installer_pythons, ran_under_python39
from tests.lab.upgrade import (
    NEXT_RELEASE,
    assert_rerun_changes_nothing,
    calls,
    commands_and_kubelet_starts,
    release_dir,
    run_upgrade,
    unpack_delta,
)
from tests.lab.upgrade import upgrade_with_calls as upgrade_to

NODES = ("k8s-mn01", "k8s-mn02", "k8s-wn01")
NEW_DIR = release_dir(NEXT_RELEASE)
ADMIN = ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"]
KILL_AT = "[packages]"  # on the second control plane: after `kubeadm upgrade node` and the drain


@pytest.fixture(scope="module")
def cluster(live: LiveCluster, next_delta: Path) -> LiveCluster:
    """The three nodes on 1.29.6, the delta unpacked beside the old bundle folder on each (not yet completed)."""
    for name in NODES:
        run = live.install(name)
        assert run.result.returncode == 0, f"{name}: {run.output}"
    for node in live.nodes.nodes.values():
        unpack_delta(node, next_delta)
    return live


def upgrade(cluster: LiveCluster, name: str) -> Run:
    return run_upgrade(cluster, name, NEXT_RELEASE)


def upgrade_with_calls(cluster: LiveCluster, name: str) -> Tuple[List[List[str]], int]:
    return upgrade_to(cluster, name, NEXT_RELEASE, TIMINGS, f"live upgrade {name}")


def test_the_delta_completes_beside_the_old_bundle_on_every_node(cluster: LiveCluster) -> None:
    for name in NODES:
        node = cluster[name]
        old_sums = node.path(f"{BUNDLE_DIR}/SHA256SUMS").read_bytes()
        refused = node.run(["./k8s-install.pyz", "verify"], cwd=NEW_DIR, check=False, timeout=300)
        assert refused.returncode != 0 and "--base" in refused.stdout + refused.stderr, refused.stderr
        started = time.monotonic()
        done = node.run(["./k8s-install.pyz", "verify", "--base", BUNDLE_DIR], cwd=NEW_DIR, check=False, timeout=300)
        TIMINGS[f"verify --base {name}"] = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        assert not node.path(f"{NEW_DIR}/DELTA.yaml").exists()
        assert node.path(f"{BUNDLE_DIR}/SHA256SUMS").read_bytes() == old_sums  # the old bundle is untouched
        again = node.run(["./k8s-install.pyz", "verify"], cwd=NEW_DIR, check=False, timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr


def test_first_control_plane_runs_upgrade_apply_in_kubeadms_order(cluster: LiveCluster) -> None:
    assert upgrade_with_calls(cluster, "k8s-mn01") == (
        [
            [*ADMIN, "get", "--raw", "/readyz"],
            ["kubeadm", "upgrade", "plan", f"v{NEXT_RELEASE}"],
            ["kubeadm", "upgrade", "apply", f"v{NEXT_RELEASE}", "--yes"],
            [*ADMIN, "drain", "k8s-mn01", "--ignore-daemonsets", "--delete-emptydir-data"],
            [*ADMIN, "uncordon", "k8s-mn01"],
        ],
        1,  # the kubelet restarted once, on the new package
    )


def test_second_control_plane_killed_half_way_converges(cluster: LiveCluster, tmp_path: Path) -> None:
    """Killed with SIGKILL when its log reaches the package step (after `kubeadm upgrade node` and the
    drain), then run again: the re-run goes on from there and runs no kubeadm command twice."""
    name, node = "k8s-mn02", cluster["k8s-mn02"]
    before = len(calls(cluster, name))
    log = node.path("/var/log/k8s-install.log")
    offset = log.stat().st_size
    unit = "k8s-lab-upgrade-killed"
    argv = ["./k8s-install.pyz", "upgrade", *ROLES[name], "--allow-incomplete", "--yes"]
    launcher = node.popen(argv, tmp_path / "killed.log", cwd=NEW_DIR, unit=unit)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and launcher.poll() is None:
            if KILL_AT in log.read_text(errors="replace")[offset:]:
                cluster.kill_install(name, unit)
                break
            time.sleep(0.05)
        assert launcher.wait(timeout=60) != 0, (tmp_path / "killed.log").read_text()  # killed: not finished
    finally:
        if launcher.poll() is None:
            launcher.kill()
    killed = calls(cluster, name)[before:]
    assert commands_and_kubelet_starts(killed) == (
        [
            [*ADMIN, "get", "--raw", "/readyz"],
            ["kubeadm", "upgrade", "node"],
            [*ADMIN, "drain", name, "--ignore-daemonsets", "--delete-emptydir-data"],
        ],
        0,
    )
    assert upgrade_with_calls(cluster, name) == ([[*ADMIN, "get", "--raw", "/readyz"], [*ADMIN, "uncordon", name]], 1)


def test_worker_upgrades_once_the_control_plane_runs_the_release(cluster: LiveCluster) -> None:
    answer = cluster["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/version"])
    assert json.loads(answer.stdout) == {"gitVersion": f"v{NEXT_RELEASE}"}  # both API servers, behind the VIP
    assert upgrade_with_calls(cluster, "k8s-wn01") == (
        [
            ["kubectl", "--kubeconfig=/etc/kubernetes/kubelet.conf", "get", "--raw", "/version"],
            ["kubeadm", "upgrade", "node"],
        ],
        1,
    )  # drain and uncordon are shown for a control plane: a worker has no admin kubeconfig


@pytest.mark.parametrize("name", NODES)
def test_every_node_runs_the_new_release(cluster: LiveCluster, name: str) -> None:
    node = cluster[name]
    packages = node.run(["rpm", "-q", "--qf", "%{NAME} %{VERSION}\n", "kubeadm", "kubelet", "kubectl"]).stdout
    assert packages.split("\n")[:3] == [f"{package} {NEXT_RELEASE}" for package in ("kubeadm", "kubelet", "kubectl")]
    state = json.loads(node.path("/var/lib/k8s-install/state.json").read_text())
    assert state["kubernetes"] == NEXT_RELEASE and state["upgrade"]["completed"] is True
    log = node.path("/var/log/k8s-install.log").read_text()
    assert ran_under_python39(log), installer_pythons(log)  # the installs and the upgrades: the node's 3.9
    listed = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
    assert f"registry.k8s.io/kube-apiserver:v{NEXT_RELEASE}" in listed
    status = node.run(["systemctl", "status", "--no-pager", "-n", "20", "kubelet"], check=False).stdout
    assert node.active("kubelet") and node.active("containerd"), status
    if name != "k8s-wn01":
        manifest = node.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
        assert f"registry.k8s.io/kube-apiserver:v{NEXT_RELEASE}" in manifest


def test_a_rerun_changes_nothing_and_restarts_nothing(cluster: LiveCluster) -> None:
    assert_rerun_changes_nothing(cluster, NODES, NEXT_RELEASE, TIMINGS, "upgrade re-run")
