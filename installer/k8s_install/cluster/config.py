"""Load and validate cluster.yaml before anything changes: each problem is one line naming its field.

`load_cluster_config(path, bundle_kubernetes, known_versions)` returns the ClusterConfig and a list of
warnings (an even number of control planes with stacked etcd). The whole file is checked in one pass: every
problem found is one line "<file>: <field>: <what to do>", and they are raised together as one ErrorList
(an InstallError). Only a file that cannot be read as YAML stops at its first problem.
"""

from __future__ import annotations

import dataclasses
import math
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import yaml

from k8s_install.bundle_format.layout import CLUSTER_CONFIG_NAME
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.cluster.addresses import parse_ipv4, parse_ipv4_network
from k8s_install.cluster.fields import FieldReader, did_you_mean, shown
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
from k8s_install.cluster.site_registry import read_registry, read_registry_ca
from k8s_install.cluster.topology import NodeEntry, check_topology
from k8s_install.errors import ErrorList, InstallError, yaml_problem
from k8s_install.node.small_file import read_small_file

CONFIG_NAME = CLUSTER_CONFIG_NAME
TOP_FIELDS = ("name", "kubernetes_version", "api", "networks", "nodes", "ntp", "etcd", "calico", "registry")
API_FIELDS = ("vip", "port", "virtual_router_id", "vrrp_unicast")
NETWORK_FIELDS = ("nodes", "pods", "services")
NODE_FIELDS = ("name", "ip", "role", "interface")
ETCD_FIELDS = ("topology", "endpoints", "ca_file", "cert_file", "key_file")
ROLE_ALIASES = {"master": CONTROL_PLANE}  # kubeadm's name for it until 1.20
ETCD_TOPOLOGIES = ("stacked", "external")
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
MAX_INTERFACE_NAME = 15  # IFNAMSIZ - 1
VERSION = re.compile(r"^v?(\d+\.\d+\.\d+)$")
INTERFACE = re.compile(rf"^[^\s/:]{{1,{MAX_INTERFACE_NAME}}}$")
MAX_NODES = 1000

# The size cap follows from the node cap: MAX_NODES entries as long as valid entries get (the longest name and
# interface, the longest IPv4 address, every value quoted, 4-space indents, CRLF line ends), plus room for the
# other sections and comments. Anything bigger is not a cluster config; it is refused before the YAML parser
# (pure Python on the nodes) spends minutes on it.
LONGEST_NODE_ENTRY = (
    f'    - name: "{"n" * MAX_NODE_NAME}"\r\n'
    '      ip: "192.168.255.254"\r\n'
    '      role: "control-plane"\r\n'
    f'      interface: "{"i" * MAX_INTERFACE_NAME}"\r\n'
)
ROOM_FOR_THE_REST = 64 * 1024  # the other sections and any comments (the starting file is under 3 KiB)
MAX_CONFIG_BYTES = math.ceil((MAX_NODES * len(LONGEST_NODE_ENTRY) + ROOM_FOR_THE_REST) / 1024) * 1024


class LoadedConfig(NamedTuple):
    config: ClusterConfig
    warnings: List[str]


class ApiSettings(NamedTuple):
    vip: IPv4Address
    port: int
    virtual_router_id: Optional[int]  # None: derived from the name
    vrrp_unicast: bool


def load_cluster_config(
    path: Path, bundle_kubernetes: Optional[str] = None, known_versions: Optional[Sequence[str]] = None
) -> LoadedConfig:
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
    loaded = parse_cluster_config(text, where, bundle_kubernetes, known_versions)
    registry = loaded.config.registry
    if registry is not None and registry.ca_file:  # named beside the file: only now is its folder known
        registry = dataclasses.replace(registry, ca_pem=read_registry_ca(Path(path), registry))
        loaded = LoadedConfig(dataclasses.replace(loaded.config, registry=registry), loaded.warnings)
    return loaded


def parse_cluster_config(
    text: str, where: str, bundle_kubernetes: Optional[str] = None, known_versions: Optional[Sequence[str]] = None
) -> LoadedConfig:
    """`bundle_kubernetes`: the version the file must name (the bundle's). `known_versions`: without a bundle,
    the releases the builder knows; the file must name one of them. Neither: any version."""
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
    if top is None:  # not a mapping: nothing below it to check
        raise ErrorList(reader.errors, where)
    name = reader.attempt(lambda: _name(reader, top))
    version = reader.attempt(lambda: _version(reader, top, bundle_kubernetes, known_versions))
    api = _api(reader, top.get("api"))
    networks = _networks(reader, top.get("networks"))
    entries, count = _nodes(reader, top.get("nodes"))
    ntp_server = _ntp(reader, top.get("ntp"))
    external_etcd = reader.attempt(lambda: _etcd(reader, top.get("etcd")))
    calico = _calico(reader, top.get("calico"))
    registry = read_registry(reader, top.get("registry"))
    warnings = check_topology(reader, entries, count, networks, api.vip if api else None, external_etcd)
    reader.raise_errors()
    assert name is not None and version is not None and api is not None and calico is not None
    config = ClusterConfig(
        name=name,
        kubernetes_version=version,
        vip=api.vip,
        api_port=api.port,
        virtual_router_id=api.virtual_router_id or derived_virtual_router_id(name),
        vrrp_unicast=api.vrrp_unicast,
        node_network=networks["nodes"],
        pod_network=networks["pods"],
        service_network=networks["services"],
        nodes=tuple(entry.node for entry in entries),
        ntp_server=ntp_server,
        external_etcd=external_etcd,
        calico=calico,
        registry=registry,
    )
    return LoadedConfig(config, warnings)


