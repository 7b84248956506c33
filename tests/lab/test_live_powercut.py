"""Power cuts and a network partition on live lab nodes (issue 24, the lab's part).

Power cut (tests/lab/powercut.py): every process of the worker node SIGKILLed at once at each boundary of a
`reset` and of an `install` in turn (a chain: cut, boot, run again, cut at the next boundary), then booted
again. After each boot: the installer's state reads, every file it manages is as before the command or as
after it (never empty, torn or in between), the services run where they are enabled and only there, and the
operator's edits are still there (a containerd drop-in of the site's, a line added to the managed
chrony.conf, which reset keeps). After the chain the command finishes, a re-run changes nothing, and the
files and services are those of an uninterrupted run. One uninterrupted install runs under strace: every
file it manages, its kept copies and its state are written to a temporary name in the same folder,
fsynced, renamed, and the folder fsynced (a container kill keeps the page cache, so that is proven here).

Network partition: the link between the joining second control plane and the VIP dropped during its
install (a route in the node's own network namespace to an address nobody has, so its packets to the VIP
vanish): the installer waits, saying which endpoint it waits for, the first control plane keeps serving the
VIP untouched; healed, the same run finishes and a re-run changes nothing. kubeadm is the lab's stand-in:
what is exercised is the installer's own API probe through the VIP (TLS, the cluster CA) and the stand-in
join's download of the certificates from the VIP; not a real kubeadm's etcd join or TLS bootstrap.

Runs after test_live_cluster.py on the session nodes (file order) and leaves them installed; alone, it
installs what it needs.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from tests.lab.cluster import VIP, LiveCluster
from tests.lab.conftest import TIMINGS
from tests.lab.node import LabNode
from tests.lab.powercut import (
    STATE,
    AfterBoot,
    Cut,
    Snapshot,
    WriteTrace,
    check_after_boot,
    cut_at_each_boundary,
    managed_paths,
    reset_boundaries,
    snapshot,
    step_boundaries,
    traced_run,
    unit_states,
)
from tests.support.cluster_files import SUBNET
from tests.support.faults import half_applied_files, report_fault
from tests.support.prerequisites import require

WORKER = "k8s-wn01"
UNITS = ("containerd", "buildkitd", "chronyd", "firewalld")
SITE_DROP_IN = "/etc/systemd/system/containerd.service.d/90-site.conf"
SITE_DROP_IN_TEXT = b"[Service]\nEnvironment=SITE_NOTE=kept-across-power-cuts\n"
CHRONY = "/etc/chrony.conf"
CHRONY_NOTE = b"# site: checked by the operator before the cut\n"
BACKUPS = "/var/lib/k8s-install/backups"


def edits_lost(node: LabNode) -> List[str]:
    """The operator's edits not found: the drop-in, and the chrony.conf note (in the file, or in the copy the
    installer keeps of a hand-edited file it replaces)."""
    lost = []
    drop_in = node.path(SITE_DROP_IN)
    if not drop_in.is_file() or drop_in.read_bytes() != SITE_DROP_IN_TEXT:
        lost.append(SITE_DROP_IN)
    homes = [node.path(CHRONY), node.path(f"{BACKUPS}{CHRONY}.edited"), node.path(f"{BACKUPS}{CHRONY}.orig")]
    if not any(home.is_file() and CHRONY_NOTE in home.read_bytes() for home in homes):
        lost.append(CHRONY)
    return lost


@pytest.fixture(scope="module")
def worker(live: LiveCluster, tmp_path_factory: pytest.TempPathFactory) -> Tuple[LiveCluster, Path]:
    """The first control plane installed (the worker joins through the VIP); the worker installed once."""
    for name in ("k8s-mn01", WORKER):
        run = live.install(name)
        assert run.result.returncode == 0, f"{name}: {run.output}"
    return live, tmp_path_factory.mktemp("powercut")


REFERENCE: Dict[str, object] = {}  # what the uninterrupted reset and install left, for the chains to compare


def report_cuts(record_property: Callable[[str, object], None], command: str, cuts: List[Cut]) -> List[str]:
    """One FAULT line per cut; returns what went wrong, cut by cut."""
    wrong = []
    for cut in cuts:
        after: AfterBoot = cut.after
        survived = not (after.torn or after.edits_lost or after.services)
        report_fault(record_property, f"power cut, {command} {cut.boundary}", survived, len(after.edits_lost),
                     len(after.torn))  # fmt: skip
        if not survived:
            wrong.append(f"{cut.boundary}: {after}")
    return wrong


def test_an_uninterrupted_install_writes_every_file_durably(worker: Tuple[LiveCluster, Path]) -> None:
    """From a reset node, one install under strace: each file the installer manages, each copy it keeps and its
    state are written to a temporary in the same folder, fsynced, renamed over the file, the folder fsynced;
    none is ever opened for writing in place. The reset and install also give the chains their reference."""
    require("strace")
    cluster, work = worker
    node = cluster[WORKER]
    paths = managed_paths(node)
    reset = cluster.install(WORKER, "reset")
    assert reset.result.returncode == 0, reset.output
    REFERENCE["before"] = snapshot(node, paths)
    trace = work / "install.strace"
    started = time.monotonic()
    run = traced_run(node, cluster.installer(WORKER), trace)
    TIMINGS["install under strace k8s-wn01"] = time.monotonic() - started
    assert run.returncode == 0, run.stdout + run.stderr
    assert managed_paths(node) == paths  # the same files as the install before
    REFERENCE["after"] = snapshot(node, paths)
    REFERENCE["units"] = unit_states(node, UNITS)
    records = json.loads(node.path(STATE).read_text())["files"]
    kept = [f"/var/lib/k8s-install/backups{path}.ours" for path, record in records.items() if record.get("backup")]
    kept += [record["backup"] for record in records.values() if record.get("backup")]
    written = sorted(path for path in paths if not path.endswith("/")) + kept + [STATE]
    read = WriteTrace.read(trace)
    problems = {path: read.problems(path) for path in written}
    assert {path: found for path, found in problems.items() if found} == {}
    assert len(written) > 30, written


def test_power_cut_at_each_boundary_of_a_reset(
    worker: Tuple[LiveCluster, Path], record_property: Callable[[str, object], None]
) -> None:
    """Installed node, the operator's drop-in and chrony.conf note in place, then reset cut at each boundary:
    every file is the installed one or the original, the note is kept, and the reset finishes."""
    cluster, work = worker
    node = cluster[WORKER]
    before, after = REFERENCE["before"], REFERENCE["after"]
    assert isinstance(before, dict) and isinstance(after, dict), "needs the reference runs"
    drop_in = node.path(SITE_DROP_IN)
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_bytes(SITE_DROP_IN_TEXT)
    node.run(["systemctl", "daemon-reload"])
    chrony = node.path(CHRONY)
    chrony.write_bytes(chrony.read_bytes() + CHRONY_NOTE)
    old: Snapshot = snapshot(node, after)
    new: Snapshot = {**before, CHRONY: (before[CHRONY] or b"") + CHRONY_NOTE}
    started = time.monotonic()
    cuts, finished = cut_at_each_boundary(
        cluster, WORKER, cluster.installer(WORKER, "reset"), reset_boundaries,
        lambda: check_after_boot(node, old, new, edits_lost, UNITS), work,
    )  # fmt: skip
    TIMINGS[f"power cuts, reset ({len(cuts)})"] = time.monotonic() - started
    wrong = report_cuts(record_property, "reset", cuts)
    assert len(cuts) >= 4, [cut.boundary for cut in cuts]
    assert finished.returncode == 0, finished.stdout
    assert snapshot(node, new) == new
    assert not node.path(STATE).exists()
    states = unit_states(node, UNITS)
    assert states["containerd"][1] != "active" and states["chronyd"] == ("enabled", "active"), states
    assert wrong == []


def test_power_cut_at_each_step_of_an_install(
    worker: Tuple[LiveCluster, Path], record_property: Callable[[str, object], None]
) -> None:
    """From the reset node (the operator's edits in place), install cut at the start of each step that changes
    something: every file is as before or as installed; the chain ends in the uninterrupted install's files
    and services, a re-run changes nothing, and containerd runs with the site's drop-in."""
    cluster, work = worker
    node = cluster[WORKER]
    after = REFERENCE["after"]
    assert isinstance(after, dict), "needs the reference runs"
    old: Snapshot = snapshot(node, after)
    started = time.monotonic()
    cuts, finished = cut_at_each_boundary(
        cluster, WORKER, cluster.installer(WORKER), step_boundaries,
        lambda: check_after_boot(node, old, after, edits_lost, UNITS), work,
    )  # fmt: skip
    TIMINGS[f"power cuts, install ({len(cuts)})"] = time.monotonic() - started
    wrong = report_cuts(record_property, "install", cuts)
    assert len(cuts) >= 10, [cut.boundary for cut in cuts]
    assert finished.returncode == 0, finished.stdout
    again = cluster.install(WORKER)
    assert "done: 0 change(s) applied" in again.output, again.output
    assert snapshot(node, after) == after
    assert unit_states(node, UNITS) == REFERENCE["units"]
    assert "SITE_NOTE=kept-across-power-cuts" in node.unit("containerd", "Environment").get("Environment", "")
    assert wrong == []


NOWHERE = f"{SUBNET}.250"  # an address on the lab's bridge that no node has


def partition(node: LabNode, action: str) -> None:
    """The node's link to the VIP dropped ("add") or healed ("del"), in its own network namespace: a route
    sends the VIP's packets to an address nobody answers, so they vanish as on a cut cable (connects time
    out). Not an iptables rule: the install reloads firewalld, which flushes rules it does not own."""
    via = ["via", NOWHERE, "dev", "eth0"] if action == "add" else []
    subprocess.run(["ip", "-n", node.namespace, "route", action, f"{VIP}/32", *via], check=True)


def test_a_partition_between_a_joining_node_and_the_vip_waits_then_converges(
    worker: Tuple[LiveCluster, Path], record_property: Callable[[str, object], None]
) -> None:
    """The joining second control plane's link to the VIP is dropped during its install: it waits, naming the
    endpoint, while the first control plane keeps serving; healed, the run finishes and a re-run changes nothing."""
    cluster, work = worker
    name = "k8s-mn02"
    node = cluster[name]
    if managed_paths(node):  # installed: start from a node that has not joined
        assert cluster.install(name, "reset").result.returncode == 0
    first = cluster.service_starts("k8s-mn01")
    output = work / "partitioned.log"
    partition(node, "add")
    try:
        launcher = cluster.start_install(name, output, unit="k8s-lab-partitioned")
        waiting = f"waiting for the API at {VIP}:"
        wait_for_text(output, waiting, launcher, 600)
        time.sleep(5)  # a few probes fail while the link is down
        answer = cluster[WORKER].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
        assert answer.stdout == "ok"  # the first control plane still serves the VIP to the others
    finally:
        partition(node, "del")
    assert launcher.wait(timeout=600) == 0, output.read_text(errors="replace")
    again = cluster.install(name)
    assert "done: 0 change(s) applied" in again.output, again.output
    assert cluster.service_starts("k8s-mn01") == first  # nothing on the first control plane restarted
    assert (
        '["kubeadm", "join", "--config", "/etc/k8s-install/kubeadm-join.yaml"]'
        in node.path("/var/lib/k8s-lab/calls.jsonl").read_text()
    )
    torn = half_applied(node)
    report_fault(record_property, "network partition, joining k8s-mn02 cut from the VIP", not torn, 0, len(torn))
    assert torn == []


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"ended ({process.returncode}) before {text!r}: {path.read_text(errors='replace')}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout:.0f} s: {path.read_text(errors='replace')}")


def half_applied(node: LabNode) -> List[str]:
    return half_applied_files(node.merged)
