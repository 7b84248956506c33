"""`upgrade` (and `upgrade plan`): move this node to the bundle's release in kubeadm's order.

Run it from the new bundle on each node in turn: the first control plane (`--first`), then the other control
planes one at a time, then the workers. Like the install, it shows the changes first, and a re-run goes on
where a stopped run ended.
"""

from __future__ import annotations

import argparse
from typing import Optional

from k8s_install.commands.install import confirm
from k8s_install.commands.node import make_node
from k8s_install.engine import Node, converge
from k8s_install.errors import InstallError
from k8s_install.node.distro import node_distro
from k8s_install.packages.apt import installed_debs
from k8s_install.packages.dnf import installed_packages
from k8s_install.roles import upgrade_steps
from k8s_install.upgrade_record import APISERVER_MANIFEST, UpgradeRecord, apiserver_version, parse_version

UNKNOWN_RELEASE = "cannot tell which Kubernetes release this node runs: pass --from VERSION (e.g. --from 1.29.6)"


def installed_release(node: Node, given: Optional[str]) -> str:
    """The release this node runs: --from, else the installer's record, else the kube-apiserver static pod,
    else the kubeadm package."""
    if given:
        parse_version(given)
        return given.lstrip("v")
    upgrade = node.state.data.get("upgrade") or {}
    if upgrade.get("to") == node.bundle.kubernetes and upgrade.get("from"):
        return str(upgrade["from"])  # a stopped upgrade to this bundle: keep its starting point
    recorded = node.state.data.get("kubernetes")
    if recorded:
        return str(recorded)
    manifest = node.host.path(APISERVER_MANIFEST)
    if manifest.is_file():
        found = apiserver_version(manifest.read_text(encoding="utf-8"))
        if found:
            return found
    if node_distro(node.host).uses_apt:  # the .deb's version: [epoch:]upstream-revision
        version, status = installed_debs(node.host, ["kubeadm"]).get("kubeadm", ("", ""))
        if status.endswith("ok installed"):
            return version.split(":")[-1].split("-", 1)[0]
        raise InstallError(
            "cannot tell which Kubernetes release this node runs: pass --from VERSION (e.g. --from 1.29.6)"
        )
    try:
        nevras = installed_packages(["kubeadm"], node.host.root).get("kubeadm") or []
    except InstallError:
        nevras = []
    if nevras:
        return nevras[0].split(":", 1)[1].split("-", 1)[0]
    raise InstallError(UNKNOWN_RELEASE)


def prepare(args: argparse.Namespace) -> Node:
    if not args.role and not args.node:  # --node names a node of cluster.yaml, and so its role
        raise InstallError("say which node this is: --role control-plane [--first], --role worker, or --node NAME")
    node = make_node(args, dry_run=True)  # verifies the new bundle once
    node.options.delete_emptydir_data = not getattr(args, "no_delete_emptydir_data", False)
    node.options.upgrade = UpgradeRecord(node.state, node.bundle.kubernetes, installed_release(node, args.from_))
    return node


def run_upgrade(args: argparse.Namespace) -> int:
    node = prepare(args)
    upgrade = node.options.upgrade
    assert upgrade is not None  # prepare() records it
    steps = upgrade_steps(node.settings.role, node.settings.first)
    if upgrade.source == node.bundle.kubernetes:
        print(f"{node.settings.name} already runs {node.bundle.kubernetes}: nothing to upgrade")
        return 0
    print(f"upgrade of {node.settings.name}: {upgrade.source} -> {node.bundle.kubernetes}")
    if getattr(args, "action", None) == "plan":
        report = converge(node, steps, dry_run=True)
        print(f"upgrade plan: {report.change_count} change(s) pending; nothing was changed")
        return 0
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options.dry_run = False
    report = converge(node, steps, dry_run=False)
    upgrade.finish()
    restarted = ", ".join(report.restarted)
    node.host.log(f"=== upgrade done: {report.change_count} change(s), restarted {restarted or 'nothing'}")
    print(
        f"upgrade done: {node.settings.name} runs {node.bundle.kubernetes}; {report.change_count} change(s)"
        + (f", restarted {restarted}" if restarted else "")
    )
    return 0
