"""The converge engine: each step reads the node's state, computes its changes, and applies only those.

A step with no changes is already done; that is what makes a second run a no-op and `plan` honest.
Services a change needs restarted are recorded in the state file first (so a killed run restarts them on
the next run), restarted once, and polled until ready. A step that needs a service running (the images
step needs containerd) flushes the pending restarts before it plans; a step that needs the whole node
settled (kubeadm) flushes all of them, so nothing restarts after it unless it changed after it.

A service has one name, the unit's without `.service` (`containerd.service` and `containerd` are one
service, restarted once), and pending restarts run in RESTART_ORDER: what others use comes first.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State

if TYPE_CHECKING:  # types only: the engine imports no bundle, settings or upgrade code at run time
    from k8s_install.bundle_format.bundle import Bundle
    from k8s_install.settings import NodeSettings
    from k8s_install.upgrade_record import UpgradeRecord


@dataclass(frozen=True)
class Change:
    summary: str
    apply: Callable[[], object]  # what it returns is ignored
    restarts: Tuple[str, ...] = ()


@dataclass
class NodeOptions:
    """How a command runs the steps, beyond what the node is (its settings)."""

    dry_run: bool = False  # planning only: a step may describe a change that needs an earlier one applied
    no_gpgcheck: bool = False  # --no-gpgcheck: install unsigned RPMs
    upgrade: Optional[UpgradeRecord] = None  # `upgrade`: where the node comes from, what is done so far
    delete_emptydir_data: bool = True  # `upgrade`: drain with --delete-emptydir-data (--no-delete-emptydir-data)
    plan_past_preflight: bool = False  # `plan`: failed preflight checks are marked, every step still shown
    preflight_failures: List[str] = field(default_factory=list)  # the checks that failed, for `plan`
    earlier_changes_pending: bool = True  # planning: an earlier step still has changes to make


@dataclass
class Node:
    """Everything a step may read: the host, the state, the bundle and the node's settings."""

    host: Host
    state: State
    bundle: Bundle
    settings: NodeSettings
    options: NodeOptions = field(default_factory=NodeOptions)


class Step:
    name = "step"
    title = "a step"
    needs_running: Tuple[str, ...] = ()  # services that must be (re)started before this step plans
    needs_settled = False  # every pending restart done before this step plans (kubeadm)

    def plan(self, node: Node) -> List[Change]:
        raise NotImplementedError

    def outcome(self, node: Node) -> Optional[str]:
        """What the step's line says instead of ok / N to change (a check that failed in a plan)."""
        return None


@dataclass
class StepReport:
    name: str
    title: str
    changes: List[str]
    recorded: List[str] = field(default_factory=list)  # actions on the running machine --root only logs


@dataclass
class RunReport:
    steps: List[StepReport] = field(default_factory=list)
    restarted: List[str] = field(default_factory=list)

    @property
    def change_count(self) -> int:
        return sum(len(step.changes) for step in self.steps)


Readiness = Callable[[Node], Optional[str]]  # returns None when ready, else what is still missing
READINESS: Dict[str, Readiness] = {}


def register_readiness(service: str, check: Readiness) -> None:
    READINESS[service] = check


# Dependencies first: buildkitd is a containerd client, keepalived's check script asks haproxy, and the
# kubelet needs the runtime; a service not listed restarts after these, in the order it was asked for. chrony is
# chronyd's name on Debian and Ubuntu.
RESTART_ORDER = ("chronyd", "chrony", "containerd", "buildkitd", "haproxy", "keepalived", "kubelet")


def service_name(unit: str) -> str:
    """The one name of a service: `containerd.service` and `containerd` are the same service."""
    return unit[: -len(".service")] if unit.endswith(".service") else unit


def restart_order(services: Sequence[str]) -> List[str]:
    unique = list(dict.fromkeys(service_name(service) for service in services))
    rank = {service: index for index, service in enumerate(RESTART_ORDER)}
    return sorted(unique, key=lambda service: (rank.get(service, len(RESTART_ORDER)), unique.index(service)))


def restart_services(node: Node, services: Sequence[str], report: RunReport, timeout: float = 60.0) -> None:
    host = node.host
    services = restart_order(services)
    if not services:
        return
    if host.live:
        host.run(["systemctl", "daemon-reload"])
    for service in services:
        if host.live:
            host.run(["systemctl", "restart", service])
            _wait_ready(node, service, timeout)
        else:
            host.skipped(f"systemctl restart {service}")
        node.state.clear_pending_restart(service)
        report.restarted.append(service)


def _wait_ready(node: Node, service: str, timeout: float) -> None:
    check = READINESS.get(service)
    deadline = time.monotonic() + timeout
    missing: Optional[str] = "not checked"
    while time.monotonic() < deadline:
        active = node.host.run(["systemctl", "is-active", "--quiet", service], check=False).returncode == 0
        missing = None if active else f"{service} is not active"
        if missing is None and check is not None:
            missing = check(node)
        if missing is None:
            return
        time.sleep(1.0)
    raise InstallError(
        f"{service} did not become ready within {timeout:.0f} s ({missing}); see journalctl -u {service}"
    )


RECORDED_MARK = "--root: only logged, not run:"  # an action on the running machine, not on the image


def printable_recorded(action: str) -> str:
    return action[len("would run: ") :] if action.startswith("would run: ") else action


def restart_note(host: Host, change: Change) -> str:
    """Under --root a change's restarts are only logged: say so where the change is shown."""
    if host.live or not change.restarts:
        return ""
    return f" (--root: restart of {', '.join(restart_order(list(change.restarts)))} only logged)"


def converge(node: Node, steps: Sequence[Step], dry_run: bool, echo: Callable[[str], None] = print) -> RunReport:
    """Plan and (unless dry_run) apply every step in order."""
    report = RunReport()
    host = node.host
    host.log(f"=== Python {platform.python_version()} ({sys.executable})")  # which python3 the node gave the pyz
    host.log(f"=== {'plan' if dry_run else 'run'}: steps {', '.join(step.name for step in steps)}")
    for step in steps:
        if not dry_run:
            needed = {service_name(service) for service in step.needs_running}
            pending = node.state.pending_restarts()
            due = pending if step.needs_settled else [s for s in pending if service_name(s) in needed]
            restart_services(node, due, report)
        already = len(host.recorded)
        # a plan of an earlier step is not applied in a dry run: a step whose input it makes (a unit file a
        # package brings) reads this to tell "not there yet" from "never coming"
        node.options.earlier_changes_pending = dry_run and report.change_count > 0
        changes = step.plan(node)
        recorded = [printable_recorded(action) for action in host.recorded[already:]]
        summaries = [change.summary for change in changes]
        report.steps.append(StepReport(step.name, step.title, summaries, recorded))
        mark = "ok" if not changes else (f"{len(changes)} to change" if dry_run else f"{len(changes)} changed")
        mark = step.outcome(node) or mark
        echo(f"[{step.name}] {step.title}: {mark}")
        for change in changes:
            echo(f"    {'would ' if dry_run else ''}{change.summary}{restart_note(host, change)}")
            if dry_run:
                continue
            if change.restarts:
                node.state.add_pending_restarts([service_name(unit) for unit in change.restarts])
            host.log(f"[{step.name}] {change.summary}")
            change.apply()
        for action in recorded:
            echo(f"    {RECORDED_MARK} {action}")
    if not dry_run:
        restart_services(node, node.state.pending_restarts(), report)
    return report
