"""What the node steps need to know about this node, derived from the cluster config and the flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, FrozenSet, List, Optional, Tuple

if TYPE_CHECKING:  # types only: settings stay importable without the cluster code
    from k8s_install.cluster.model import ClusterConfig
    from k8s_install.cluster.model import Node as ClusterNode
    from k8s_install.cluster.secrets import ClusterSecrets

ROLES = ("control-plane", "worker")
FIREWALL_MODES = ("firewalld", "disable")


@dataclass(frozen=True)
class NodeSettings:
    role: str
    first: bool
    name: str
    ip: str
    hosts: Tuple[Tuple[str, str], ...] = ()  # (ip, name) of every node of the cluster
    time_servers: Tuple[str, ...] = ()  # where this node takes its time from
    serve_time_to: Optional[str] = None  # subnet this node serves time to (the first control plane)
    firewall: str = "firewalld"
    api_vip_port: int = 8443
    ignore_preflight: FrozenSet[str] = field(default_factory=frozenset)
    containerd_address: Optional[str] = None  # a running containerd to import into (for --root runs)
    cluster: Optional[ClusterConfig] = None
    node: Optional[ClusterNode] = None  # this node in the cluster config
    interface: str = ""  # the interface holding the node's IP (keepalived puts the VIP there)
    secrets: Optional[ClusterSecrets] = None

    def cluster_config(self) -> ClusterConfig:
        """The cluster config, for the steps that render cluster files (the settings of every install have it)."""
        if self.cluster is None:
            raise AssertionError("a cluster step ran with settings made without a cluster config")
        return self.cluster

    def cluster_node(self) -> ClusterNode:
        """This node in the cluster config."""
        if self.node is None:
            raise AssertionError("a cluster step ran with settings made without a cluster config")
        return self.node

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"

    def ports(self) -> List[str]:
        """firewalld port specs this role must accept."""
        # kubelet, kube-proxy health, NodePort services (TCP and UDP), Calico BGP / VXLAN / Typha
        common = ["10250/tcp", "10256/tcp", "30000-32767/tcp", "30000-32767/udp", "179/tcp", "4789/udp", "5473/tcp"]
        time = ["123/udp"] if self.serve_time_to else []  # NTP, on the node that serves time to the others
        if self.is_control_plane:
            return ["6443/tcp", "2379-2380/tcp", "10257/tcp", "10259/tcp", f"{self.api_vip_port}/tcp"] + common + time
        return common + time

    def protocols(self) -> List[str]:
        """IP protocols: IPIP (4) for Calico, VRRP (112) for keepalived on control planes."""
        return ["4", "112"] if self.is_control_plane else ["4"]
