"""Load and validate cluster.yaml before anything changes: each problem is one line naming its field.

`load_cluster_config(path, bundle_kubernetes)` returns the ClusterConfig and a list of warnings (an even
number of control planes with stacked etcd). Every error is an InstallError "<file>: <field>: <what to do>".
"""

from __future__ import annotations

import math
import re
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import yaml

from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.cluster.addresses import parse_ipv4, parse_ipv4_network
from k8s_install.cluster.fields import FieldReader, shown
from k8s_install.cluster.model import (
    API_SERVER_PORT,
    CONTROL_PLANE,
    ROLES,
    CalicoSettings,
    ClusterConfig,
    ExternalEtcd,
    Node,
    derived_virtual_router_id,
)
from k8s_install.errors import InstallError, yaml_problem
from k8s_install.node.small_file import read_small_file

CONFIG_NAME = CLUSTER_CONFIG_NAME
TOP_FIELDS = ("name", "kubernetes_version", "api", "networks", "nodes", "ntp", "etcd", "calico")
API_FIELDS = ("vip", "port", "virtual_router_id", "vrrp_unicast")
NETWORK_FIELDS = ("nodes", "pods", "services")
NODE_FIELDS = ("name", "ip", "role", "interface")
ETCD_FIELDS = ("topology", "endpoints", "ca_file", "cert_file", "key_file")
CALICO_ENCAPSULATIONS = ("IPIP", "VXLAN", "None")
CALICO_MODES = ("Always", "CrossSubnet")
# Ports a control plane already uses: haproxy cannot take them for the VIP frontend.
RESERVED_PORTS = {
    API_SERVER_PORT: "the API server",
    2379: "etcd",
    2380: "etcd peers",
    10250: "the kubelet",
    10257: "the controller manager",
    10259: "the scheduler",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_NODE_NAME = 63  # a label value (kubernetes.io/hostname) and a hostname both stop at 63 characters
VERSION = re.compile(r"^v?(\d+\.\d+\.\d+)$")
INTERFACE = re.compile(r"^[^\s/:]{1,15}$")


class LoadedConfig(NamedTuple):
    config: ClusterConfig
    warnings: List[str]


# Far beyond any cluster this installer makes (a usual one has 3-10 nodes; 1000 take about 60 KiB): a bigger file
# is the wrong file, refused before the YAML parser (pure Python on the nodes) spends minutes on it.
MAX_CONFIG_BYTES = 128 * 1024
MAX_NODES = 1000


def load_cluster_config(path: Path, bundle_kubernetes: Optional[str] = None) -> LoadedConfig:
    where = str(path)
    try:
        size = Path(path).stat().st_size
        read = read_small_file(Path(path), MAX_CONFIG_BYTES)  # st_size is 0 for a pipe or /dev/zero
        if size > MAX_CONFIG_BYTES or read is None:
            amount = f"{size // 1024} KiB" if size > MAX_CONFIG_BYTES else f"over {MAX_CONFIG_BYTES // 1024} KiB"
            raise InstallError(
                f"{where}: {amount}, far more than a cluster config "
                f"(at most {MAX_CONFIG_BYTES // 1024} KiB, {MAX_NODES} nodes): is this the right file?"
            )
        data = read
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InstallError(f"{where}: line {line}: not UTF-8 text ({error.reason}); save the file as UTF-8") from None
    except FileNotFoundError:
        raise InstallError(
            f"{where}: no such file; write one with `bundler cluster init` (on a node: `k8s-install.pyz config init`)"
        ) from None
    except OSError as error:
        raise InstallError(f"{where}: cannot read the cluster config: {error.strerror}") from None
    return parse_cluster_config(text, where, bundle_kubernetes)


def parse_cluster_config(text: str, where: str, bundle_kubernetes: Optional[str] = None) -> LoadedConfig:
    if len(text) > MAX_CONFIG_BYTES:
        raise InstallError(f"{where}: {len(text)} characters, far more than a cluster config: is this the right file?")
    try:
        data = load_yaml(text, allow_aliases=True)  # the loader of every node: what the builder takes, nodes take
    except yaml.YAMLError as error:
        at = " at " if getattr(error, "problem_mark", None) is not None else ": "
        raise InstallError(f"{where}: not valid YAML{at}{yaml_problem(error)}") from None
    if data is None:
        raise InstallError(
            f"{where}: empty; write one with `bundler cluster init` (on a node: `k8s-install.pyz config init`)"
        )
    reader = FieldReader(where)
    top = reader.mapping(data, "(top level)", TOP_FIELDS)
    name = reader.text(top, "name", "name") or ""
    if not DNS_LABEL.match(name):
        raise reader.error("name", f"{shown(name)} must be lowercase letters, digits and '-' (at most 63)")
    version = _version(reader, top, bundle_kubernetes)
    api = reader.mapping(top.get("api"), "api", API_FIELDS)
    networks = reader.mapping(top.get("networks"), "networks", NETWORK_FIELDS)
    node_net, pod_net, service_net = _networks(reader, networks)
    nodes = _nodes(reader, top.get("nodes"))
    vip = parse_ipv4(reader.text(api, "vip", "api.vip"), "api.vip", reader.error)
    port = reader.integer(api, "port", "api.port", 8443, 1, 65535)
    if port in RESERVED_PORTS:
        raise reader.error("api.port", f"{port} is used by {RESERVED_PORTS[port]} on every control plane; use 8443")
    unicast = api.get("vrrp_unicast", False)
    if not isinstance(unicast, bool):
        raise reader.error("api.vrrp_unicast", f"must be true or false, got {shown(unicast)}")
    config = ClusterConfig(
        name=name,
        kubernetes_version=version,
        vip=vip,
        api_port=port,
        virtual_router_id=reader.integer(
            api, "virtual_router_id", "api.virtual_router_id", derived_virtual_router_id(name), 1, 255
        ),
        vrrp_unicast=unicast,
        node_network=node_net,
        pod_network=pod_net,
        service_network=service_net,
        nodes=nodes,
        ntp_server=_ntp(reader, top.get("ntp")),
        external_etcd=_etcd(reader, top.get("etcd")),
        calico=_calico(reader, top.get("calico")),
    )
    return LoadedConfig(config, _check_topology(reader, config))


def _version(reader: FieldReader, top: Dict[str, Any], bundle_kubernetes: Optional[str]) -> str:
    raw = reader.text(top, "kubernetes_version", "kubernetes_version") or ""
    match = VERSION.match(raw)
    if not match:
        raise reader.error("kubernetes_version", f"{shown(raw)} is not a version like 1.29.6")
    version = match.group(1)
    if bundle_kubernetes and version != bundle_kubernetes.lstrip("v"):
        raise reader.error(
            "kubernetes_version",
            f"{version} differs from this bundle's Kubernetes "
            f"{bundle_kubernetes.lstrip('v')}: set {bundle_kubernetes.lstrip('v')} or use a matching bundle",
        )
    return version


def _networks(reader: FieldReader, networks: Dict[str, Any]) -> Tuple[IPv4Network, IPv4Network, IPv4Network]:
    parsed: Dict[str, IPv4Network] = {}
    for key in NETWORK_FIELDS:
        parsed[key] = parse_ipv4_network(reader.text(networks, key, f"networks.{key}"), f"networks.{key}", reader.error)
    for first, second in (("pods", "services"), ("pods", "nodes"), ("services", "nodes")):
        if parsed[first].overlaps(parsed[second]):
            raise reader.error(
                f"networks.{first}",
                f"{parsed[first]} overlaps networks.{second} {parsed[second]}: choose ranges that do not overlap",
            )
    if parsed["services"].prefixlen < 12:
        raise reader.error(
            "networks.services",
            f"{parsed['services']} is larger than the API server allows (at most /12, e.g. 10.96.0.0/12)",
        )
    return parsed["nodes"], parsed["pods"], parsed["services"]


def _nodes(reader: FieldReader, value: Any) -> Tuple[Node, ...]:
    if not isinstance(value, list) or not value:
        raise reader.error("nodes", "must be a list of nodes with name, ip and role")
    if len(value) > MAX_NODES:
        raise reader.error("nodes", f"{len(value)} nodes; this installer sets up at most {MAX_NODES} per cluster")
    nodes: List[Node] = []
    index_of_name: Dict[str, int] = {}
    index_of_ip: Dict[Any, int] = {}
    for index, entry in enumerate(value):
        field = f"nodes[{index}]"
        entry = reader.mapping(entry, field, NODE_FIELDS)
        name = reader.text(entry, "name", f"{field}.name") or ""
        if not DNS_NAME.match(name):
            raise reader.error(
                f"{field}.name", f"{shown(name)} is not a valid node name (lowercase letters, digits, '-', '.')"
            )
        if len(name) > MAX_NODE_NAME:
            raise reader.error(
                f"{field}.name",
                f"{shown(name)} has {len(name)} characters; a node name becomes its hostname and its "
                f"kubernetes.io/hostname label, both at most {MAX_NODE_NAME}",
            )
        ip = parse_ipv4(reader.text(entry, "ip", f"{field}.ip"), f"{field}.ip", reader.error)
        role = reader.text(entry, "role", f"{field}.role") or ""
        if role not in ROLES:
            raise reader.error(f"{field}.role", f"unknown role {shown(role)}: use {' or '.join(ROLES)}")
        interface = reader.text(entry, "interface", f"{field}.interface", required=False)
        if interface is not None and not INTERFACE.match(interface):
            raise reader.error(f"{field}.interface", f"{shown(interface)} is not an interface name like ens33")
        if name in index_of_name:
            raise reader.error(
                f"{field}.name", f"{name} is also the name of nodes[{index_of_name[name]}]: names must be unique"
            )
        if ip in index_of_ip:
            other_index = index_of_ip[ip]
            raise reader.error(
                f"{field}.ip",
                f"{ip} is also the IP of nodes[{other_index}] ({nodes[other_index].name}): IPs must be unique",
            )
        index_of_name[name], index_of_ip[ip] = index, index
        nodes.append(Node(name=name, ip=ip, role=role, interface=interface))
    return tuple(nodes)


def _ntp(reader: FieldReader, value: Any) -> Optional[str]:
    ntp = reader.mapping(value, "ntp", ("server",))
    server = reader.text(ntp, "server", "ntp.server", required=False)
    if server is not None and not DNS_NAME.match(server.lower()):
        raise reader.error("ntp.server", f"{shown(server)} is not an IP address or host name")
    return server


def _etcd(reader: FieldReader, value: Any) -> Optional[ExternalEtcd]:
    etcd = reader.mapping(value, "etcd", ETCD_FIELDS)
    topology = reader.text(etcd, "topology", "etcd.topology", required=False) or "stacked"
    if topology not in ("stacked", "external"):
        raise reader.error("etcd.topology", f"unknown topology {shown(topology)}: use stacked or external")
    if topology == "stacked":
        extra = [key for key in ETCD_FIELDS[1:] if key in etcd]
        if extra:
            raise reader.error(f"etcd.{extra[0]}", "only applies with topology: external")
        return None
    endpoints = etcd.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise reader.error("etcd.endpoints", "external etcd needs a list of endpoints like https://10.0.0.5:2379")
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, str) or not re.match(r"^https://[^/\s]+:\d+$", endpoint):
            raise reader.error(f"etcd.endpoints[{index}]", f"{shown(endpoint)} is not like https://10.0.0.5:2379")
    files: Dict[str, str] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        path = reader.text(etcd, key, f"etcd.{key}") or ""
        if not path.startswith("/"):
            raise reader.error(f"etcd.{key}", f"{shown(path)} must be an absolute path on the control planes")
        files[key] = path
    return ExternalEtcd(endpoints=tuple(endpoints), **files)


