"""`certs renew` as a step: kubeadm renews its certificates, then the static pods restart to load them.

The control-plane components read their certificates only when they start, and they are static pods: the
kubelet restarts one when its manifest leaves /etc/kubernetes/manifests and comes back. So the manifests
are moved to a holding folder, the kubelet is given its file-check period (20 s) to stop the pods, and they
are moved back; then the local API server must answer again. A run killed while the manifests are out
moves them back first when it is run again.
"""

from __future__ import annotations

import time
from typing import Callable, List

from k8s_install.cluster import kubeadm, paths
from k8s_install.cluster.api_probe import probe_api, wait_for_api
from k8s_install.cluster.model import API_SERVER_PORT
from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.steps.cluster import plan_command
from k8s_install.steps.files import apply_file

MANIFESTS_DIR = "/etc/kubernetes/manifests"
HOLDING_DIR = "/etc/kubernetes/tmp/k8s-install-static-pods"  # beside kubeadm's own backups in /etc/kubernetes/tmp
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KUBELET_FILE_CHECK_SECONDS = 20  # the kubelet's default fileCheckFrequency
API_WAIT_SECONDS = 300.0


def renew_command() -> List[str]:
    return ["kubeadm", "certs", "renew", "all"]


def check_expiration_command() -> List[str]:
    return ["kubeadm", "certs", "check-expiration"]


def live_action(node: Node, summary: str, action: Callable[[], None]) -> List[Change]:
    """An action on the running machine: a --root run logs it and does nothing."""
    if not node.host.live:
        node.host.skipped(f"would run: {summary}")
        return []
    return [Change(summary, action)]


def move_command(source: str, target: str) -> List[str]:
    return ["mv", "--no-target-directory", source, target]


def plan_moves(node: Node, names: List[str], source_dir: str, target_dir: str) -> List[Change]:
    changes: List[Change] = []
    for name in names:
        changes += plan_command(node, move_command(f"{source_dir}/{name}.yaml", f"{target_dir}/{name}.yaml"))
    return changes


def wait_for_local_api(node: Node) -> None:
    ca_pem = node.host.path(f"{paths.KUBERNETES_PKI}/ca.crt").read_text(encoding="utf-8")
    wait_for_api(lambda: probe_api("127.0.0.1", API_SERVER_PORT, ca_pem), API_WAIT_SECONDS, lambda left, why: None)


class RenewCertificates(Step):
    name = "certs-renew"
    title = "kubeadm certificates renewed, static pods restarted"

    def plan(self, node: Node) -> List[Change]:
        host = node.host
        held = [name for name in STATIC_PODS if host.path(f"{HOLDING_DIR}/{name}.yaml").is_file()]
        if held:  # a run stopped while the pods were out: bring them back before anything else
            print(f"  {len(held)} static pod manifest(s) are still in {HOLDING_DIR}: moving them back")
            return plan_moves(node, held, HOLDING_DIR, MANIFESTS_DIR) + live_action(
                node, "wait for the API server at https://127.0.0.1:6443", lambda: wait_for_local_api(node)
            )
        present = [name for name in STATIC_PODS if host.path(f"{MANIFESTS_DIR}/{name}.yaml").is_file()]
        if "kube-apiserver" not in present:
            raise InstallError(
                f"no {MANIFESTS_DIR}/kube-apiserver.yaml: `certs renew` runs on a control plane (workers' kubelet "
                "certificates are renewed by the kubelet itself)"
            )
        copied = kubeadm.root_kubeconfig()  # admin.conf is renewed too: root's kubectl takes the new one

        def refresh() -> None:
            refresh_root_kubeconfig(node)

        changes = plan_command(node, renew_command())
        changes += plan_command(node, ["mkdir", "-p", "-m", "0700", HOLDING_DIR])
        changes += plan_moves(node, present, MANIFESTS_DIR, HOLDING_DIR)
        changes += live_action(
            node,
            f"sleep {KUBELET_FILE_CHECK_SECONDS} (the kubelet stops the static pods)",
            lambda: time.sleep(KUBELET_FILE_CHECK_SECONDS),
        )
        changes += plan_moves(node, present, HOLDING_DIR, MANIFESTS_DIR)
        changes += live_action(
            node, "wait for the API server at https://127.0.0.1:6443", lambda: wait_for_local_api(node)
        )
        return changes + live_action(node, f"copy the renewed {copied.source} to {copied.target}", refresh)


def refresh_root_kubeconfig(node: Node) -> None:
    copied = kubeadm.root_kubeconfig()
    apply_file(node, copied.target, node.host.path(copied.source).read_bytes(), copied.mode)