def _name(reader: FieldReader, top: Dict[str, Any]) -> str:
    name = reader.text(top, "name", "name") or ""
    if not DNS_LABEL.match(name):
        raise reader.error("name", f"{shown(name)} must be lowercase letters, digits and '-' (at most 63)")
    return name


def _version(
    reader: FieldReader, top: Dict[str, Any], bundle_kubernetes: Optional[str], known_versions: Optional[Sequence[str]]
) -> str:
    raw = reader.text(top, "kubernetes_version", "kubernetes_version") or ""
    match = VERSION.match(raw)
    if not match:
        raise reader.error("kubernetes_version", f"{shown(raw)} is not a version like 1.29.6")
    version = match.group(1)
    if bundle_kubernetes:
        expected = bundle_kubernetes.lstrip("v")
        if version != expected:
            raise reader.error(
                "kubernetes_version",
                f"{version} differs from this bundle's Kubernetes {expected}: set {expected} or use a matching bundle",
            )
    elif known_versions is not None and version not in known_versions:
        raise reader.error(
            "kubernetes_version",
            f"{version} is not a release this bundler knows: {did_you_mean(version, known_versions)}"
            f"known: {', '.join(known_versions) or 'none'}",
        )
    return version


def _api(reader: FieldReader, value: Any) -> Optional[ApiSettings]:
    api = reader.mapping(value, "api", API_FIELDS)
    if api is None:
        return None
    vip = reader.attempt(_address, reader, api, "vip", "api.vip")
    port = reader.attempt(lambda: _port(reader, api))
    router_id = reader.attempt(lambda: reader.integer(api, "virtual_router_id", "api.virtual_router_id", None, 1, 255))
    unicast = reader.attempt(lambda: reader.boolean(api, "vrrp_unicast", "api.vrrp_unicast", False))
    if vip is None or port is None or unicast is None:
        return None
    return ApiSettings(vip, port, router_id, unicast)


def _port(reader: FieldReader, api: Dict[str, Any]) -> int:
    port = reader.integer(api, "port", "api.port", 8443, 1, 65535)
    assert port is not None  # it has a default
    if port in RESERVED_PORTS:
        raise reader.error("api.port", f"{port} is used by {RESERVED_PORTS[port]} on every control plane; use 8443")
    return port


def _networks(reader: FieldReader, value: Any) -> Dict[str, IPv4Network]:
    """The networks that are valid each on its own (keyed nodes, pods, services); the others are reported."""
    networks = reader.mapping(value, "networks", NETWORK_FIELDS)
    if networks is None:
        return {}
    parsed: Dict[str, IPv4Network] = {}
    for key in NETWORK_FIELDS:
        field = f"networks.{key}"
        network = reader.attempt(_network, reader, networks, key, field)
        if network is not None:
            parsed[key] = network
    for first, second in (("pods", "services"), ("pods", "nodes"), ("services", "nodes")):
        if first in parsed and second in parsed and parsed[first].overlaps(parsed[second]):
            reader.report(
                f"networks.{first}",
                f"{parsed[first]} overlaps networks.{second} {parsed[second]}: choose ranges that do not overlap",
            )
            del parsed[first]  # checking nodes against it would only repeat this error for each node
    if "services" in parsed and parsed["services"].prefixlen < 12:
        reader.report(
            "networks.services",
            f"{parsed['services']} is larger than the API server allows (at most /12, e.g. 10.96.0.0/12)",
        )
    return parsed


