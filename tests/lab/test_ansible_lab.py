"""The generated Ansible playbook (`bundler cluster ansible`) run live against three lab nodes of their own
(systemd as PID 1, the root's real sshd as ssh.service): ansible-core from PyPI on this machine, run in an
admin namespace on the lab's bridge, copies the bundle tarball, cluster.yaml and the secrets over SSH and
runs `k8s-install.pyz` on each node with no --root. The tests run in file order on these nodes: check mode
on new nodes, the install, a re-run that changes nothing, check mode showing a drift's plan, then a node
made to fail stopping the rollout. Then the upgrade playbook (k8s-upgrade.yml) carries the delta bundle of
the stand-in 1.29.15 (tests/lab/upgrade.py): check mode shows it, a node whose base is not the delta's stops
the rollout with the installer's error, then the three nodes are upgraded in kubeadm's order and a re-run
changes nothing. kubeadm, kubelet and kubectl are the lab's stand-ins.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, NamedTuple, Optional, Tuple

import pytest

from tests.conftest import REPO
from tests.lab.cluster import LAB_NODES, LAB_TOP, VIP
from tests.lab.conftest import TIMINGS
from tests.lab.node import NODE_PYTHON3, LabCluster, LabNode, installer_pythons, ran_under_python39
from tests.lab.ssh import lab_ssh, ssh_command
from tests.lab.standins import CALLS_LOG
from tests.lab.upgrade import INSTALLED_RELEASE, NEXT_RELEASE, next_release_site
from tests.support.ansible_output import recap, task_hosts
from tests.support.cluster_files import SEED_NODES, SUBNET, write_cluster
from tests.support.ssh_nodes import SshNodes, ansible_playbook

NODES = ("k8s-mn01", "k8s-mn02", "k8s-wn01")
CONTROL_PLANES = ("k8s-mn01", "k8s-mn02")
REMOTE_DIR = "/var/lib/k8s-bundle"  # the playbook's default
DEBIAN_OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
INSTALL_TASK = "Install (k8s-install.pyz --yes)"
# Its own nodes (the fleet fixture): under pytest-xdist it runs beside the other lab modules, in the other worker
pytestmark = pytest.mark.xdist_group("lab-ansible")


class Fleet(NamedTuple):
    nodes: LabCluster
    ssh: SshNodes
    ansible: Path  # inventory.yml and the playbook, as `bundler cluster ansible` wrote them

    def __getitem__(self, name: str) -> LabNode:
        return self.nodes.nodes[name]

    def play(
        self, *extra: str, ansible: Optional[Path] = None, playbook: str = "k8s-cluster.yml"
    ) -> Tuple[subprocess.CompletedProcess, float]:
        """Run `playbook` of the folder `ansible` (default: the install playbook written for the fleet)."""
        folder = ansible or self.ansible
        started = time.monotonic()
        incomplete = ("-e", '{"k8s_install_args": ["--allow-incomplete"]}')  # the lab bundle is a stand-in's
        result = self.ssh.run_playbook(folder / "inventory.yml", folder / playbook, *incomplete, *extra)
        seconds = time.monotonic() - started
        runs = len(list(self.ansible.parent.glob("playbook-*.log")))
        log = self.ansible.parent / f"playbook-{runs + 1}.log"  # kept with K8S_LAB_KEEP=1
        log.write_text(f"ansible-playbook {playbook} {' '.join(extra)}: exit {result.returncode}, {seconds:.1f} s\n"
                       f"{result.stdout}{result.stderr}")  # fmt: skip
        return result, seconds


@pytest.fixture(scope="module")
def fleet(
    lab_root_dir: Path,
    lab_bundle: Tuple[Path, Path],
    cluster_secrets,  # type: ignore[no-untyped-def]
) -> Iterator[Fleet]:
    """Three nodes booted for these tests only (the live-cluster tests keep theirs), sshd on each, and the
    playbook written for them; nothing copied onto the nodes yet."""
    if not ansible_playbook():
        reason = "ansible-core is not installed (pip install ansible-core)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    tarball, _site = lab_bundle
    work = Path(tempfile.mkdtemp(prefix="k8sans-", dir="/var/tmp"))  # short: see the `live` fixture
    nodes = LabCluster(lab_root_dir, work)
    ssh = None
    try:
        nodes.add_all(LAB_NODES)
        TIMINGS["ansible lab: boot 3 nodes"] = max(nodes.boot_seconds.values())  # at the same time
        ssh = lab_ssh(nodes, work / "ssh", f"{SUBNET}.5/24")
        by_name = {node["name"]: node for node in SEED_NODES}
        cluster_yaml = write_cluster(work / "site", cluster_secrets, [by_name[name] for name in NODES])
        written = subprocess.run(
            [sys.executable, "-m", "bundler", "cluster", "ansible", str(cluster_yaml), "--bundle", str(tarball),
             "--dir", str(work / "ansible"), "--node-python", NODE_PYTHON3],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert written.returncode == 0, written.stderr
        yield Fleet(nodes, ssh, work / "ansible")
    finally:
        if ssh is not None:
            ssh.close()
        nodes.close()
        if os.environ.get("K8S_LAB_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


def test_nodes_answer_over_ssh_with_pinned_host_keys_only(fleet: Fleet) -> None:
    for name in NODES:
        answer = ssh_command(fleet.ssh, fleet[name].address, "systemctl", "is-active", "ssh.service")
        assert answer.returncode == 0 and answer.stdout.strip() == "active", answer.stderr
    # a host key other than the pinned one is refused, not learnt
    known = fleet.ssh.known_hosts.read_text()
    mn01, mn02 = fleet["k8s-mn01"].address, fleet["k8s-mn02"].address
    swapped = known.replace(f"{mn01} ", "SWAP ").replace(f"{mn02} ", f"{mn01} ").replace("SWAP ", f"{mn02} ")
    fleet.ssh.known_hosts.write_text(swapped)
    try:
        refused = ssh_command(fleet.ssh, mn01, "true")
    finally:
        fleet.ssh.known_hosts.write_text(known)
    assert refused.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in refused.stderr, refused.stderr


def test_check_mode_on_new_nodes_reports_the_copy_and_changes_nothing(fleet: Fleet) -> None:
    result, _seconds = fleet.play("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("would be copied first") == 3
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(result.stdout).values())
    for name in NODES:
        assert not fleet[name].path(REMOTE_DIR).exists()
        assert not fleet[name].path("/var/log/k8s-install.log").exists()


def test_the_playbook_installs_the_three_nodes_live(fleet: Fleet) -> None:
    result, seconds = fleet.play()
    TIMINGS["ansible lab: install 3 nodes live"] = seconds
    assert result.returncode == 0, result.stdout + result.stderr
    assert task_hosts(result.stdout, INSTALL_TASK) == list(NODES)
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(result.stdout).values())
    for name in NODES:
        node = fleet[name]
        log = node.path("/var/log/k8s-install.log").read_text()
        assert "done:" in log and "skipped (offline root" not in log  # live: nothing only logged
        assert ran_under_python39(log), installer_pythons(log)  # the pyz and Ansible's modules: the node's 3.9
        wanted = ["containerd", "chronyd", "firewalld", "ssh"] + (["keepalived", "haproxy"] if "mn" in name else [])
        assert {unit: node.active(unit) for unit in wanted} == {unit: True for unit in wanted}
        assert node.run(["systemctl", "is-enabled", "kubelet"]).stdout.strip() == "enabled"
        secrets = "cluster-secrets-worker.yaml" if name == "k8s-wn01" else "cluster-secrets.yaml"
        other = "cluster-secrets.yaml" if name == "k8s-wn01" else "cluster-secrets-worker.yaml"
        assert os.stat(node.path(f"{REMOTE_DIR}/{secrets}")).st_mode & 0o777 == 0o600
        assert not node.path(f"{REMOTE_DIR}/{other}").exists()
    assert not fleet["k8s-wn01"].path("/etc/kubernetes/pki/ca.key").exists()
    calls = {name: fleet[name].path("/var/lib/k8s-lab/calls.jsonl").read_text() for name in NODES}
    init = '["kubeadm", "init", "--config", "/etc/k8s-install/kubeadm-init.yaml", "--upload-certs"]'
    assert init in calls["k8s-mn01"]
    for joining in ("k8s-mn02", "k8s-wn01"):
        assert '["kubeadm", "join", "--config", "/etc/k8s-install/kubeadm-join.yaml"]' in calls[joining]
    answer = fleet["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"], check=False)
    assert answer.stdout == "ok", answer.stdout + answer.stderr  # haproxy on the VIP holder answers


def test_a_rerun_changes_nothing(fleet: Fleet) -> None:
    result, seconds = fleet.play()
    TIMINGS["ansible lab: re-run (no changes)"] = seconds
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values()), result.stdout
    assert task_hosts(result.stdout, "Copy the bundle tarball") == []  # skipped: SHA256SUMS matches
    assert task_hosts(result.stdout, INSTALL_TASK) == list(NODES)


def test_check_mode_reports_a_drifted_nodes_plan_and_changes_nothing(fleet: Fleet) -> None:
    hosts_file = fleet["k8s-mn02"].path("/etc/hosts")
    installed = hosts_file.read_text()
    drifted = "127.0.0.1 localhost\n"
    hosts_file.write_text(drifted)  # someone edited the node by hand
    result, seconds = fleet.play("--check")
    TIMINGS["ansible lab: check mode (3 plans)"] = seconds
    assert result.returncode == 0, result.stdout + result.stderr
    plan = result.stdout.split("PLAY [Other control planes", 1)[1].split("PLAY [", 1)[0]
    assert "[hostname] hostname and /etc/hosts: 1 to change" in plan, plan
    assert re.search(r"plan: [1-9]\d* change\(s\) pending; nothing was changed", plan), plan
    counts = recap(result.stdout)
    assert counts["k8s-mn02"]["changed"] > 0 and counts["k8s-mn01"]["changed"] == 0, result.stdout
    assert hosts_file.read_text() == drifted
    hosts_file.write_text(installed)


def test_a_failed_node_stops_the_rollout_with_its_error(fleet: Fleet) -> None:
    os_release = fleet["k8s-mn02"].path("/etc/os-release")
    el9 = os_release.read_text()
    os_release.unlink()  # the root's may be a symbolic link into /usr/lib
    os_release.write_text(DEBIAN_OS_RELEASE)
    worker_log = fleet["k8s-wn01"].path("/var/log/k8s-install.log")
    worker_log_before = worker_log.read_text()
    try:
        result, _seconds = fleet.play()
    finally:
        os_release.write_text(el9)
    assert result.returncode != 0
    assert '"msg": "k8s-mn02: k8s-install.pyz: error: preflight failed (os)' in result.stdout, result.stdout
    assert "preflight os: this node runs Debian GNU/Linux 12 (bookworm) but the bundle is for" in result.stdout
    assert task_hosts(result.stdout, INSTALL_TASK) == ["k8s-mn01", "k8s-mn02"]
    assert "PLAY [Workers" not in result.stdout
    assert worker_log.read_text() == worker_log_before  # the worker's installer never ran


def test_a_live_failure_on_the_first_control_plane_stops_the_rollout_then_a_rerun_converges(fleet: Fleet) -> None:
    """A failure only a live run meets (systemctl refusing a masked unit) ends the run with the installer's
    error line before any other node starts; once fixed, the same playbook goes through every node."""
    first = fleet["k8s-mn01"]
    first.run(["systemctl", "mask", "containerd.service"])
    try:
        failed, _seconds = fleet.play()
    finally:
        first.run(["systemctl", "unmask", "containerd.service"])
    assert failed.returncode != 0
    message = re.search(r'^fatal: \[k8s-mn01\]: FAILED! => .*"msg": "(k8s-mn01: [^"]*)"', failed.stdout, re.MULTILINE)
    assert message and "containerd" in message.group(1) and "masked" in message.group(1), failed.stdout
    assert task_hosts(failed.stdout, INSTALL_TASK) == ["k8s-mn01"]
    assert "PLAY [Other control planes" not in failed.stdout and "PLAY [Workers" not in failed.stdout

    again, _seconds = fleet.play()
    assert again.returncode == 0, again.stdout + again.stderr
    assert task_hosts(again.stdout, INSTALL_TASK) == list(NODES)
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout
    assert first.active("containerd")


# --- the upgrade playbook with a delta bundle -------------------------------------------------------------

UPGRADE_TASK = "Upgrade (k8s-install.pyz upgrade --yes)"
COMPLETE_TASK = "Delta: complete it from its base (k8s-install.pyz verify --base)"
BASE_DIR = f"{REMOTE_DIR}/{LAB_TOP}"  # where the install playbook unpacked the lab bundle
NEW_DIR = f"{REMOTE_DIR}/{LAB_TOP.replace(INSTALLED_RELEASE, NEXT_RELEASE)}"


@pytest.fixture(scope="module")
def upgrade_ansible(fleet: Fleet, next_delta: Path) -> Path:
    """The playbooks `bundler cluster ansible` writes for the delta, cluster.yaml moved to its release."""
    site = next_release_site(fleet.ansible.parent / "site", fleet.ansible.parent / "site-next", NEXT_RELEASE)
    out = fleet.ansible.parent / "ansible-next"
    written = subprocess.run(
        [sys.executable, "-m", "bundler", "cluster", "ansible", str(site / "cluster.yaml"), "--bundle",
         str(next_delta), "--dir", str(out), "--node-python", NODE_PYTHON3],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    return out


def states(fleet: Fleet) -> Dict[str, str]:
    return {name: fleet[name].path("/var/lib/k8s-install/state.json").read_text() for name in NODES}


def calls_since(fleet: Fleet, offsets: Dict[str, int]) -> Dict[str, str]:
    return {name: fleet[name].path(CALLS_LOG).read_text()[offsets[name] :] for name in NODES}


def test_upgrade_check_mode_shows_the_delta_and_changes_nothing(fleet: Fleet, upgrade_ansible: Path) -> None:
    before = states(fleet)
    result, _seconds = fleet.play("--check", ansible=upgrade_ansible, playbook="k8s-upgrade.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    shown = f"it would be unpacked in {REMOTE_DIR} and completed with `k8s-install.pyz verify --base {BASE_DIR}`"
    assert result.stdout.count(shown) == 3, result.stdout
    assert result.stdout.count("would be copied first") == 3
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(result.stdout).values())
    for name in NODES:
        assert not fleet[name].path(NEW_DIR).exists() and not fleet[name].path(f"{NEW_DIR}.tar").exists()
    assert states(fleet) == before


def test_a_node_without_the_deltas_base_stops_the_rollout_with_the_installers_error(
    fleet: Fleet, upgrade_ansible: Path
) -> None:
    """k8s-mn02's base folder is not the bundle the delta was built over: check mode says so, and the live
    run stops with the installer's own error line before any node is upgraded."""
    sums = fleet["k8s-mn02"].path(f"{BASE_DIR}/SHA256SUMS")
    original = sums.read_bytes()
    sums.write_bytes(original + b"\n")  # another bundle's SHA256SUMS, as far as the delta can tell
    before = states(fleet)
    try:
        check, _seconds = fleet.play("--check", ansible=upgrade_ansible, playbook="k8s-upgrade.yml")
        failed, _seconds = fleet.play(ansible=upgrade_ansible, playbook="k8s-upgrade.yml")
    finally:
        sums.write_bytes(original)
    assert check.returncode != 0
    assert f'"msg": "k8s-mn02: {BASE_DIR} is not the base of this delta: it needs {LAB_TOP}' in check.stdout, (
        check.stdout
    )
    assert failed.returncode != 0
    error = (
        f'"msg": "k8s-mn02: k8s-install.pyz: error: --base {BASE_DIR} is not the base of this delta: it needs {LAB_TOP}'
    )
    assert error in failed.stdout, failed.stdout
    assert sorted(task_hosts(failed.stdout, COMPLETE_TASK)) == list(NODES)  # in parallel: the others completed
    assert "PLAY [First control plane]" not in failed.stdout and UPGRADE_TASK not in failed.stdout
    assert fleet["k8s-mn02"].path(f"{NEW_DIR}/DELTA.yaml").exists()  # still to be completed
    assert not fleet["k8s-mn01"].path(f"{NEW_DIR}/DELTA.yaml").exists()
    assert states(fleet) == before


