"""Checks across the fields of cluster.yaml: control planes, the VIP, the node network and the pod network's
size. They run on whatever parts of the file are valid, so one run reports these along with field errors."""

from __future__ import annotations

import math
from ipaddress import IPv4Address, IPv4Network
from typing import Dict, List, NamedTuple, Optional

from k8s_install.cluster.addresses import network_that_fits
from k8s_install.cluster.fields import FieldReader
from k8s_install.cluster.model import CONTROL_PLANE, ExternalEtcd, Node

# kube-controller-manager gives each node a /24 of the pod network (--node-cidr-mask-size, kubeadm's default).
NODE_POD_PREFIX = 24


class NodeEntry(NamedTuple):
    place: int  # its index in the nodes list, for messages
    node: Node


def check_topology(
    reader: FieldReader,
    entries: List[NodeEntry],
    count: int,
    networks: Dict[str, IPv4Network],
    vip: Optional[IPv4Address],
    external_etcd: Optional[ExternalEtcd],
) -> List[str]:
    """Report what does not fit together; return the warnings. `entries` are the valid node entries of the
    `count` in the file; networks and VIP hold only what was valid."""
    every_node_read = count > 0 and len(entries) == count
    if every_node_read and not any(entry.node.is_control_plane for entry in entries):
        reader.report("nodes", f"no node has role {CONTROL_PLANE}: at least one is needed")
    node_network = networks.get("nodes")
    for index, node in entries:
        _check_node(reader, f"nodes[{index}].ip", node, networks, vip)
    if vip is not None and node_network is not None:
        if vip in (node_network.network_address, node_network.broadcast_address):
            reader.report("api.vip", f"{vip} is the network or broadcast address of {node_network}")
        elif vip not in node_network:
            reader.report(
                "api.vip",
                f"{vip} is outside the control planes' subnet networks.nodes {node_network}: "
                "pick a free address inside it",
            )
    pods = networks.get("pods")
    if pods is not None and count > 0:
        _check_pod_network_size(
            reader, pods, count, [networks[key] for key in ("nodes", "services") if key in networks]
        )
    planes = sum(1 for entry in entries if entry.node.is_control_plane)
    if every_node_read and external_etcd is None and planes % 2 == 0 and planes > 0:
        return [
            f"{reader.where}: nodes: {planes} control planes run stacked etcd, which needs a "
            f"majority: {planes} tolerate no more failures than {planes - 1}; use an odd number (3 or 5)"
        ]
    return []


def _check_node(
    reader: FieldReader, field: str, node: Node, networks: Dict[str, IPv4Network], vip: Optional[IPv4Address]
) -> None:
    for key in ("pods", "services"):
        other = networks.get(key)
        if other is not None and node.ip in other:
            reader.report(field, f"{node.ip} is inside networks.{key} {other}: move that network")
    network = networks.get("nodes")
    if network is not None:
        if node.is_control_plane and node.ip not in network:
            reader.report(
                field,
                f"control plane {node.name} ({node.ip}) is outside networks.nodes {network}: "
                "the control planes and the VIP share one network",
            )
        elif node.ip in (network.network_address, network.broadcast_address):
            reader.report(field, f"{node.ip} is the network or broadcast address of {network}")
    if node.ip == vip:
        reader.report("api.vip", f"{vip} is also the IP of node {node.name}: the VIP needs an unused address")


def _check_pod_network_size(reader: FieldReader, pods: IPv4Network, count: int, others: List[IPv4Network]) -> None:
    """Each node takes a /24 of the pod network: n nodes need a prefix of at most 24 - ceil(log2 n)."""
    prefix = NODE_POD_PREFIX - math.ceil(math.log2(count))
    if pods.prefixlen <= prefix:
        return
    nodes = "1 node" if count == 1 else f"{count} nodes"
    suggestion = network_that_fits(pods.network_address, prefix, avoid=others)
    example = f", e.g. {suggestion}" if suggestion is not None else ""
    reader.report(
        "networks.pods",
        f"{pods} is too small for {nodes}: each node takes a /{NODE_POD_PREFIX} of it; "
        f"use /{prefix} or larger{example}",
    )
