"""The validated cluster config as values: what `config.load_cluster_config` returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import List, Optional, Tuple

CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLES = (CONTROL_PLANE, WORKER)

API_SERVER_PORT = 6443  # each control plane's own kube-apiserver
IMAGE_REPOSITORY = "registry.k8s.io"  # the bundled images keep their upstream names
DEFAULT_NAME = "k8s-cluster"  # the cluster name `cluster init` / `config init` writes unless told


@dataclass(frozen=True)
class Node:
    name: str
    ip: IPv4Address
    role: str
    interface: Optional[str] = None  # None: the interface holding `ip`

    @property
    def is_control_plane(self) -> bool:
        return self.role == CONTROL_PLANE


@dataclass(frozen=True)
class ExternalEtcd:
    endpoints: Tuple[str, ...]
    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class CalicoSettings:
    encapsulation: str = "IPIP"  # IPIP | VXLAN | None
    mode: str = "Always"  # Always | CrossSubnet (when encapsulating)

    @property
    def ipip_mode(self) -> str:
        return self.mode if self.encapsulation == "IPIP" else "Never"

    @property
    def vxlan_mode(self) -> str:
        return self.mode if self.encapsulation == "VXLAN" else "Never"

    @property
    def backend(self) -> str:
        """calico_backend: BGP (bird) carries routes unless VXLAN does it alone."""
        return "vxlan" if self.encapsulation == "VXLAN" else "bird"


@dataclass(frozen=True)
class SiteRegistry:
    """The site's registry (cluster.yaml `registry:`): every node's containerd pulls through it first."""

    endpoint: str  # HOST[:PORT], https
    ca_file: str = ""  # a file name beside cluster.yaml ("": the system's trust store)
    prefix: str = ""  # where `images push --prefix` put the repositories ("": at the top)
    ca_pem: str = ""  # the CA certificate's text, read by load_cluster_config (parse_cluster_config has no folder)


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    kubernetes_version: str  # without the leading "v"
    vip: IPv4Address
    api_port: int
    virtual_router_id: int
    vrrp_unicast: bool
    node_network: IPv4Network
    pod_network: IPv4Network
    service_network: IPv4Network
    nodes: Tuple[Node, ...]
    ntp_server: Optional[str] = None  # None: the first control plane serves time
    external_etcd: Optional[ExternalEtcd] = None  # None: stacked etcd on the control planes
    calico: CalicoSettings = CalicoSettings()
    registry: Optional[SiteRegistry] = None  # None: containerd pulls from the images' own registries

    @property
    def control_planes(self) -> List[Node]:
        return [node for node in self.nodes if node.is_control_plane]

    @property
    def workers(self) -> List[Node]:
        return [node for node in self.nodes if not node.is_control_plane]

    @property
    def first_control_plane(self) -> Node:
        return self.control_planes[0]

    @property
    def api_endpoint(self) -> str:
        """controlPlaneEndpoint: the VIP and haproxy's port."""
        return f"{self.vip}:{self.api_port}"

    @property
    def etcd_topology(self) -> str:
        return "external" if self.external_etcd else "stacked"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def time_server(self) -> str:
        """The NTP server every node syncs with."""
        return self.ntp_server or str(self.first_control_plane.ip)

    @property
    def serves_time(self) -> Optional[Node]:
        """The node that runs an NTP server for the others, when no ntp.server is configured."""
        return None if self.ntp_server else self.first_control_plane

    def time_clients(self) -> List[IPv4Network]:
        """Networks the time-serving node allows: the node network plus any node outside it."""
        allowed = [self.node_network]
        allowed += [IPv4Network(f"{n.ip}/32") for n in self.nodes if n.ip not in self.node_network]
        return allowed


def derived_virtual_router_id(cluster_name: str) -> int:
    """A VRRP id in 1..255 that every control plane computes alike from the cluster name."""
    return int(hashlib.sha256(cluster_name.encode()).hexdigest(), 16) % 255 + 1
