"""`certs`: every certificate's expiry on this node; `certs renew`: renew kubeadm's on a control plane."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.cert_expiry import WARN_DAYS, expiry_warnings, node_certificates, table, utc_now
from k8s_install.commands.install import confirm
from k8s_install.engine import Node, NodeOptions, converge
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.certificates import RenewCertificates, check_expiration_command


def kubeadm_check_lines(host: Host) -> List[str]:
    """kubeadm's own view, where kubeadm runs (a control plane of the running machine)."""
    command = check_expiration_command()
    printable = " ".join(command)
    if not host.live:
        host.skipped(f"would run: {printable}")
        return [f"  (offline root: on the node run `{printable}`)"]
    if not host.path("/etc/kubernetes/admin.conf").exists() or not host.which("kubeadm"):
        return ["  (not a control plane: kubeadm's check runs on control planes)"]
    result = host.run(command, check=False, timeout=60)
    output = result.stdout.decode("utf-8", "replace") if result.returncode == 0 else result.stderr.decode()
    return ["  " + line for line in output.strip().splitlines()]


def run_certs(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "renew":
        return run_renew(args)
    host = Host(Path(args.root or "/"))
    now = utc_now()
    infos = node_certificates(host)
    print(f"certificates on this node ({now:%Y-%m-%d %H:%M} UTC; 'renew soon' = fewer than {WARN_DAYS} days left):")
    print("\n".join(table(infos, now)) if infos else "  none found (is this node installed?)")
    print("kubeadm certs check-expiration:")
    print("\n".join(kubeadm_check_lines(host)))
    for warning in expiry_warnings(host, now):
        print(f"warning: {warning}")
    return 0


def run_renew(args: argparse.Namespace) -> int:
    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    settings = NodeSettings(role="control-plane", first=False, name="", ip="")
    # renewing reads nothing of a bundle (there may be none on the node)
    no_bundle = Bundle(host.root, BundleManifest(kubernetes="", os="", arch=""))
    node = Node(host=host, state=State(host), bundle=no_bundle, settings=settings, options=NodeOptions(dry_run=True))
    steps = [RenewCertificates()]
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options.dry_run = False
    report = converge(node, steps, dry_run=False)
    print(f"certs renew: {report.change_count} change(s) applied; `k8s-install.pyz certs` shows the new dates")
    return 0
