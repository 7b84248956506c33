"""Time: chrony syncs every node from the cluster NTP server or the first control plane.

The first control plane serves its time to the node subnet and, with no upstream NTP
server reachable in an air gap, keeps serving from its own clock (`local stratum 10`) so the cluster
agrees with itself: etcd and certificates care about agreement, not about UTC.
"""

from __future__ import annotations

from typing import List

from k8s_install.engine import Change, Node, Step
from k8s_install.node.distro import node_distro
from k8s_install.steps.files import plan_file, with_header
from k8s_install.steps.services import plan_enabled

CHRONY_CONF = "/etc/chrony.conf"  # EL9's; each distribution's path is in k8s_install/node/distro.py


def chrony_conf(node: Node) -> str:
    settings = node.settings
    distro = node_distro(node.host)
    lines = []
    for server in settings.time_servers:
        lines.append(f"server {server} iburst")
    lines += [
        f"driftfile {distro.chrony_driftfile}",
        "makestep 1.0 3",
        "rtcsync",
        f"keyfile {distro.chrony_keyfile}",
        "leapsectz right/UTC",
        "logdir /var/log/chrony",
    ]
    if settings.serve_time_to:
        lines += [f"allow {network}" for network in settings.serve_time_to.split()]
        lines.append("local stratum 10")
    return with_header("\n".join(lines) + "\n")


class Chrony(Step):
    name = "time"
    title = "chrony time sync"

    def plan(self, node: Node) -> List[Change]:
        distro = node_distro(node.host)
        service = distro.chrony_service
        changes = plan_file(node, distro.chrony_conf, chrony_conf(node).encode(), 0o644, restarts=(service,))
        return changes + plan_enabled(node, service, required=node.host.live)