def _nodes(reader: FieldReader, value: Any) -> Tuple[List[NodeEntry], int]:
    """The node entries that are valid, and how many entries were read (the list's length)."""
    if not isinstance(value, list) or not value:
        reader.report("nodes", "must be a list of nodes with name, ip and role")
        return [], 0
    if len(value) > MAX_NODES:
        reader.report("nodes", f"{len(value)} nodes; this installer sets up at most {MAX_NODES} per cluster")
        return [], 0  # none read: no check across nodes would add anything
    entries: List[NodeEntry] = []
    index_of_name: Dict[str, int] = {}
    index_of_ip: Dict[IPv4Address, int] = {}
    name_at: Dict[int, str] = {}
    for index, raw in enumerate(value):
        field = f"nodes[{index}]"
        errors_before = len(reader.errors)
        entry = reader.mapping(raw, field, NODE_FIELDS)
        if entry is None:
            continue
        name = reader.attempt(_node_name, reader, entry, field)
        ip = reader.attempt(_address, reader, entry, "ip", f"{field}.ip")
        role = reader.attempt(reader.choice, entry, "role", f"{field}.role", ROLES, None, "", ROLE_ALIASES)
        interface = reader.attempt(_interface, reader, entry, field)
        if name is not None:
            name_at[index] = name
            if name in index_of_name:
                reader.report(
                    f"{field}.name", f"{name} is also the name of nodes[{index_of_name[name]}]: names must be unique"
                )
            index_of_name.setdefault(name, index)
        if ip is not None:
            if ip in index_of_ip:
                other = index_of_ip[ip]
                known = f" ({name_at[other]})" if other in name_at else ""
                reader.report(f"{field}.ip", f"{ip} is also the IP of nodes[{other}]{known}: IPs must be unique")
            index_of_ip.setdefault(ip, index)
        if len(reader.errors) == errors_before:
            assert name is not None and ip is not None and role is not None
            entries.append(NodeEntry(index, Node(name=name, ip=ip, role=role, interface=interface)))
    return entries, len(value)


def _address(reader: FieldReader, section: Dict[str, Any], key: str, field: str) -> IPv4Address:
    return parse_ipv4(reader.text(section, key, field), field, reader.error)


def _network(reader: FieldReader, section: Dict[str, Any], key: str, field: str) -> IPv4Network:
    return parse_ipv4_network(reader.text(section, key, field), field, reader.error)


def _node_name(reader: FieldReader, entry: Dict[str, Any], field: str) -> str:
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
    return name


def _interface(reader: FieldReader, entry: Dict[str, Any], field: str) -> Optional[str]:
    interface = reader.text(entry, "interface", f"{field}.interface", required=False)
    if interface is not None and not INTERFACE.match(interface):
        raise reader.error(f"{field}.interface", f"{shown(interface)} is not an interface name like ens33")
    return interface


def _ntp(reader: FieldReader, value: Any) -> Optional[str]:
    ntp = reader.mapping(value, "ntp", ("server",))
    if ntp is None:
        return None
    return reader.attempt(lambda: _ntp_server(reader, ntp))


def _ntp_server(reader: FieldReader, ntp: Dict[str, Any]) -> Optional[str]:
    server = reader.text(ntp, "server", "ntp.server", required=False)
    if server is not None and not DNS_NAME.match(server.lower()):
        raise reader.error("ntp.server", f"{shown(server)} is not an IP address or host name")
    return server


def _etcd(reader: FieldReader, value: Any) -> Optional[ExternalEtcd]:
    etcd = reader.mapping(value, "etcd", ETCD_FIELDS)
    if etcd is None:
        return None
    topology = reader.choice(etcd, "topology", "etcd.topology", ETCD_TOPOLOGIES, default="stacked")
    if topology == "stacked":
        for key in ETCD_FIELDS[1:]:
            if key in etcd:
                reader.report(f"etcd.{key}", "only applies with topology: external")
        return None
    endpoints = etcd.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        reader.report("etcd.endpoints", "external etcd needs a list of endpoints like https://10.0.0.5:2379")
        endpoints = []
    for index, endpoint in enumerate(endpoints):
        if not isinstance(endpoint, str) or not re.match(r"^https://[^/\s]+:\d+$", endpoint):
            reader.report(f"etcd.endpoints[{index}]", f"{shown(endpoint)} is not like https://10.0.0.5:2379")
    files: Dict[str, str] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        path = reader.attempt(reader.text, etcd, key, f"etcd.{key}")
        if path is not None and not path.startswith("/"):
            reader.report(f"etcd.{key}", f"{shown(path)} must be an absolute path on the control planes")
        files[key] = path or ""
    return ExternalEtcd(endpoints=tuple(endpoints), **files)


def _calico(reader: FieldReader, value: Any) -> Optional[CalicoSettings]:
    calico = reader.mapping(value, "calico", ("encapsulation", "mode"))
    if calico is None:
        return None
    encapsulation = reader.attempt(
        lambda: reader.choice(calico, "encapsulation", "calico.encapsulation", CALICO_ENCAPSULATIONS, default="IPIP")
    )
    mode = reader.attempt(
        lambda: reader.choice(
            calico,
            "mode",
            "calico.mode",
            CALICO_MODES,
            default="Always",
            note=" (no encapsulation is encapsulation: None)",
        )
    )
    if encapsulation is None or mode is None:
        return None
    return CalicoSettings(encapsulation=encapsulation, mode=mode)
