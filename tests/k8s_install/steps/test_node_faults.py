"""Faults on a node (issue 24), each injected against real parts with its end state asserted: two installer
runs at once, a clock far from the cluster's, a full disk. Each case prints one `FAULT ...` line
(tests/support/faults.py); docs/reliability.md lists the matrix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.support.cluster_files import write_cluster
from tests.support.faults import half_applied_files, report_fault
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, mounts)"),
]

WORKER_IP = "10.213.7.100"
OPERATOR_LINE = "10.1.1.1 nas\n"  # an edit the operator made before the fault: it must survive


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.support.http_server import MirrorServer

    server = MirrorServer().start()
    try:
        yield build_node_bundle(server, tmp_path_factory.mktemp("faults") / "build")
    finally:
        server.stop()


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    with NetNamespace() as created:
        created.add_address(f"{WORKER_IP}/24")
        yield created


@pytest.fixture
def node_root(tmp_path: Path, cluster_secrets) -> Path:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    root = make_el9_root(tmp_path / "node")
    add_kubelet_unit(root)
    with open(root / "etc/hosts", "a") as hosts:
        hosts.write(OPERATOR_LINE)
    return root


def worker_command(python39: str, bundle: Path, root: Path, namespace: NetNamespace, tmp_path: Path) -> List[str]:
    site = tmp_path / "site"
    return namespace.prefix() + [
        python39, str(bundle / "k8s-install.pyz"), "--root", str(root), "--role", "worker",
        "--config", str(site / "cluster.yaml"), "--secrets", str(site / "cluster-secrets.yaml"),
        "--allow-incomplete", "--yes",
    ]  # fmt: skip


def environment(tmp_path: Path) -> dict:
    return dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"), PYTHONUNBUFFERED="1")


def run(command: List[str], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command + list(extra), capture_output=True, text=True, env=environment(tmp_path), timeout=300)


def edits_lost(root: Path) -> int:
    return 0 if OPERATOR_LINE in (root / "etc/hosts").read_text() else 1


def wait_for_line(path: Path, marker: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if marker in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {marker!r}: {path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no {marker!r} within {seconds} s: {path.read_text()}")


# -- two runs at once ------------------------------------------------------------------------------------------


def test_a_second_run_refuses_while_one_holds_the_node_and_waits_with_wait(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path, record_property
) -> None:
    """Run A is frozen (SIGSTOP) half-way through writing the runtime binaries, holding the lock. Run B refuses
    at once naming A's PID; run C with --wait waits; A resumes and finishes, then C finds nothing to do."""
    command = worker_command(python39, bundle, node_root, namespace, tmp_path)
    output_a = tmp_path / "a.out"
    with open(output_a, "w") as stream:
        first = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=environment(tmp_path))
    waiting = None
    try:
        wait_for_line(output_a, "create /usr/local/bin/ctr", first)
        first.send_signal(signal.SIGSTOP)
        second = run(command, tmp_path)
        assert second.returncode == 1, second.stdout + second.stderr
        refusal = second.stderr.strip().splitlines()
        assert len(refusal) == 1, second.stderr
        assert f"another k8s-install run is changing this node (PID {first.pid}, `install`, since" in refusal[0]
        assert "add --wait to wait for it; nothing was changed" in refusal[0]
        assert "[preflight]" not in second.stdout  # refused before anything was read or planned

        output_c = tmp_path / "c.out"
        with open(output_c, "w") as stream:
            waiting = subprocess.Popen(
                command + ["--wait"], stdout=stream, stderr=subprocess.STDOUT, env=environment(tmp_path)
            )
        wait_for_line(output_c, f"waiting for the other k8s-install run (PID {first.pid}", waiting)
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, output_a.read_text()
        assert waiting.wait(timeout=300) == 0, output_c.read_text()
    finally:
        for process in (first, waiting):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    assert "done: 0 change(s) applied" in output_c.read_text(), output_c.read_text()
    state = json.loads((node_root / "var/lib/k8s-install/state.json").read_text())
    assert state["completed"] is True and state["pending_restarts"] == []
    torn = half_applied_files(node_root)
    lost = edits_lost(node_root)
    report_fault(record_property, "two installer runs at once", True, lost, len(torn))
    assert torn == [] and lost == 0
