"""Every preflight failure with its message: facts in, message out; and through the real pyz."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import BundleManifest, DebRepository
from k8s_install.engine import Node
from k8s_install.errors import InstallError
from k8s_install.node import facts
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps import preflight
from tests.support.cluster_files import write_cluster
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import NetNamespace, make_el9_root
from tests.support.session_cache import shiv_root


def make_node(tmp_path: Path, role: str = "worker", arch: str = "amd64") -> Node:
    root = make_el9_root(tmp_path / "root")
    host = Host(root)
    (tmp_path / "bundle").mkdir(mode=0o755)
    bundle = Bundle(tmp_path / "bundle", BundleManifest("", "rocky9", arch, os_aliases=("alma9", "rhel9")))
    settings = NodeSettings(role=role, first=False, name="n1", ip="10.213.0.5")
    return Node(host, State(host), bundle, settings)


DEBIAN12 = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
UBUNTU2404 = 'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04 LTS"\n'


def debian_bundle(node: Node, target: str = "debian12") -> None:
    manifest = BundleManifest("1.29.6", target, "amd64", deb_repository=DebRepository("debs", "debs/key.gpg"))
    node.bundle = Bundle(node.bundle.root, manifest)


@pytest.mark.parametrize("os_release,target", [(DEBIAN12, "debian12"), (UBUNTU2404, "ubuntu2404")])
def test_a_debian_family_bundle_is_accepted_on_its_release(tmp_path: Path, os_release: str, target: str) -> None:
    node = make_node(tmp_path)
    debian_bundle(node, target)
    (node.host.root / "etc/os-release").write_text(os_release)
    assert preflight.check_os(node) is None


def test_a_debian_bundle_is_refused_on_another_release_in_one_line(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    debian_bundle(node)
    assert preflight.check_os(node) == (
        "this node runs Rocky Linux 9.3 (Blue Onyx) but the bundle is for debian12: install it on Debian 12 nodes, "
        "or build one for this node with bundler build --os rocky9"
    )
    (node.host.root / "etc/os-release").write_text(UBUNTU2404)
    assert preflight.check_os(node) == (
        "this node runs Ubuntu 24.04 LTS but the bundle is for debian12: install it on Debian 12 nodes, or build one "
        "for this node with bundler build --os ubuntu2404"
    )


GiB = 1024**3
CASES = [
    (
        "root",
        lambda m: m.setattr(facts, "effective_uid", lambda: 1000),
        "not running as root: run it with sudo (or as root)",
    ),
    (
        "arch",
        lambda m: m.setattr(facts, "machine", lambda: "aarch64"),
        "this node is arm64 but the bundle is for amd64: build one with --arch arm64",
    ),
    (
        "cpus",
        lambda m: m.setattr(facts, "cpu_count", lambda: 1),
        "1 CPU(s), Kubernetes needs at least 2: give the machine more CPUs",
    ),
    (
        "memory",
        lambda m: m.setattr(facts, "memory_bytes", lambda: GiB),
        "1.0 GiB of memory, Kubernetes needs at least 2 GiB: add memory",
    ),
    (
        "disk",
        lambda m: m.setattr(facts, "disk_free", lambda path: GiB),
        "/var/lib, /etc, /var/lib/k8s-install (one filesystem): needs 2.0 GiB free (kubelet, etcd and logs 2.0 GiB, "
        "the configuration 16.0 MiB, the installer's state and backups 16.0 MiB), 1.0 GiB available: free space "
        "there or grow the filesystem, then run again",
    ),
    (
        "ports",
        lambda m: m.setattr(facts, "listening_ports", lambda: {22: "sshd", 10250: "nginx"}),
        "port(s) 10250 (nginx) already in use: stop what listens there (ss -ltnp shows it)",
    ),
    (
        "runtime",
        lambda m: m.setattr(facts, "docker_running", lambda host: True),
        "docker is running and would fight containerd: systemctl disable --now docker docker.socket",
    ),
]


@pytest.fixture
def healthy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that passes every check, so each case changes exactly one fact."""
    monkeypatch.setattr(facts, "effective_uid", lambda: 0)
    monkeypatch.setattr(facts, "machine", lambda: "x86_64")
    monkeypatch.setattr(facts, "cpu_count", lambda: 4)
    monkeypatch.setattr(facts, "memory_bytes", lambda: 8 * GiB)
    monkeypatch.setattr(facts, "disk_free", lambda path: 100 * GiB)
    monkeypatch.setattr(facts, "filesystem_id", lambda path: 1)
    monkeypatch.setattr(facts, "listening_ports", lambda: {22: "sshd"})
    monkeypatch.setattr(facts, "docker_running", lambda host: False)


