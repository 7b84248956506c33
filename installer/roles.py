"""Roles as ordered data: which steps run on a node, in which order."""

from __future__ import annotations

from typing import List

from installer.engine import Step
from installer.steps.chrony import Chrony
from installer.steps.cluster import ApiVip, Calico, ClusterFiles, KubeadmInit, KubeadmJoin
from installer.steps.containerd import ContainerdConfig, RuntimeServices
from installer.steps.firewall import Firewall
from installer.steps.images import Images
from installer.steps.kernel import KernelModules, Sysctl
from installer.steps.kubelet import KubeletEnabled
from installer.steps.leftovers import Leftovers
from installer.steps.packages import Packages
from installer.steps.preflight import Preflight
from installer.steps.runtime import RuntimeBinaries
from installer.steps.system import Hostname, Selinux, Swap


def node_steps() -> List[Step]:
    """What every node gets: from a fresh EL9 install to containerd running, images loaded, kubelet enabled."""
    return [
        Preflight(),
        Leftovers(),  # temporary files a killed run left
        Hostname(),
        Swap(),
        Selinux(),
        Firewall(),
        Packages(),  # chrony, keepalived, haproxy, kubelet... come from the bundle's repository
        Chrony(),
        KernelModules(),
        Sysctl(),
        RuntimeBinaries(),  # after the packages: CNI plugins 1.4.0 win over kubernetes-cni's
        ContainerdConfig(),
        RuntimeServices(),
        Images(),
        KubeletEnabled(),
    ]


def steps_for(role: str, first: bool) -> List[Step]:
    """The node steps, then the API VIP and kubeadm for the role; Calico from the first control plane."""
    steps = node_steps()
    if role == "worker":
        return steps + [KubeadmJoin()]
    steps += [ClusterFiles(), ApiVip()]
    return steps + ([KubeadmInit(), Calico()] if first else [KubeadmJoin()])


def upgrade_steps(role: str, first: bool) -> List[Step]:
    """kubeadm's upgrade order for this node (installer/steps/upgrade.py); the runtime goes to the bundle's
    release while the node is drained."""
    from installer.steps import upgrade

    kubeadm: List[Step] = [upgrade.KubeadmUpgradeApply() if first else upgrade.KubeadmUpgradeNode()]
    before = [upgrade.UpgradePreflight(), upgrade.KubeadmPackage(), Images()]
    if role == "worker":  # workers: drained before `kubeadm upgrade node`
        before += [upgrade.Drain(), *kubeadm]
    else:  # control planes: the control plane first, then drained for the kubelet
        before += [*kubeadm, upgrade.Drain()]
    runtime: List[Step] = [RuntimeBinaries(), ContainerdConfig(), Packages()]
    return before + runtime + [upgrade.KubeletRestart(), upgrade.Uncordon(), upgrade.KubeadmConfigFiles()]
