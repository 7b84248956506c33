"""Unit enablement as changes: `systemctl enable` only when the unit is not enabled yet."""

from __future__ import annotations

from typing import List

from k8s_install.engine import Change, Node
from k8s_install.errors import InstallError


def is_enabled(node: Node, unit: str) -> bool:
    result = node.host.run(node.host.systemctl("is-enabled", "--quiet", unit), check=False)
    return result.returncode == 0


UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def unit_exists(node: Node, unit: str) -> bool:
    name = unit if "." in unit else f"{unit}.service"
    return any(node.host.path(f"{directory}/{name}").exists() for directory in UNIT_DIRS)


def plan_enabled(node: Node, unit: str, required: bool = True, start: bool = True) -> List[Change]:
    """Enable `unit` (and, with `start`, (re)start it with the other restarts). A unit whose file is absent
    is an error, or, when not `required` (a --root image whose package brings no unit), not enabled and
    reported as such (an action the run did not do), in the plan as in the run: a converged node plans nothing."""
    if not unit_exists(node, unit):
        pending = node.options.dry_run and node.options.earlier_changes_pending
        if pending and required:
            return [Change(f"enable {unit} (once an earlier step has installed it)", lambda: None)]
        if pending:
            return [Change(f"enable {unit} (once an earlier step has installed it; if none does, skipped)", _nothing)]
        if required:
            raise InstallError(f"unit {unit} is not installed on this node: the step that installs it did not run")
        node.host.skipped(f"enable {unit}: not done, this root has no unit file for it (its package brings none)")
        return []
    if is_enabled(node, unit):
        return []

    def enable() -> None:
        node.host.run(node.host.systemctl("enable", unit))
        node.state.record_unit(unit)

    return [Change(f"enable {unit}", enable, (unit,) if start else ())]


def _nothing() -> None:
    return None


def plan_disabled(node: Node, unit: str) -> List[Change]:
    """Stop and disable a unit (firewalld with --firewall disable)."""
    if not node.host.path(f"/usr/lib/systemd/system/{unit}").exists() and not is_enabled(node, unit):
        return []
    changes: List[Change] = []
    if is_enabled(node, unit):
        changes.append(Change(f"disable {unit}", lambda: node.host.run(node.host.systemctl("disable", unit))))
    if node.host.live and node.host.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0:
        changes.append(Change(f"stop {unit}", lambda: node.host.run(["systemctl", "stop", unit])))
    return changes
