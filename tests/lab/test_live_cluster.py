"""The installer run live (no --root) on three lab nodes with systemd as PID 1: first control plane, second
control plane, worker, each from the bundle unpacked on the node. Checked with the node's own tools.

The tests run in file order on one session cluster: install, checks, a second run, VIP failover, reset,
then runs killed with SIGKILL at a few points and re-run. kubeadm, kubelet and kubectl are the lab's
stand-ins (tests/lab/standins.py); everything else is the real Debian 12 program.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Dict, List

import pytest

from k8s_install.steps.kernel import KERNEL_MODULES, SYSCTL_SETTINGS
from tests.lab.cluster import VIP, LiveCluster
from tests.lab.conftest import TIMINGS
from tests.lab.node import HOST_WIDE_SYSCTL_DIR, LabNode, installer_pythons, ran_under_python39
from tests.support.cluster_files import SUBNET
from tests.support.sandbox import ORIGINAL_CHRONY, ORIGINAL_FSTAB, ORIGINAL_HOSTS

CONTROL_PLANES = ("k8s-mn01", "k8s-mn02")
NODES = CONTROL_PLANES + ("k8s-wn01",)
IMAGES = ("127.0.0.1:", "registry.k8s.io/pause:3.9")  # the test busybox keeps its loopback registry's name


@pytest.fixture(scope="module")
def installed(live: LiveCluster) -> LiveCluster:
    """Each role installed once, in the order a user would: first control plane, second, worker."""
    for name in NODES:
        run = live.install(name)
        TIMINGS[f"live install {name}"] = run.seconds
        assert run.result.returncode == 0, f"{name}: {run.output}"
    return live


def test_every_role_converges_live_and_reports_what_it_did(installed: LiveCluster) -> None:
    for name in NODES:
        output = installed.runs[name][0].output
        assert "[containerd]" in output and "done:" in output, output
        log = installed[name].path("/var/log/k8s-install.log").read_text()
        assert "skipped (offline root" not in log  # a live run skips nothing
        assert ran_under_python39(log), installer_pythons(log)  # `./k8s-install.pyz` found EL9's python3, 3.9


@pytest.mark.parametrize("name", NODES)
def test_services_are_active_and_kubelet_enabled(installed: LiveCluster, name: str) -> None:
    node = installed[name]
    wanted = ["containerd", "chronyd", "firewalld"]
    if name in CONTROL_PLANES:
        wanted += ["keepalived", "haproxy"]
    assert {unit: node.active(unit) for unit in wanted} == {unit: True for unit in wanted}
    assert node.run(["systemctl", "is-enabled", "kubelet"]).stdout.strip() == "enabled"
    if name not in CONTROL_PLANES:
        assert not node.active("keepalived") and not node.active("haproxy")


@pytest.mark.parametrize("name", NODES)
def test_bundled_images_are_in_the_nodes_containerd(installed: LiveCluster, name: str) -> None:
    listed = installed[name].run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
    for image in IMAGES:
        assert any(ref.startswith(image) for ref in listed), listed


def test_the_vip_is_on_one_control_plane_and_answers(installed: LiveCluster) -> None:
    assert installed.wait_for_vip_holder(30) in CONTROL_PLANES
    answer = installed["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
    assert answer.stdout == "ok"  # haproxy on the holder, then a kube-apiserver (stand-in) behind it


@pytest.mark.parametrize("name", ["k8s-mn02", "k8s-wn01"])
def test_time_comes_from_the_first_control_plane(installed: LiveCluster, name: str) -> None:
    """chronyd runs with -x in the lab (serve and measure, never set the host's clock)."""
    node = installed[name]

    def selected() -> str:
        sources = node.run(["chronyc", "-n", "sources"]).stdout
        return next((line for line in sources.splitlines() if line.startswith("^*")), "")

    deadline = time.monotonic() + 90
    while not selected() and time.monotonic() < deadline:
        time.sleep(1)
    assert f" {SUBNET}.11 " in selected()


def probe(from_node: LabNode, address: str, port: int) -> str:
    """ "open" (a listener, or a refusal from the host itself) or "filtered" (firewalld rejects)."""
    code = f"import socket,sys\ns=socket.socket();s.settimeout(3)\nprint(s.connect_ex(('{address}',{port})))"
    result = from_node.run(["python3", "-c", code])
    number = int(result.stdout.strip())
    return "open" if number in (0, errno.ECONNREFUSED) else "filtered"


@pytest.mark.parametrize(
    "target,port,expected",
    [
        ("k8s-mn01", 6443, "open"),
        ("k8s-mn01", 2379, "open"),
        ("k8s-mn01", 10250, "open"),
        ("k8s-mn01", 8443, "open"),
        ("k8s-mn01", 9099, "filtered"),
        ("k8s-wn01", 10250, "open"),
        ("k8s-wn01", 30080, "open"),
        ("k8s-wn01", 6443, "filtered"),
        ("k8s-wn01", 2379, "filtered"),
    ],
)  # fmt: skip
def test_firewall_opens_the_roles_ports_and_nothing_else(
    installed: LiveCluster, target: str, port: int, expected: str
) -> None:
    source = installed["k8s-mn02"] if target == "k8s-wn01" else installed["k8s-wn01"]
    assert probe(source, installed[target].address, port) == expected


def test_modules_and_host_wide_sysctls_as_a_container_can_have_them(installed: LiveCluster) -> None:
    """This kernel cannot load modules and a container may not: the lab's modprobe stand-in records the
    ones the kernel lacks. Host-wide sysctl keys land in the node's own files bound over /proc/sys; the
    network keys are set for real in the node's network namespace, and the host's stay as they were."""
    node = installed["k8s-wn01"]
    modprobed = node.path("/var/lib/k8s-lab/modprobe.log").read_text().split()
    in_host_kernel = set(os.listdir("/sys/module"))
    assert {module for module in KERNEL_MODULES if module not in in_host_kernel} <= set(modprobed)
    assert "overlay" in in_host_kernel and "overlay" not in modprobed  # found, not loaded
    wanted = {key: value for key, value, _ in SYSCTL_SETTINGS}
    for stand_in in node.path(HOST_WIDE_SYSCTL_DIR).iterdir():
        assert stand_in.read_text().split() == wanted[stand_in.name].split(), stand_in.name
    assert node.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
    assert node.run(["cat", "/proc/sys/net/ipv4/tcp_keepalive_time"]).stdout.strip() == "600"
    assert Path("/proc/sys/vm/overcommit_memory").read_text().strip() != ""  # the host is not the node


def test_stand_ins_were_called_with_the_exact_commands(installed: LiveCluster) -> None:
    def calls(name: str) -> List[List[str]]:
        text = installed[name].path("/var/lib/k8s-lab/calls.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]

    assert ["kubeadm", "init", "--config", "/etc/k8s-install/kubeadm-init.yaml", "--upload-certs"] in calls("k8s-mn01")
    assert [
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "apply",
        "-f",
        "/etc/k8s-install/calico.yaml",
    ] in calls("k8s-mn01")
    for name in ("k8s-mn02", "k8s-wn01"):
        assert ["kubeadm", "join", "--config", "/etc/k8s-install/kubeadm-join.yaml"] in calls(name)


def test_second_run_changes_nothing_and_restarts_nothing(installed: LiveCluster) -> None:
    before = {name: installed.service_starts(name) for name in NODES}
    for name in NODES:
        run = installed.install(name)
        TIMINGS[f"second run {name}"] = run.seconds
        assert run.result.returncode == 0, run.output
        assert "done: 0 change(s) applied" in run.output, run.output
    assert {name: installed.service_starts(name) for name in NODES} == before


def test_join_info_and_status_run_live_on_the_first_control_plane(installed: LiveCluster) -> None:
    info = installed.install("k8s-mn01", "join-info")
    assert info.result.returncode == 0, info.output
    assert f"kubeadm join {VIP}:8443 --token" in info.output
    calls = installed["k8s-mn01"].path("/var/lib/k8s-lab/calls.jsonl").read_text()
    assert '["kubeadm", "token", "create"' in calls and '["kubeadm", "init", "phase", "upload-certs"' in calls
    status = installed.install("k8s-mn01", "status")
    assert status.result.returncode == 0, status.output
    assert "containerd" in status.output


def test_join_info_runs_live_on_a_control_plane_that_joined(installed: LiveCluster) -> None:
    """kubeadm-init.yaml exists only on the first control plane; the stand-in kubeadm, like the real one, fails
    on a --config it cannot read, and the upload's own config is gone again afterwards."""
    info = installed.install("k8s-mn02", "join-info")
    assert info.result.returncode == 0, info.output
    node = installed["k8s-mn02"]
    last = node.path("/var/lib/k8s-lab/calls.jsonl").read_text().splitlines()[-1]
    config = "/etc/k8s-install/kubeadm-upload-certs.yaml"
    assert last == f'["kubeadm", "init", "phase", "upload-certs", "--upload-certs", "--config", "{config}"]'
    assert not node.path(config).exists()


@pytest.mark.parametrize("service", ["keepalived", "haproxy"])
def test_vip_moves_when_the_holders_service_stops(installed: LiveCluster, service: str) -> None:
    holder = installed.wait_for_vip_holder(60)
    started = time.monotonic()
    installed[holder].run(["systemctl", "stop", service])
    try:
        moved_to = installed.wait_for_vip_holder(60, not_on=holder)
        TIMINGS[f"VIP failover, {service} stopped"] = time.monotonic() - started
        answer = installed["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
        assert moved_to != holder and answer.stdout == "ok"
    finally:
        installed[holder].run(["systemctl", "start", service])
    installed.wait_for_vip_holder(60)


def test_reset_stops_and_disables_what_it_started_and_restores_files(installed: LiveCluster) -> None:
    node = installed["k8s-wn01"]
    run = installed.install("k8s-wn01", "reset")
    assert run.result.returncode == 0, run.output
    for unit in ("containerd", "buildkitd"):
        assert not node.active(unit), unit
        assert node.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() != "enabled"
    assert not node.active("kubelet")  # kubeadm reset stops it
    assert node.path("/etc/chrony.conf").read_text() == ORIGINAL_CHRONY
    assert node.path("/etc/hosts").read_text() == ORIGINAL_HOSTS
    assert node.path("/etc/fstab").read_text() == ORIGINAL_FSTAB
    assert "SELINUX=enforcing" in node.path("/etc/selinux/config").read_text()
    assert not node.path("/usr/local/bin/containerd").exists()
    assert node.run(["rpm", "-q", "kubelet"], check=False).returncode != 0
    assert node.active("firewalld") and node.active("chronyd")  # there before the installer: left running


# just before dnf; while the runtime binaries are written; after containerd's unit changed and before its
# restart (the pending restart is in the state file: the next run must do it)
KILL_POINTS = ("[packages]", "[runtime-binaries]", "[runtime-services]")


@pytest.mark.parametrize("marker", KILL_POINTS)
def test_run_killed_with_sigkill_converges_when_run_again(installed: LiveCluster, marker: str, tmp_path: Path) -> None:
    """From a reset node, a run is killed when it reaches `marker` (in its log, just before that step's first
    change), then the same command is run again: it must finish, and a third run must find nothing to do."""
    node = installed["k8s-wn01"]
    reset = installed.install("k8s-wn01", "reset")
    assert reset.result.returncode == 0, reset.output
    log = node.path("/var/log/k8s-install.log")
    offset = log.stat().st_size if log.exists() else 0
    unit = f"k8s-lab-killed-{KILL_POINTS.index(marker)}"
    launcher = installed.start_install("k8s-wn01", tmp_path / "killed.log", unit)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and launcher.poll() is None:
            text = log.read_text(errors="replace")[offset:] if log.exists() else ""
            if marker in text:
                installed.kill_install("k8s-wn01", unit)
                break
            time.sleep(0.05)
        assert launcher.wait(timeout=60) != 0  # killed: the run did not finish
    finally:
        if launcher.poll() is None:
            launcher.kill()
    again = installed.install("k8s-wn01")
    assert again.result.returncode == 0, again.output
    final = installed.install("k8s-wn01")
    assert "done: 0 change(s) applied" in final.output, final.output
    for unit in ("containerd", "chronyd", "firewalld"):
        assert node.active(unit), unit
    listed = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout
    assert "registry.k8s.io/pause:3.9" in listed


def test_reset_of_a_control_plane_stops_its_vip_services_and_the_vip_stays_up(installed: LiveCluster) -> None:
    node = installed["k8s-mn02"]
    run = installed.install("k8s-mn02", "reset")
    assert run.result.returncode == 0, run.output
    for unit in ("keepalived", "haproxy", "containerd"):
        assert not node.active(unit), unit
        assert node.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() != "enabled", unit
    debian_original = installed.nodes.root / "etc/haproxy/haproxy.cfg"
    assert node.path("/etc/haproxy/haproxy.cfg").read_bytes() == debian_original.read_bytes()
    assert not node.path("/etc/keepalived/keepalived.conf").exists()
    assert installed.wait_for_vip_holder(30) == "k8s-mn01"
    answer = installed["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
    assert answer.stdout == "ok"


def test_figures(installed: LiveCluster) -> None:
    """Not an assertion on time: records the run's figures for the summary (and make bench)."""
    figures: Dict[str, float] = {k: round(v, 1) for k, v in TIMINGS.items()}
    print(json.dumps(figures, indent=1))
    assert figures