def test_the_upgrade_playbook_carries_the_delta_and_upgrades_in_kubeadms_order(
    fleet: Fleet, upgrade_ansible: Path
) -> None:
    offsets = {name: len(fleet[name].path(CALLS_LOG).read_text()) for name in NODES}
    result, seconds = fleet.play(ansible=upgrade_ansible, playbook="k8s-upgrade.yml")
    TIMINGS["ansible lab: upgrade 3 nodes (delta)"] = seconds
    assert result.returncode == 0, result.stdout + result.stderr
    assert task_hosts(result.stdout, "Copy the bundle tarball") == []  # every node has the delta unpacked
    assert task_hosts(result.stdout, COMPLETE_TASK) == ["k8s-mn02"]  # only where the failed run left it
    assert task_hosts(result.stdout, UPGRADE_TASK) == list(NODES)
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(result.stdout).values())
    made = calls_since(fleet, offsets)
    assert f'["kubeadm", "upgrade", "apply", "v{NEXT_RELEASE}", "--yes"]' in made["k8s-mn01"]
    for name in ("k8s-mn02", "k8s-wn01"):
        assert '["kubeadm", "upgrade", "node"]' in made[name] and "apply" not in made[name]
    for name in NODES:
        node = fleet[name]
        packages = node.run(["rpm", "-q", "--qf", "%{VERSION}\n", "kubeadm", "kubelet", "kubectl"]).stdout.split()
        assert packages == [NEXT_RELEASE] * 3, name
        assert json.loads(states(fleet)[name])["kubernetes"] == NEXT_RELEASE
        assert not node.path(f"{NEW_DIR}/DELTA.yaml").exists() and node.path(f"{BASE_DIR}/SHA256SUMS").is_file()
        assert not node.path(f"{NEW_DIR}.tar").exists()


def test_the_upgrade_playbook_rerun_changes_nothing(fleet: Fleet, upgrade_ansible: Path) -> None:
    result, seconds = fleet.play(ansible=upgrade_ansible, playbook="k8s-upgrade.yml")
    TIMINGS["ansible lab: upgrade re-run (no changes)"] = seconds
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values()), result.stdout
    assert task_hosts(result.stdout, "Copy the bundle tarball") == []
    assert task_hosts(result.stdout, COMPLETE_TASK) == []
    assert task_hosts(result.stdout, UPGRADE_TASK) == list(NODES)
