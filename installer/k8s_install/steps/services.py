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
    """Enable `unit` (and, with `start`, (re)start it with the other restarts); a unit whose file is absent
    is an error, or only logged when not `required`."""
    if not unit_exists(node, unit):
        if node.options.dry_run:
            return [Change(f"enable {unit} (once an earlier step has installed it)", lambda: None)]
        if required:
            raise InstallError(f"unit {unit} is not installed on this node: the step that installs it did not run")
        node.host.log(f"{unit}: no unit file, not enabled")
        return []
    if is_enabled(node, unit):
        return []

    def enable() -> None:
        node.host.run(node.host.systemctl("enable", unit))
        node.state.record_unit(unit)

    return [Change(f"enable {unit}", enable, (unit,) if start else ())]


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