def _calico(reader: FieldReader, value: Any) -> CalicoSettings:
    calico = reader.mapping(value, "calico", ("encapsulation", "mode"))
    encapsulation = reader.text(calico, "encapsulation", "calico.encapsulation", required=False) or "IPIP"
    if encapsulation not in CALICO_ENCAPSULATIONS:
        raise reader.error(
            "calico.encapsulation", f"unknown {shown(encapsulation)}: use {', '.join(CALICO_ENCAPSULATIONS)}"
        )
    mode = reader.text(calico, "mode", "calico.mode", required=False) or "Always"
    if mode not in CALICO_MODES:
        raise reader.error(
            "calico.mode",
            f"unknown {shown(mode)}: use {' or '.join(CALICO_MODES)} (no encapsulation is encapsulation: None)",
        )
    return CalicoSettings(encapsulation=encapsulation, mode=mode)


def _check_topology(reader: FieldReader, config: ClusterConfig) -> List[str]:
    """Checks across fields: control planes, the VIP and the node network. Returns warnings."""
    control_planes = config.control_planes
    if not control_planes:
        raise reader.error("nodes", f"no node has role {CONTROL_PLANE}: at least one is needed")
    network = config.node_network
    for index, node in enumerate(config.nodes):
        field = f"nodes[{index}].ip"
        for other_field, other in (
            ("networks.pods", config.pod_network),
            ("networks.services", config.service_network),
        ):
            if node.ip in other:
                raise reader.error(field, f"{node.ip} is inside {other_field} {other}: move that network")
        if node.is_control_plane and node.ip not in network:
            raise reader.error(
                field,
                f"control plane {node.name} ({node.ip}) is outside networks.nodes {network}: "
                "the control planes and the VIP share one network",
            )
        if node.ip in (network.network_address, network.broadcast_address):
            raise reader.error(field, f"{node.ip} is the network or broadcast address of {network}")
        if node.ip == config.vip:
            raise reader.error(
                "api.vip", f"{config.vip} is also the IP of node {node.name}: the VIP needs an unused address"
            )
    if config.vip in (network.network_address, network.broadcast_address):
        raise reader.error("api.vip", f"{config.vip} is the network or broadcast address of {network}")
    if config.vip not in network:
        raise reader.error(
            "api.vip",
            f"{config.vip} is outside the control planes' subnet networks.nodes {network}: "
            "pick a free address inside it",
        )
    blocks_needed = math.ceil(math.log2(len(config.nodes)))  # one /24 per node
    if config.pod_network.prefixlen > 24 - blocks_needed:
        raise reader.error(
            "networks.pods",
            f"{config.pod_network} is too small: each node takes a /24 of it; "
            f"use /{24 - blocks_needed} or larger, e.g. 10.244.0.0/16",
        )
    warnings = []
    if config.external_etcd is None and len(control_planes) % 2 == 0:
        warnings.append(
            f"{reader.where}: nodes: {len(control_planes)} control planes run stacked etcd, which needs a "
            f"majority: {len(control_planes)} tolerate no more failures than {len(control_planes) - 1}; "
            "use an odd number (3 or 5)"
        )
    return warnings
