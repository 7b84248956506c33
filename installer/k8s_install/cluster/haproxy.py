"""haproxy.cfg for a control plane: the VIP port in TCP mode to every control plane's API server."""

from __future__ import annotations

from k8s_install.cluster import paths
from k8s_install.cluster.model import API_SERVER_PORT, ClusterConfig
from k8s_install.cluster.render import render


def render_haproxy_cfg(
    config: ClusterConfig,
    ca_file: str = paths.CLUSTER_CA_CERT,
    monitor_port: int = paths.HAPROXY_MONITOR_PORT,
) -> str:
    """The same file on every control plane: it binds *:port, so it runs whether or not it holds the VIP."""
    return render(
        "haproxy.cfg.j2",
        cluster=config.name,
        vip=str(config.vip),
        port=config.api_port,
        monitor_port=monitor_port,
        ca_file=ca_file,
        server_name=paths.API_SERVER_NAME,
        api_server_port=API_SERVER_PORT,
        servers=[{"name": node.name, "ip": str(node.ip)} for node in config.control_planes],
    )
