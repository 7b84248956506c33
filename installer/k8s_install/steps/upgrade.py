"""The upgrade steps, in kubeadm's order (kubernetes.io "Upgrading kubeadm clusters"):

first control plane:  new kubeadm package, new images, `kubeadm upgrade plan vX`, `kubeadm upgrade apply vX`,
                      drain, runtime, kubelet + kubectl packages, kubelet restart, uncordon
other control planes: the same with `kubeadm upgrade node` instead of plan/apply (one at a time)
workers:              new kubeadm package, new images, drain, `kubeadm upgrade node`, runtime, packages,
                      kubelet restart, uncordon

Actions on the running cluster are recorded in the upgrade record once done (installer.upgrade), so every
step checks that record before acting; a --root run logs the exact command instead of running it.
"""

from __future__ import annotations

import json
from typing import List, Optional

from k8s_install.cluster import kubeadm, paths
from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.node.facts import releasever
from k8s_install.packages.dnf import dnf_install_command, plan_packages
from k8s_install.steps.files import plan_file
from k8s_install.steps.packages import logged_runner, plan_deb_install
from k8s_install.steps.preflight import check_disk
from k8s_install.upgrade_record import (
    APISERVER_MANIFEST,
    KUBEADM_BACKUPS,
    UpgradeRecord,
    apiserver_version,
    kubeadm_images,
    parse_version,
    skew_problem,
)

KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf"


def record(node: Node) -> UpgradeRecord:
    if node.options.upgrade is None:
        raise AssertionError("an upgrade step runs only under `upgrade`, which records where the node comes from")
    return node.options.upgrade


def target(node: Node) -> str:
    return node.bundle.kubernetes  # type: ignore[no-any-return]


def plan_action(node: Node, action: str, command: List[str], hint: str = "", note: str = "") -> List[Change]:
    """Run `command` once for this upgrade (a --root run logs it); recorded as done when it succeeded. `note`
    follows the command in the plan (what it does beyond its name)."""
    upgrade = record(node)
    if upgrade.done(action):
        return []
    printable = " ".join(command)

    def run() -> None:
        if node.host.live:
            try:
                node.host.run(command, timeout=1800)
            except InstallError as error:
                raise InstallError(f"{error}; {hint}" if hint else str(error)) from None
        else:
            node.host.skipped(f"would run: {printable}")
        upgrade.mark(action)

    return [Change(f"{printable} ({note})" if note else printable, run)]


def plan_manual(node: Node, action: str, summary: str) -> List[Change]:
    """Something the operator does elsewhere (no admin kubeconfig here): shown in the plan, recorded once."""
    upgrade = record(node)
    if upgrade.done(action):
        return []

    def note() -> None:
        node.host.log(f"operator: {summary}")
        upgrade.mark(action)

    return [Change(summary, note)]


def control_plane_at_target(node: Node) -> bool:
    manifest = node.host.path(APISERVER_MANIFEST)
    return manifest.is_file() and apiserver_version(manifest.read_text(encoding="utf-8")) == target(node)


def admin_kubectl(node: Node) -> Optional[List[str]]:
    if node.settings.is_control_plane or node.host.path(paths.ADMIN_KUBECONFIG).exists():
        return ["kubectl", f"--kubeconfig={paths.ADMIN_KUBECONFIG}"]
    return None


class UpgradePreflight(Step):
    name = "upgrade-preflight"
    title = "this node can go to the bundle's release"

    def plan(self, node: Node) -> List[Change]:
        upgrade = record(node)
        problem = skew_problem(upgrade.source, target(node))
        if problem:
            raise InstallError(problem)
        missing = [image for image in kubeadm_images(target(node)) if image not in node.bundle.image_names()]
        if missing:
            raise InstallError(f"the bundle lacks {', '.join(missing)}: kubeadm {target(node)} needs them")
        if "disk" not in node.settings.ignore_preflight:
            short = check_disk(node)
            if short:
                raise InstallError(f"preflight disk: {short}")
        self.check_cluster(node)
        return []

    def check_cluster(self, node: Node) -> None:
        """Control planes: the API is ready. Workers: the control plane already runs the target (a kubelet
        must never be newer than the API server)."""
        if node.settings.is_control_plane:
            command = ["kubectl", f"--kubeconfig={paths.ADMIN_KUBECONFIG}", "get", "--raw", "/readyz"]
        else:
            command = ["kubectl", f"--kubeconfig={KUBELET_KUBECONFIG}", "get", "--raw", "/version"]
        if not node.host.live:
            node.host.skipped(f"would run: {' '.join(command)}")
            return
        result = node.host.run(command, check=False, timeout=30)
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0:
            raise InstallError(f"the cluster does not answer ({' '.join(command)}): fix it before upgrading")
        if node.settings.is_control_plane or record(node).done("kubeadm-upgrade-node"):
            return
        try:
            running = str(json.loads(output)["gitVersion"]).lstrip("v").split("-")[0]
        except (ValueError, KeyError, TypeError):
            raise InstallError(f"cannot read the API server's version from {' '.join(command)}") from None
        if parse_version(running) < parse_version(target(node)):
            raise InstallError(
                f"the control plane runs {running}: upgrade the control planes to {target(node)} before the workers"
            )


