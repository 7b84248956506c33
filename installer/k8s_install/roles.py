"""Roles as ordered data: which steps run on a node, in which order."""

from __future__ import annotations

from typing import List

from k8s_install.engine import Step
from k8s_install.steps.chrony import Chrony
from k8s_install.steps.cluster import ApiVip, Calico, CalicoUpgrade, ClusterFiles, KubeadmInit, KubeadmJoin
from k8s_install.steps.containerd import ContainerdConfig, RuntimeServices
from k8s_install.steps.firewall import Firewall
from k8s_install.steps.image_import import Images, RoleImages
from k8s_install.steps.kernel import KernelModules, Sysctl
from k8s_install.steps.kubelet import KubeletEnabled
from k8s_install.steps.leftovers import Leftovers
from k8s_install.steps.packages import Packages
from k8s_install.steps.preflight import Preflight
from k8s_install.steps.registry import RegistryMirrors
from k8s_install.steps.runtime import RuntimeBinaries
from k8s_install.steps.system import Hostname, Selinux, Swap


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
        RegistryMirrors(),  # hosts.toml: containerd reads them at each pull, no restart
        RuntimeServices(),
        Images(),
        KubeletEnabled(),
    ]


def steps_for(role: str, first: bool) -> List[Step]:
    """The node steps, then the API VIP and kubeadm for the role (once every image it will run is there);
    Calico from the first control plane."""
    steps = node_steps()
    if role == "worker":
        return steps + [RoleImages(), KubeadmJoin()]
    steps += [ClusterFiles(), ApiVip(), RoleImages()]
    return steps + ([KubeadmInit(), Calico()] if first else [KubeadmJoin()])


def upgrade_steps(role: str, first: bool) -> List[Step]:
    """kubeadm's upgrade order for this node (k8s_install/steps/upgrade.py): Calico right after `kubeadm upgrade
    apply` on the first control plane; the runtime goes to the bundle's release while the node is drained."""
    from k8s_install.steps import upgrade

    kubeadm: List[Step] = [upgrade.KubeadmUpgradeApply(), CalicoUpgrade()] if first else [upgrade.KubeadmUpgradeNode()]
    before = [upgrade.UpgradePreflight(), upgrade.KubeadmPackage(), Images()]
    if role == "worker":  # workers: drained before `kubeadm upgrade node`
        before += [upgrade.Drain(), *kubeadm]
    else:  # control planes: the control plane first, then drained for the kubelet
        before += [*kubeadm, upgrade.Drain()]
    runtime: List[Step] = [RuntimeBinaries(), ContainerdConfig(), RegistryMirrors(), Packages()]
    return before + runtime + [upgrade.KubeletRestart(), upgrade.Uncordon(), upgrade.KubeadmConfigFiles()]
