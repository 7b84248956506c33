"""The cluster steps: the API VIP (keepalived + haproxy) on control planes, kubeadm init/join, Calico.

kubeadm and kubectl act on the running system, so a --root run writes every file and logs the exact
command it would run instead of running it.
"""

from __future__ import annotations

import sys
from typing import Callable, List

from k8s_install.bundle_format.layout import SECRETS_NAME, WORKER_SECRETS_NAME
from k8s_install.cluster import kubeadm, paths
from k8s_install.cluster.api_probe import probe_api, wait_for_api
from k8s_install.cluster.calico import render_calico
from k8s_install.cluster.haproxy import render_haproxy_cfg
from k8s_install.cluster.keepalived import render_check_script, render_keepalived_conf
from k8s_install.cluster.secrets import ClusterSecrets, secrets_text
from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.steps.files import plan_file, sha256_bytes
from k8s_install.steps.services import plan_enabled

CALICO_MANIFEST = f"{paths.STATE_DIR}/calico.yaml"
CALICO_APPLIED_KEY = "calico_applied_sha256"  # in the installer's state: the manifest the cluster was given
JOIN_WAIT_SECONDS = 900.0


def require_secrets(node: Node) -> ClusterSecrets:
    secrets = node.settings.secrets
    if secrets is None:
        # a worker: the worker-only file is enough, and keeps the CA key off it
        wanted = SECRETS_NAME if node.settings.is_control_plane else f"{WORKER_SECRETS_NAME} (or {SECRETS_NAME})"
        raise InstallError(
            f"no {wanted}: copy the file `bundler cluster init` wrote to this node (0600) and pass "
            "--secrets FILE, or put it beside the bundle folder"
        )
    return secrets


KUBEADM_RETRY_HINT = "fix the cause (journalctl -u kubelet), run `kubeadm reset --force`, then run this again"


def plan_command(
    node: Node, command: List[str], before: Callable[[], None] = lambda: None, hint: str = ""
) -> List[Change]:
    """A change that runs `command` on the live system; a --root run only logs the exact command.
    `hint` is added to a failure: kubeadm leaves a half-made node behind that must be reset first."""
    printable = " ".join(command)
    if not node.host.live:
        node.host.skipped(f"would run: {printable}")
        return []

    def run() -> None:
        before()
        try:
            node.host.run(command, timeout=1800)
        except InstallError as error:
            raise InstallError(f"{error}; {hint}" if hint else str(error)) from None

    return [Change(printable, run)]


class ClusterFiles(Step):
    name = "cluster-files"
    title = "cluster CA certificate and secrets on the control plane"

    def plan(self, node: Node) -> List[Change]:
        secrets = require_secrets(node)
        placed = kubeadm.public_ca_file(secrets)
        changes = plan_file(node, placed.path, placed.content.encode(), placed.mode)
        # control planes keep the secrets for `join-info`; workers never store the CA key
        changes += plan_file(node, paths.INSTALLED_SECRETS, secrets_text(secrets).encode(), 0o600)
        return changes


class ApiVip(Step):
    name = "api-vip"
    title = "keepalived + haproxy for the API VIP"

    def plan(self, node: Node) -> List[Change]:
        settings = node.settings
        config, me, secrets = settings.cluster_config(), settings.cluster_node(), require_secrets(node)
        keepalived = render_keepalived_conf(config, me, settings.interface, secrets.keepalived_password)
        changes = plan_file(node, paths.KEEPALIVED_CONF, keepalived.encode(), 0o600, ("keepalived",))
        changes += plan_file(node, paths.CHECK_SCRIPT, render_check_script(config).encode(), 0o755, ("keepalived",))
        changes += plan_file(node, paths.HAPROXY_CFG, render_haproxy_cfg(config).encode(), 0o644, ("haproxy",))
        required = node.host.live  # a --root image may hold stand-in packages without units
        changes += plan_enabled(node, "haproxy.service", required=required)
        changes += plan_enabled(node, "keepalived.service", required=required)
        return changes


class KubeadmInit(Step):
    """The first control plane: the pre-made CA in place, then `kubeadm init --upload-certs`."""

    name = "kubeadm"
    title = "kubeadm init (first control plane)"
    needs_settled = True  # kubeadm starts the kubelet and static pods: every restart is done before it

    def plan(self, node: Node) -> List[Change]:
        settings = node.settings
        secrets = require_secrets(node)
        changes: List[Change] = []
        for placed in kubeadm.preplaced_ca_files(secrets):
            changes += plan_file(node, placed.path, placed.content.encode(), placed.mode)
        init = kubeadm.render_init_config(settings.cluster_config(), settings.cluster_node(), secrets)
        changes += plan_file(node, paths.KUBEADM_INIT_CONFIG, init.encode(), 0o600)
        if not node.host.path(paths.ADMIN_KUBECONFIG).exists():
            changes += plan_command(node, kubeadm.init_command(), hint=KUBEADM_RETRY_HINT)
        return changes + plan_root_kubeconfig(node)


