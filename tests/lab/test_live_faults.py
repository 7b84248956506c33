"""Node faults run live on the lab's systemd nodes (issue 24; docs/reliability.md): two installer runs at once
on one node, and a joining node whose clock is hours from the first control plane's, read through the VIP.
Each case prints one `FAULT ...` line (tests/support/faults.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.lab.cluster import BUNDLE_DIR, VIP, LiveCluster
from tests.support.faults import report_fault
from tests.support.prerequisites import require
from tests.support.sandbox import ORIGINAL_HOSTS

WORKER = "k8s-wn01"
LOCK = "/var/lib/k8s-install/run.lock"
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.fixture(scope="module")
def installed(live: LiveCluster) -> LiveCluster:
    return live.install_every_role()


def test_a_second_live_run_refuses_while_the_first_holds_the_node(
    installed: LiveCluster, tmp_path: Path, record_property
) -> None:  # type: ignore[no-untyped-def]
    """Run A (a transient unit of the node's systemd) is frozen once it holds the lock; run B refuses with one
    line naming A's PID as the node sees it; A resumes and finishes; nothing changed under B."""
    node = installed[WORKER]
    unit = "k8s-lab-fault-lock"
    first = installed.start_install(WORKER, tmp_path / "a.log", unit)
    deadline = time.monotonic() + 120
    main_pid = "0"
    while f"pid={main_pid} command=install" not in (node.path(LOCK).read_text() if node.path(LOCK).exists() else ""):
        assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "a.log").read_text()
        main_pid = node.unit(unit, "MainPID").get("MainPID", "0")
        time.sleep(0.05)
    node.run(["systemctl", "kill", "--signal=SIGSTOP", "--kill-whom=main", unit])
    try:
        second = installed.install(WORKER)
        assert second.result.returncode == 1, second.output
        lines = second.result.stderr.strip().splitlines()
        assert (
            len(lines) == 1 and f"another k8s-install run is changing this node (PID {main_pid}, `install`" in lines[0]
        )
    finally:
        node.run(["systemctl", "kill", "--signal=SIGCONT", "--kill-whom=main", unit], check=False)
    assert first.wait(timeout=600) == 0, (tmp_path / "a.log").read_text()
    after = installed.install(WORKER)
    assert after.result.returncode == 0 and "done: 0 change(s) applied" in after.output, after.output
    lost = 0 if node.path("/etc/hosts").read_text().startswith(ORIGINAL_HOSTS) else 1
    report_fault(record_property, "live: two installer runs at once", True, lost, 0)
    assert lost == 0


def test_a_live_joining_node_with_its_clock_hours_off_is_stopped_in_preflight(
    installed: LiveCluster, record_property
) -> None:  # type: ignore[no-untyped-def]
    """The worker runs preflight under libfaketime 3 hours back (that process only; the host's clock and the
    node's are untouched): it reads the first control plane's time from the API through the VIP and refuses,
    naming the gap and the time to set."""
    require("faketime")
    node = installed[WORKER]
    for program in (shutil.which("faketime") or "/usr/bin/faketime", LIBFAKETIME):
        target = node.path(program)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(program, target)
    argv = ["faketime", "-f", "-3h", *installed.installer(WORKER, "preflight")]
    result = node.run(argv, check=False, cwd=BUNDLE_DIR, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    clock = next(line.strip() for line in result.stdout.splitlines() if "preflight clock:" in line)
    assert f"behind the cluster API at {VIP}:" in clock and "more than the 5 min the cluster tolerates" in clock
    print(clock)
    right = node.run(installed.installer(WORKER, "preflight"), check=False, cwd=BUNDLE_DIR, timeout=300)
    assert right.returncode == 0, right.stdout + right.stderr
    report_fault(record_property, "live: a joining node's clock 3 h behind the API at the VIP", True, 0, 0)
