"""Time: chrony syncs every node from the cluster NTP server or the first control plane.

The first control plane serves its time to the node subnet and, with no upstream NTP
server reachable in an air gap, keeps serving from its own clock (`local stratum 10`) so the cluster
agrees with itself: etcd and certificates care about agreement, not about UTC.
"""

from __future__ import annotations

from typing import List

from k8s_install.engine import Change, Node, Step
from k8s_install.steps.files import plan_file, with_header
from k8s_install.steps.services import plan_enabled

CHRONY_CONF = "/etc/chrony.conf"


def chrony_conf(node: Node) -> str:
    settings = node.settings
    lines = []
    for server in settings.time_servers:
        lines.append(f"server {server} iburst")
    lines += [
        "driftfile /var/lib/chrony/drift",
        "makestep 1.0 3",
        "rtcsync",
        "keyfile /etc/chrony.keys",
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
        changes = plan_file(node, CHRONY_CONF, chrony_conf(node).encode(), 0o644, restarts=("chronyd",))
        return changes + plan_enabled(node, "chronyd", required=node.host.live)