@pytest.mark.parametrize("name,break_fact,message", CASES, ids=[c[0] for c in CASES])
def test_each_failure_names_the_check_and_the_fix(
    healthy: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    break_fact: Callable,
    message: str,
) -> None:
    node = make_node(tmp_path)
    assert preflight.failures(node) == []
    break_fact(monkeypatch)
    assert preflight.failures(node) == [(name, message)]
    with pytest.raises(InstallError, match=rf"^preflight failed \({name}\): fix the above, or pass --ignore-preflight"):
        preflight.Preflight().plan(node)


def test_a_bundle_others_can_write_is_refused(healthy: None, tmp_path: Path) -> None:
    """Whoever can write the bundle could swap a binary or an RPM after `verify`: group- or other-writable
    files and folders fail the check, naming them and the fix."""
    node = make_node(tmp_path)
    folder = node.bundle.root / "rpms"
    folder.mkdir(mode=0o755)
    (folder / "a.rpm").write_bytes(b"rpm")
    (folder / "b.rpm").write_bytes(b"rpm")
    os.chmod(folder / "a.rpm", 0o664)
    os.chmod(folder, 0o777)
    assert preflight.failures(node) == [
        (
            "bundle-permissions",
            f"2 path(s) in the bundle folder {node.bundle.root} can be written by other users (rpms, rpms/a.rpm), "
            f"so they could be swapped after verify: chmod -R go-w {node.bundle.root}, then run "
            "./k8s-install.pyz verify again",
        )
    ]
    subprocess.run(["chmod", "-R", "go-w", str(node.bundle.root)], check=True)  # the fix the message gives
    assert preflight.failures(node) == []