class KubeadmJoin(Step):
    """Other nodes: wait (with a countdown) for the API behind the VIP, then `kubeadm join --config`."""

    name = "kubeadm"
    title = "kubeadm join"
    needs_settled = True  # kubeadm starts the kubelet and static pods: every restart is done before it

    def plan(self, node: Node) -> List[Change]:
        settings = node.settings
        secrets = require_secrets(node)
        join = kubeadm.render_join_config(settings.cluster_config(), settings.cluster_node(), secrets)
        changes = plan_file(node, paths.KUBEADM_JOIN_CONFIG, join.encode(), 0o600)
        if not node.host.path("/etc/kubernetes/kubelet.conf").exists():
            changes += plan_command(
                node, kubeadm.join_command(), before=lambda: wait_until_api_answers(node), hint=KUBEADM_RETRY_HINT
            )
        if settings.is_control_plane:
            changes += plan_root_kubeconfig(node)
        return changes


def wait_until_api_answers(node: Node) -> None:
    config, secrets = node.settings.cluster_config(), require_secrets(node)

    def report(left: int, why: str) -> None:
        # flushed: on a pipe (ssh without a tty, a log) the countdown must show while it waits, not after
        print(f"\r    waiting for the API at {config.api_endpoint} ({why}): {left:4d} s left ", end="", file=sys.stderr,
              flush=True)  # fmt: skip

    wait_for_api(lambda: probe_api(str(config.vip), config.api_port, secrets.ca_cert_pem), JOIN_WAIT_SECONDS, report)
    print(file=sys.stderr)


def plan_root_kubeconfig(node: Node) -> List[Change]:
    copied = kubeadm.root_kubeconfig()
    source = node.host.path(copied.source)
    if not source.exists():
        if node.host.live and not node.options.dry_run:
            return [Change(f"copy {copied.source} to {copied.target}", lambda: _copy_kubeconfig(node))]
        node.host.skipped(f"copy {copied.source} to {copied.target} (written by kubeadm)")
        return []
    return plan_file(node, copied.target, source.read_bytes(), copied.mode)


def _copy_kubeconfig(node: Node) -> None:
    from k8s_install.steps.files import apply_file

    copied = kubeadm.root_kubeconfig()
    apply_file(node, copied.target, node.host.path(copied.source).read_bytes(), copied.mode)


class Calico(Step):
    name = "calico"
    title = "Calico network (applied from the first control plane)"

    def plan(self, node: Node) -> List[Change]:
        return plan_calico(node, ask_cluster=True)


class CalicoUpgrade(Step):
    """kubeadm's upgrade order: the CNI plugin after `kubeadm upgrade apply` on the first control plane. A
    bundle whose Calico manifest differs from the one applied (a release carrying another Calico) applies
    it; an unchanged one runs no kubectl at all."""

    name = "calico"
    title = "Calico network upgraded (first control plane)"

    def plan(self, node: Node) -> List[Change]:
        return plan_calico(node, ask_cluster=False)


def plan_calico(node: Node, ask_cluster: bool) -> List[Change]:
    """Render the bundle's Calico manifest for this cluster and `kubectl apply` it when it differs from the
    one last applied (kept in the state, so a failed apply is retried even though the file is written), or
    (with `ask_cluster`) when the cluster has no calico-node DaemonSet yet."""
    source = node.bundle.artifact("calico-manifest")
    data = render_calico(source.read_text(encoding="utf-8"), node.settings.cluster_config()).encode()
    changes = plan_file(node, CALICO_MANIFEST, data, 0o644)
    applied = node.state.data.get(CALICO_APPLIED_KEY)
    stale = applied != sha256_bytes(data) if applied else bool(changes)
    if not stale and not (ask_cluster and not calico_applied(node)):
        return changes
    command = ["kubectl", f"--kubeconfig={paths.ADMIN_KUBECONFIG}", "apply", "-f", CALICO_MANIFEST]
    for change in plan_command(node, command):

        def apply_and_record(change: Change = change) -> None:
            change.apply()
            node.state.data[CALICO_APPLIED_KEY] = sha256_bytes(data)
            node.state.save()

        changes.append(Change(change.summary, apply_and_record, change.restarts))
    return changes


def calico_applied(node: Node) -> bool:
    if not node.host.live:
        return True  # nothing to ask: the file comparison decides
    result = node.host.run(
        ["kubectl", f"--kubeconfig={paths.ADMIN_KUBECONFIG}", "-n", "kube-system", "get", "daemonset", "calico-node"],
        check=False,
    )
    return result.returncode == 0