class KubeadmPackage(Step):
    """The new kubeadm runs the upgrade, so its package comes first, alone."""

    name = "kubeadm-package"
    title = "the new kubeadm package"

    def plan(self, node: Node) -> List[Change]:
        if node.bundle.manifest.deb_repository is not None:
            return plan_deb_install(node, only=("kubeadm",))
        if not node.bundle.manifest.rpms:
            return []  # a bundle without RPMs
        bundle, root = node.bundle, node.host.root
        pending = [change for change in plan_packages(bundle, root, logged_runner(node)) if change.name == "kubeadm"]
        if not pending:
            return []
        gpgcheck = not node.options.no_gpgcheck

        def install() -> None:
            command = dnf_install_command(bundle, pending, root, gpgcheck, releasever(node.host))
            result = logged_runner(node)(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise InstallError(f"dnf could not install {pending[0].nevra} from the bundle: {result.stderr[-300:]}")

        return [Change(f"dnf install from the bundle: {pending[0].describe()}", install)]


class KubeadmUpgradeApply(Step):
    name = "kubeadm-upgrade"
    title = "kubeadm upgrade plan + apply (first control plane)"
    needs_running = ("containerd",)

    def plan(self, node: Node) -> List[Change]:
        if control_plane_at_target(node):
            return []
        version = f"v{target(node)}"
        changes = plan_action(node, "kubeadm-upgrade-plan", ["kubeadm", "upgrade", "plan", version])
        changes += plan_action(
            node,
            "kubeadm-upgrade-apply",
            ["kubeadm", "upgrade", "apply", version, "--yes"],
            hint=(
                "kubeadm upgrade can be re-run: fix the cause and run this again; kubeadm's backups of etcd and "
                f"the manifests are in {KUBEADM_BACKUPS}/kubeadm-backup-*"
            ),
        )
        if changes:
            print(
                f"  kubeadm keeps its etcd and static pod backups in {KUBEADM_BACKUPS}/kubeadm-backup-etcd-<date>-"
                "<time> and kubeadm-backup-manifests-<date>-<time> (not removed automatically)"
            )
        return changes


class KubeadmUpgradeNode(Step):
    name = "kubeadm-upgrade"
    title = "kubeadm upgrade node"
    needs_running = ("containerd",)

    def plan(self, node: Node) -> List[Change]:
        if node.settings.is_control_plane and control_plane_at_target(node):
            return []
        return plan_action(
            node,
            "kubeadm-upgrade-node",
            ["kubeadm", "upgrade", "node"],
            hint="kubeadm upgrade node can be re-run: fix the cause and run this again",
        )


DRAIN_DELETES_EMPTYDIR = (
    "pods with emptyDir volumes are evicted too and their emptyDir data deleted, as on any eviction; "
    "upgrade --no-delete-emptydir-data drains without it, and then such a pod stops the drain"
)
DRAIN_REFUSES_EMPTYDIR = "--no-delete-emptydir-data: a pod with an emptyDir volume stops the drain"


def drain_arguments(node: Node, name: str) -> List[str]:
    """kubeadm's guide drains with --ignore-daemonsets; --delete-emptydir-data as well by default, so a pod
    with scratch space (an emptyDir volume, lost on any rescheduling) does not stop an upgrade half-way with
    the node cordoned. `upgrade --no-delete-emptydir-data` leaves it out."""
    arguments = ["drain", name, "--ignore-daemonsets"]
    if node.options.delete_emptydir_data:
        arguments.append("--delete-emptydir-data")
    return arguments


class Drain(Step):
    name = "drain"
    title = "node drained before its kubelet is upgraded"

    def plan(self, node: Node) -> List[Change]:
        if record(node).done("kubelet-restarted"):
            return []  # past the kubelet upgrade: a drain now would only take the node out again
        name = node.settings.name
        kubectl = admin_kubectl(node)
        arguments = drain_arguments(node, name)
        note = DRAIN_DELETES_EMPTYDIR if "--delete-emptydir-data" in arguments else DRAIN_REFUSES_EMPTYDIR
        if kubectl is None:
            return plan_manual(
                node,
                "drain",
                f"drain {name} from a control plane before confirming: kubectl {' '.join(arguments)} "
                f"(this node has no admin kubeconfig; {note})",
            )
        return plan_action(node, "drain", [*kubectl, *arguments], note=note)


class KubeletRestart(Step):
    name = "kubelet-restart"
    title = "kubelet restarted on the new version"

    def plan(self, node: Node) -> List[Change]:
        upgrade = record(node)
        if upgrade.done("kubelet-restarted"):
            return []

        def mark() -> None:  # the engine restarts the kubelet (daemon-reload first) once the packages are in
            upgrade.mark("kubelet-restarted")

        return [Change("systemctl daemon-reload && systemctl restart kubelet", mark, ("kubelet",))]


class Uncordon(Step):
    name = "uncordon"
    title = "node back in service"
    needs_running = ("containerd", "kubelet")

    def plan(self, node: Node) -> List[Change]:
        upgrade = record(node)
        if not upgrade.done("drain") or upgrade.done("uncordon"):
            return []
        name = node.settings.name
        kubectl = admin_kubectl(node)
        if kubectl is None:
            return plan_manual(node, "uncordon", f"uncordon {name} from a control plane: kubectl uncordon {name}")
        return plan_action(node, "uncordon", [*kubectl, "uncordon", name])


class KubeadmConfigFiles(Step):
    """The installer's kubeadm config (used again by `join-info`) in the new release's API version: from 1.31
    kubeadm.k8s.io/v1beta4. A node without the secrets (a worker given none) keeps its file."""

    name = "kubeadm-config"
    title = "kubeadm configuration for the new release"

    def plan(self, node: Node) -> List[Change]:
        settings = node.settings
        if settings.secrets is None:
            return []
        if settings.first:
            text = kubeadm.render_init_config(settings.cluster_config(), settings.cluster_node(), settings.secrets)
            return plan_file(node, paths.KUBEADM_INIT_CONFIG, text.encode(), 0o600)
        text = kubeadm.render_join_config(settings.cluster_config(), settings.cluster_node(), settings.secrets)
        return plan_file(node, paths.KUBEADM_JOIN_CONFIG, text.encode(), 0o600)
