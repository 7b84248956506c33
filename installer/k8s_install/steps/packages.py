"""OS packages: the Kubernetes RPMs or .debs and what the node steps use, from the bundle's own repository only.

Wraps k8s_install.packages: on EL9 dnf (plan: `rpm -q`; apply: one dnf transaction with every other repository
off), on Debian and Ubuntu apt (packages/apt.py: plan: `dpkg-query`; apply: one apt-get transaction from the
bundle's apt repository alone, the pinned packages held).
It runs before the runtime binaries, so the CNI plugins 1.4.0 from the tarball are laid over the older
ones of the kubernetes-cni RPM on every run.
"""

from __future__ import annotations

import subprocess
from typing import Any, List, Sequence

from k8s_install.engine import Change, Node, Step
from k8s_install.node.facts import releasever
from k8s_install.packages.apt import install_debs, plan_debs
from k8s_install.packages.dnf import install_packages, plan_packages


def logged_runner(node: Node) -> Any:
    """subprocess.run with the command and its exit code written to the installer log."""

    def run(command: List[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, **kwargs)
        node.host.log(f"run: {' '.join(command)} -> exit {result.returncode}")
        return result

    return run


class Packages(Step):
    name = "packages"
    title = "Kubernetes and system packages from the bundle"

    def plan(self, node: Node) -> List[Change]:
        if node.bundle.manifest.deb_repository is not None:
            return plan_deb_install(node)
        if not node.bundle.manifest.rpms:
            return []  # a bundle for a target without RPMs
        bundle, root = node.bundle, node.host.root
        pending = plan_packages(bundle, root, logged_runner(node))
        if not pending:
            return []
        gpgcheck = not node.options.no_gpgcheck

        def install() -> None:
            node.state.record_packages([change.name for change in pending])
            install_packages(bundle, root, gpgcheck, releasever(node.host), logged_runner(node))

        names = ", ".join(change.nevra for change in pending)
        return [Change(f"dnf install from the bundle: {names}", install)]


def plan_deb_install(node: Node, only: Sequence[str] = ()) -> List[Change]:
    """The apt side (packages/apt.py); `only`: these package names (the upgrade's kubeadm first)."""
    bundle, host = node.bundle, node.host
    pending = [change for change in plan_debs(bundle, host) if not only or change.name in only]
    if not pending:
        return []

    def install() -> None:
        node.state.record_packages([change.name for change in pending if change.install and not change.installed])
        node.state.record_packages(install_debs(bundle, host, pending))

    names = ", ".join(change.describe() for change in pending)
    return [Change(f"apt-get install from the bundle: {names}", install)]
