"""OS packages: the Kubernetes RPMs and what the node steps use, from the bundle's own repository only.

Wraps installer.packages (plan: `rpm -q`; apply: one dnf transaction with every other repository off).
It runs before the runtime binaries, so the CNI plugins 1.4.0 from the tarball are laid over the older
ones of the kubernetes-cni RPM on every run.
"""

from __future__ import annotations

import subprocess
from typing import Any, List

from k8s_install.engine import Change, Node, Step
from k8s_install.node.facts import releasever
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