def test_wrong_os_names_both(healthy: None, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    (node.host.root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    assert preflight.failures(node) == [
        (
            "os",
            "this node runs Debian GNU/Linux 12 but the bundle is for rocky9/alma9/rhel9: install it on Rocky Linux 9 "
            "nodes, or build one for this node with bundler build --os debian12",
        )
    ]


def test_an_os_without_os_release_is_not_called_unknown(healthy: None, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    (node.host.root / "etc/os-release").unlink(missing_ok=True)
    assert preflight.failures(node) == [
        (
            "os",
            "this node runs an OS that /etc/os-release does not name (no ID) but the bundle is for "
            "rocky9/alma9/rhel9: install on one of those (rocky9, alma9, rhel9)",
        )
    ]


def test_an_os_no_release_targets_is_named_with_the_targets(healthy: None, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    (node.host.root / "etc/os-release").write_text('ID=fedora\nVERSION_ID=40\nPRETTY_NAME="Fedora Linux 40"\n')
    assert preflight.check_os(node) == (
        "this node runs Fedora Linux 40 but the bundle is for rocky9/alma9/rhel9: fedora40 is not a target of this "
        "release (bundler build --os takes rocky9, alma9, rhel9); install on one of those"
    )


def test_alma_is_accepted_by_a_rocky_bundle(healthy: None, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    (node.host.root / "etc/os-release").write_text('ID="almalinux"\nVERSION_ID="9.4"\n')
    assert preflight.failures(node) == []


def test_control_plane_needs_its_ports(healthy: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    node = make_node(tmp_path, role="control-plane")
    monkeypatch.setattr(facts, "listening_ports", lambda: {2379: "etcd-other", 8443: "java", 6443: "kube-apiserver"})
    assert preflight.failures(node) == [
        ("ports", "port(s) 2379 (etcd-other), 8443 (java) already in use: stop what listens there (ss -ltnp shows it)")
    ]


def test_ignored_check_is_skipped_and_logged(healthy: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    node = make_node(tmp_path)
    node.settings = NodeSettings(
        role="worker", first=False, name="n1", ip="10.213.0.5", ignore_preflight=frozenset({"cpus"})
    )
    monkeypatch.setattr(facts, "cpu_count", lambda: 1)
    assert preflight.failures(node) == []
    assert "preflight cpus: ignored" in (node.host.root / "var/log/k8s-install.log").read_text()


def test_real_probes_read_this_machine() -> None:
    assert facts.memory_bytes() > 0
    assert facts.cpu_count() >= 1
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert facts.listening_ports()[server.getsockname()[1]].startswith("python")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2")
def test_pyz_reports_every_failure_then_one_error_line(mirror, cluster_secrets, python39: str, tmp_path: Path) -> None:
    """Through the real zipapp: a Debian root, a busy kubelet port in the node's netns, docker's socket."""
    bundle = build_node_bundle(mirror, tmp_path / "build")
    root = make_el9_root(tmp_path / "node")
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    (root / "run").mkdir()
    (root / "run/docker.sock").write_text("")
    config = write_cluster(
        tmp_path / "site",
        cluster_secrets,
        [
            {"name": "cp1", "ip": "10.213.7.11", "role": "control-plane"},
            {"name": "w1", "ip": "10.213.7.2", "role": "worker"},
        ],
    )
    with NetNamespace() as namespace:
        namespace.add_address("10.213.7.2/24")
        listener = subprocess.Popen(
            namespace.prefix()
            + [
                "python3",
                "-c",
                ("import socket,time; s=socket.socket(); s.bind(('127.0.0.1',10250)); s.listen(); time.sleep(60)"),
            ]
        )
        try:
            for _ in range(50):
                probe = subprocess.run(namespace.prefix() + ["ss", "-ltn"], capture_output=True, text=True)
                if ":10250" in probe.stdout:
                    break
                import time

                time.sleep(0.1)
            node = [
                python39, str(bundle / "k8s-install.pyz"), "--root", str(root), "--role", "worker", "--node", "w1",
                "--config", str(config), "--secrets", str(config.parent / "cluster-secrets.yaml"), "--allow-incomplete",
            ]  # fmt: skip
            env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
            result, plan = (
                subprocess.run(namespace.prefix() + node + [command], capture_output=True, text=True, env=env)
                for command in ("preflight", "plan")
            )
        finally:
            listener.kill()
            listener.wait()
    assert result.returncode == 1
    assert "preflight os: this node runs Debian GNU/Linux 12 but the bundle is for rocky9" in result.stdout
    assert "preflight ports: port(s) 10250 (python3) already in use" in result.stdout
    assert "preflight runtime: docker is running" in result.stdout
    assert result.stderr.strip() == (
        "k8s-install.pyz: error: preflight failed (os, ports, runtime): fix the above, "
        "or pass --ignore-preflight NAME to override one"
    )
    # plan shows the same failures, marks the step, and still shows every step after it
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "preflight os: this node runs Debian GNU/Linux 12 but the bundle is for rocky9" in plan.stdout
    lines = plan.stdout.splitlines()
    assert "[preflight] node can run Kubernetes: FAILED (os, ports, runtime): an install stops here" in lines
    for later in ("[runtime-binaries] ", "[packages] ", "[kubeadm] "):
        assert any(line.startswith(later) for line in lines), (later, plan.stdout)
    assert lines[-1].startswith("plan: ") and "change(s) pending; nothing was changed" in lines[-1]
    assert plan.stderr.strip() == (
        "k8s-install.pyz: error: preflight failed (os, ports, runtime): fix the above, "
        "or pass --ignore-preflight NAME to override one (an install stops at that step)"
    )


def test_ports_held_by_our_own_services_are_not_conflicts(
    healthy: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A re-run after a failure in kubeadm init: haproxy and the API server already hold their ports."""
    node = make_node(tmp_path, role="control-plane")
    monkeypatch.setattr(facts, "listening_ports", lambda: {8443: "haproxy", 6443: "kube-apiserver", 2379: "etcd"})
    assert preflight.failures(node) == []


def test_unknown_check_name_to_ignore_is_refused_with_the_list() -> None:
    from k8s_install.commands.cluster_settings import ignored_checks

    assert ignored_checks(["cpus", "ports"]) == frozenset({"cpus", "ports"})
    with pytest.raises(InstallError) as raised:
        ignored_checks(["cpu"])
    assert str(raised.value) == (
        "--ignore-preflight cpu: no such check; the checks are root, os, arch, cpus, memory, clock, disk, ports, "
        "runtime, assumed-rpms, bundle-permissions"
    )


def test_each_filesystem_is_checked_for_what_it_gets(
    healthy: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """/etc on a small filesystem of its own: only it is named, with its need and what it has; /var/lib, on
    another one with room, is not."""
    node = make_node(tmp_path)
    etc = str(node.host.path("/etc"))
    monkeypatch.setattr(facts, "filesystem_id", lambda path: 2 if str(path).startswith(etc) else 1)
    monkeypatch.setattr(facts, "disk_free", lambda path: 4096 if str(path).startswith(etc) else 100 * GiB)
    assert preflight.failures(node) == [
        (
            "disk",
            "/etc: needs 16.0 MiB free (the configuration 16.0 MiB), 4.0 KiB available: free space there or grow "
            "the filesystem, then run again",
        )
    ]
