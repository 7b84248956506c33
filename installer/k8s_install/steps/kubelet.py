"""kubelet enabled at boot; kubeadm starts it with its configuration (cluster steps)."""

from __future__ import annotations

from typing import List

from k8s_install.engine import Change, Node, Step
from k8s_install.steps.services import plan_enabled


class KubeletEnabled(Step):
    name = "kubelet"
    title = "kubelet enabled"

    def plan(self, node: Node) -> List[Change]:
        # kubelet crash-loops until kubeadm writes its config: enabling, not starting, is the node's job.
        return plan_enabled(node, "kubelet.service", start=False)
