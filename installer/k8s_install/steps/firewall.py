"""Firewall: open the ports the role needs in firewalld (default), or stop and disable firewalld."""

from __future__ import annotations

from typing import List
from xml.sax.saxutils import escape

from k8s_install.engine import Change, Node, Step
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


class Firewall(Step):
    name = "firewall"
    title = "firewall"

    def plan(self, node: Node) -> List[Change]:
        if node.settings.firewall == "disable":
            return plan_disabled(node, "firewalld.service")
        if not firewalld_present(node):
            node.host.log("firewalld is not installed: no firewall to configure")
            return []
        service = service_name(node)
        changes = plan_file(node, f"/etc/firewalld/services/{service}.xml", service_xml(node).encode())
        if not node.host.live:
            node.host.skipped(f"firewall-cmd --permanent --add-service={service} && firewall-cmd --reload")
            return changes
        running = node.host.run(["firewall-cmd", "--state"], check=False).returncode == 0
        if not running:
            node.host.log("firewalld is not running: the service file is in place for when it starts")
            return changes
        enabled = node.host.run(["firewall-cmd", "--permanent", f"--query-service={service}"], check=False)
        if changes or enabled.returncode != 0:

            def open_ports() -> None:
                node.host.run(["firewall-cmd", "--reload"])  # load the new service definition
                node.host.run(["firewall-cmd", "--permanent", f"--add-service={service}"])
                node.host.run(["firewall-cmd", "--reload"])

            changes.append(Change(f"open firewalld service {service} in the default zone", open_ports))
        return changes
