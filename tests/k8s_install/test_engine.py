"""The converge engine: facts in, changes out; restarts collected and done once; flushed before a step that
needs the service; dry runs change nothing. Steps here write real files under a temporary root."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.engine import Change, Node, Step, converge
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.files import plan_file


class WriteFiles(Step):
    """Writes each (path, text) and asks for `service` to be restarted when one changes."""

    def __init__(self, name: str, files: List[Tuple[str, str]], service: str = "", needs: Tuple[str, ...] = ()):
        self.name = name
        self.title = name
        self.files = files
        self.service = service
        self.needs_running = needs

    def plan(self, node: Node) -> List[Change]:
        changes: List[Change] = []
        for path, text in self.files:
            changes += plan_file(node, path, text.encode(), restarts=(self.service,) if self.service else ())
        return changes


@pytest.fixture
def node(tmp_path: Path) -> Node:
    host = Host(tmp_path / "root")
    settings = NodeSettings(role="worker", first=False, name="n", ip="10.213.0.2")
    return Node(host, State(host), Bundle(tmp_path, EMPTY_MANIFEST), settings)


def log_lines(node: Node) -> List[str]:
    return (node.host.root / "var/log/k8s-install.log").read_text().splitlines()


def test_restart_is_done_once_for_many_changes_at_the_end(node: Node) -> None:
    steps = [
        WriteFiles("a", [("/etc/a1", "1"), ("/etc/a2", "2")], service="svc"),
        WriteFiles("b", [("/etc/b", "3")], service="svc"),
    ]
    report = converge(node, steps, dry_run=False, echo=lambda line: None)
    assert report.change_count == 3
    assert report.restarted == ["svc"]
    restarts = [line for line in log_lines(node) if "systemctl restart svc" in line]
    assert len(restarts) == 1 and log_lines(node)[-1] == restarts[0]
    assert node.state.pending_restarts() == []


def test_pending_restart_is_flushed_before_a_step_that_needs_the_service(node: Node) -> None:
    steps = [
        WriteFiles("config", [("/etc/svc.conf", "x")], service="svc"),
        WriteFiles("user", [("/etc/user", "y")], needs=("svc",)),
    ]
    converge(node, steps, dry_run=False, echo=lambda line: None)
    lines = log_lines(node)
    restart = next(i for i, line in enumerate(lines) if "systemctl restart svc" in line)
    user = next(i for i, line in enumerate(lines) if "[user] create /etc/user" in line)
    assert restart < user


def test_second_run_has_no_changes_and_restarts_nothing(node: Node) -> None:
    steps = [WriteFiles("a", [("/etc/a", "1")], service="svc")]
    converge(node, steps, dry_run=False, echo=lambda line: None)
    again = converge(node, steps, dry_run=False, echo=lambda line: None)
    assert again.change_count == 0 and again.restarted == []


def test_dry_run_changes_nothing_and_records_no_restart(node: Node) -> None:
    printed: List[str] = []
    report = converge(node, [WriteFiles("a", [("/etc/a", "1")], service="svc")], dry_run=True, echo=printed.append)
    assert report.change_count == 1
    assert printed == ["[a] a: 1 to change", "    would create /etc/a (--root: restart of svc only logged)"]
    assert not (node.host.root / "etc/a").exists()
    assert node.state.pending_restarts() == []


def test_mode_only_difference_is_a_change(node: Node) -> None:
    converge(node, [WriteFiles("a", [("/etc/a", "1")])], dry_run=False, echo=lambda line: None)
    (node.host.root / "etc/a").chmod(0o600)
    changes = plan_file(node, "/etc/a", b"1", 0o644)
    assert [c.summary for c in changes] == ["chmod 644 /etc/a"]


def test_file_edited_by_hand_is_saved_before_it_is_replaced(node: Node) -> None:
    converge(node, [WriteFiles("a", [("/etc/a", "ours\n")])], dry_run=False, echo=lambda line: None)
    (node.host.root / "etc/a").write_text("edited by hand\n")
    converge(node, [WriteFiles("a", [("/etc/a", "ours\n")])], dry_run=False, echo=lambda line: None)
    assert (node.host.root / "etc/a").read_text() == "ours\n"
    assert (node.host.root / "var/lib/k8s-install/backups/etc/a.edited").read_text() == "edited by hand\n"


def test_symlink_in_place_of_a_managed_file_is_refused(node: Node, tmp_path: Path) -> None:
    from k8s_install.errors import InstallError

    target = node.host.root / "etc/a"
    target.parent.mkdir(parents=True)
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InstallError, match="exists and is not a regular file"):
        plan_file(node, "/etc/a", b"1")


class EnableUnit(Step):
    """Asks for `unit` (a unit name, `x.service`) to be restarted, as plan_enabled does."""

    def __init__(self, name: str, unit: str, needs: Tuple[str, ...] = (), settled: bool = False):
        self.name = name
        self.title = name
        self.unit = unit
        self.needs_running = needs
        self.needs_settled = settled

    def plan(self, node: Node) -> List[Change]:
        marker = node.host.path(f"/etc/enabled/{self.unit}")
        if marker.exists():
            return []
        return [Change(f"enable {self.unit}", lambda: marker.parent.mkdir(parents=True, exist_ok=True)
                       or marker.write_text(""), (self.unit,))]  # fmt: skip


def restarts_in_log(node: Node) -> List[str]:
    return [line.rsplit("systemctl restart ", 1)[1] for line in log_lines(node) if "systemctl restart " in line]


def test_a_unit_name_and_its_service_name_are_one_service_restarted_once(node: Node) -> None:
    """Regression: containerd (its files) and containerd.service (enabling it) were two restarts."""
    steps = [
        WriteFiles("binaries", [("/usr/local/bin/containerd", "x")], service="containerd"),
        EnableUnit("enable", "containerd.service"),
        WriteFiles("images", [("/etc/images", "y")], needs=("containerd",)),
        EnableUnit("vip-haproxy", "haproxy.service"),
        WriteFiles("vip", [("/etc/haproxy.cfg", "z")], service="haproxy"),
    ]
    report = converge(node, steps, dry_run=False, echo=lambda line: None)
    assert report.restarted == ["containerd", "haproxy"]
    assert restarts_in_log(node) == ["containerd", "haproxy"]
    assert node.state.pending_restarts() == []


def test_pending_restarts_run_in_dependency_order_and_all_before_kubeadm(node: Node) -> None:
    """Regression: containerd and keepalived restarted after `kubeadm join` (the VIP dropped)."""
    steps = [
        WriteFiles("time", [("/etc/chrony.conf", "c")], service="chronyd"),
        WriteFiles("buildkit", [("/etc/buildkitd.toml", "b")], service="buildkitd"),
        WriteFiles("keepalived", [("/etc/keepalived.conf", "k")], service="keepalived"),
        WriteFiles("haproxy", [("/etc/haproxy.cfg", "h")], service="haproxy"),
        EnableUnit("runtime", "containerd.service"),
        EnableUnit("kubeadm", "kubeadm-marker", settled=True),
        WriteFiles("calico", [("/etc/calico.yaml", "c")]),
    ]
    converge(node, steps, dry_run=False, echo=lambda line: None)
    assert restarts_in_log(node)[:5] == ["chronyd", "containerd", "buildkitd", "haproxy", "keepalived"]
    lines = log_lines(node)
    kubeadm = next(i for i, line in enumerate(lines) if "[kubeadm] enable kubeadm-marker" in line)
    after = [line for line in lines[kubeadm:] if "systemctl restart " in line]
    assert after == [lines[-1]] and after[0].endswith("restart kubeadm-marker")  # only what kubeadm itself asked


def test_a_state_file_with_unit_names_is_cleared_by_the_restart(node: Node) -> None:
    node.state.add_pending_restarts(["containerd.service"])
    report = converge(node, [WriteFiles("a", [("/etc/a", "1")], service="containerd")], dry_run=False,
                      echo=lambda line: None)  # fmt: skip
    assert report.restarted == ["containerd"] and node.state.pending_restarts() == []
