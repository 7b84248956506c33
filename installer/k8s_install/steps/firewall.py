"""Firewall: open the ports the role needs in firewalld (default), or stop and disable firewalld.

On Debian and Ubuntu (k8s_install/node/distro.py, firewall `existing`) the node's own firewall is used:
firewalld when installed, as on EL9; an active ufw is not configured by the installer (ufw has no rule for IP
protocols such as Calico's IP-in-IP and VRRP): the step stops with one line saying what to allow, or to pass
--firewall disable, which also disables ufw. A node with neither has no firewall to configure.
"""

from __future__ import annotations

from typing import List
from xml.sax.saxutils import escape

from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.node.distro import node_distro
from k8s_install.steps.files import HEADER, plan_file
from k8s_install.steps.services import plan_disabled


def service_name(node: Node) -> str:
    return f"k8s-{node.settings.role}"


def service_xml(node: Node) -> str:
    """A firewalld service definition listing the role's ports and protocols."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f"<!-- {escape(HEADER)} -->", "<service>"]
    lines.append(f"  <short>Kubernetes {escape(node.settings.role)}</short>")
    for spec in node.settings.ports():
        port, protocol = spec.split("/")
        lines.append(f'  <port protocol="{protocol}" port="{port}"/>')
    for number in node.settings.protocols():  # by number: protocol names differ between /etc/protocols files
        lines.append(f'  <protocol value="{number}"/>')
    lines.append("</service>")
    return "\n".join(lines) + "\n"


def firewalld_present(node: Node) -> bool:
    return node.host.path("/usr/lib/firewalld").is_dir() or node.host.path("/etc/firewalld").is_dir()


NOT_RUNNING = 252  # firewall-cmd's exit code when firewalld does not answer (firewalld's errors.NOT_RUNNING)


def service_to_open(node: Node, service: str, file_changed: bool) -> bool:
    """Whether firewalld must load `service` and add it to the default zone: not when firewalld is not running
    (logged; the service file is in place for when it starts), nor when it is enabled and its file unchanged.
    A re-run asks firewalld once (the query; firewall-cmd exits NOT_RUNNING when firewalld does not answer);
    `--state` is asked only before a change (it also tells a firewalld that failed to start)."""
    query = node.host.run(["firewall-cmd", "--permanent", f"--query-service={service}"], check=False)
    if query.returncode == 0 and not file_changed:
        return False
    if query.returncode == NOT_RUNNING or node.host.run(["firewall-cmd", "--state"], check=False).returncode != 0:
        node.host.log("firewalld is not running: the service file is in place for when it starts")
        return False
    return True


def open_service(node: Node, service: str) -> None:
    """Load the service's definition, then add it to the permanent and the running configuration (one reload:
    adding it to both is what a second reload would do)."""
    node.host.run(["firewall-cmd", "--reload"])  # load the new service definition
    node.host.run(["firewall-cmd", "--permanent", f"--add-service={service}"])
    node.host.run(["firewall-cmd", f"--add-service={service}"])


UFW_CONF = "/etc/ufw/ufw.conf"


def ufw_enabled(node: Node) -> bool:
    """ufw is installed and enabled (`ufw enable` writes ENABLED=yes in its configuration)."""
    path = node.host.path(UFW_CONF)
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return any(line.replace(" ", "").lower() == "enabled=yes" for line in text.splitlines())


def plan_ufw_disabled(node: Node) -> List[Change]:
    if not ufw_enabled(node):
        return []
    return [Change("ufw disable (--firewall disable)", lambda: node.host.run(["ufw", "--force", "disable"]))]


def ufw_refusal(node: Node) -> str:
    ports = " ".join(spec.replace("-", ":") for spec in node.settings.ports())
    protocols = ", ".join(node.settings.protocols())
    return (
        f"ufw is active on this node and the installer does not configure it: allow the {node.settings.role}'s ports "
        f"({ports}) and IP protocol(s) {protocols} in ufw, or run with --firewall disable (it disables ufw)"
    )


class Firewall(Step):
    name = "firewall"
    title = "firewall"

    def plan(self, node: Node) -> List[Change]:
        existing = node_distro(node.host).firewall == "existing"
        if node.settings.firewall == "disable":
            return plan_disabled(node, "firewalld.service") + (plan_ufw_disabled(node) if existing else [])
        if not firewalld_present(node):
            if existing and ufw_enabled(node):
                raise InstallError(ufw_refusal(node))
            node.host.log("firewalld is not installed: no firewall to configure")
            return []
        service = service_name(node)
        changes = plan_file(node, f"/etc/firewalld/services/{service}.xml", service_xml(node).encode())
        if not node.host.live:
            node.host.skipped(f"firewall-cmd --permanent --add-service={service} && firewall-cmd --reload")
            return changes
        if service_to_open(node, service, bool(changes)):
            changes.append(
                Change(f"open firewalld service {service} in the default zone", lambda: open_service(node, service))
            )
        return changes
