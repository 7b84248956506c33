"""Which node of cluster.yaml this machine is: its own addresses (`ip -j addr`) matched to node IPs.

`--node NAME` overrides the match; for a mounted image (--root) it is the only way, and no address has to
be on this machine. The node's interface is the one cluster.yaml names, else the one
holding the node's IP (keepalived puts the VIP there).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from ipaddress import IPv4Address
from typing import Any, List, NamedTuple, Optional

from k8s_install.cluster.model import ClusterConfig, Node
from k8s_install.errors import InstallError


class InterfaceAddress(NamedTuple):
    interface: str
    address: IPv4Address
    prefixlen: int


class NodeIdentity(NamedTuple):
    node: Node
    interface: str


def parse_ip_addr_json(text: str) -> List[InterfaceAddress]:
    """The IPv4 addresses in `ip -j addr show` output."""
    try:
        links: Any = json.loads(text or "[]")
    except ValueError:
        raise InstallError("`ip -j addr show` printed something that is not JSON; is iproute2 too old?") from None
    found: List[InterfaceAddress] = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        name = str(link.get("ifname", ""))
        for info in link.get("addr_info") or []:
            if isinstance(info, dict) and info.get("family") == "inet" and "local" in info:
                try:
                    address = ipaddress.IPv4Address(str(info["local"]))
                except ValueError:
                    continue
                found.append(InterfaceAddress(name, address, int(info.get("prefixlen", 32))))
    return found


def read_local_addresses() -> List[InterfaceAddress]:
    try:
        result = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InstallError("the `ip` command is missing: install iproute") from None
    if result.returncode != 0:
        raise InstallError(f"`ip -j addr show` failed: {result.stderr.strip()[:200]}")
    return parse_ip_addr_json(result.stdout)


def identify_node(
    config: ClusterConfig, addresses: List[InterfaceAddress], node_name: Optional[str] = None
) -> NodeIdentity:
    node = _named(config, node_name) if node_name is not None else _match(config, addresses)
    return NodeIdentity(node, _interface_for(node, addresses))


def identify_image_node(config: ClusterConfig, node_name: str) -> NodeIdentity:
    """The node a mounted system image (--root) is for, named by --node: no address of it has to be on this
    machine. keepalived's interface (control planes) comes from cluster.yaml, else from this machine where it
    holds the node's IP (an image prepared inside a network namespace, say)."""
    node = _named(config, node_name)
    if node.is_control_plane and not node.interface:
        try:
            local = [entry for entry in read_local_addresses() if entry.address == node.ip]
        except InstallError:
            local = []
        if local:
            return NodeIdentity(node, local[0].interface)
        raise InstallError(
            f"cluster.yaml: node {node.name}: set nodes[].interface (e.g. ens33): with --root this machine's "
            "interfaces say nothing about the image's, and keepalived puts the API VIP on it"
        )
    return NodeIdentity(node, node.interface or "")


def _named(config: ClusterConfig, node_name: str) -> Node:
    try:
        return config.node(node_name)
    except KeyError:
        names = ", ".join(n.name for n in config.nodes)
        raise InstallError(f"--node {node_name}: no such node in cluster.yaml (nodes: {names})") from None


def _match(config: ClusterConfig, addresses: List[InterfaceAddress]) -> Node:
    local = {entry.address for entry in addresses}
    matches = [node for node in config.nodes if node.ip in local]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        mine = ", ".join(sorted({str(a) for a in local if not a.is_loopback})) or "none"
        raise InstallError(
            f"this machine's addresses ({mine}) match no node IP in cluster.yaml: "
            "add this node there or pass --node NAME"
        )
    names = ", ".join(node.name for node in matches)
    raise InstallError(f"this machine holds the IPs of several nodes ({names}): pass --node NAME")


def _interface_for(node: Node, addresses: List[InterfaceAddress]) -> str:
    if node.interface:
        if addresses and node.interface not in {entry.interface for entry in addresses}:
            raise InstallError(
                f"cluster.yaml: node {node.name}: interface {node.interface} has no IPv4 address "
                "on this machine: fix nodes[].interface"
            )
        return node.interface
    for entry in addresses:
        if entry.address == node.ip:
            return entry.interface
    raise InstallError(
        f"node {node.name}'s IP {node.ip} is not on this machine, so its interface is unknown: "
        "add the address, or set nodes[].interface in cluster.yaml"
    )
