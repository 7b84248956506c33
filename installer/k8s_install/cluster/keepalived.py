"""keepalived.conf and its health-check script for one control plane.

The first control plane starts MASTER with the highest priority, the others BACKUP with decreasing
priority. A failing check puts a node in FAULT (no weight), which hands the VIP to the next node at
once; when the check passes `rise` times again, the first node preempts and takes the VIP back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from k8s_install.cluster import paths
from k8s_install.cluster.model import API_SERVER_PORT, ClusterConfig, Node
from k8s_install.cluster.render import render

TOP_PRIORITY = 150
PRIORITY_STEP = 10


@dataclass(frozen=True)
class CheckTiming:
    interval: int = 2  # seconds between checks
    fall: int = 2  # failures before FAULT
    rise: int = 2  # successes before leaving FAULT
    curl_seconds: int = 2  # per request; two requests fit in `timeout`

    @property
    def timeout(self) -> int:
        return 2 * self.curl_seconds + 1


def vrrp_priority(config: ClusterConfig, node: Node) -> int:
    index = [n.name for n in config.control_planes].index(node.name)
    return max(1, TOP_PRIORITY - PRIORITY_STEP * index)


def vrrp_state(config: ClusterConfig, node: Node) -> str:
    return "MASTER" if node.name == config.first_control_plane.name else "BACKUP"


def render_keepalived_conf(
    config: ClusterConfig,
    node: Node,
    interface: str,
    password: str,
    check_script: str = paths.CHECK_SCRIPT,
    timing: CheckTiming = CheckTiming(),
) -> str:
    if not node.is_control_plane:
        raise ValueError(f"{node.name} is not a control plane")
    peers: List[str] = []
    if config.vrrp_unicast:
        peers = [str(other.ip) for other in config.control_planes if other.name != node.name]
    return render(
        "keepalived.conf.j2",
        cluster=config.name,
        node_name=node.name,
        node_ip=str(node.ip),
        instance=f"k8s_api_{config.virtual_router_id}",
        state=vrrp_state(config, node),
        priority=vrrp_priority(config, node),
        interface=interface,
        virtual_router_id=config.virtual_router_id,
        password=password,
        unicast_peers=peers,
        vip=str(config.vip),
        prefixlen=config.node_network.prefixlen,
        check_script=check_script,
        check_interval=timing.interval,
        check_timeout=timing.timeout,
        check_fall=timing.fall,
        check_rise=timing.rise,
    )


def render_check_script(
    config: ClusterConfig,
    ca_file: str = paths.CLUSTER_CA_CERT,
    monitor_port: int = paths.HAPROXY_MONITOR_PORT,
    timing: CheckTiming = CheckTiming(),
) -> str:
    return render(
        "check_apiserver.sh.j2",
        vip=str(config.vip),
        check_interval=timing.interval,
        curl_seconds=timing.curl_seconds,
        monitor_port=monitor_port,
        ca_file=ca_file,
        server_name=paths.API_SERVER_NAME,
        api_server_port=API_SERVER_PORT,
    )
