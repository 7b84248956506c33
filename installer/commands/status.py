"""`status`: the node's own view: services, the installer's record, images, and the cluster via kubectl."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from installer.host import Host
from installer.state import State

SERVICES = ("containerd", "buildkitd", "kubelet", "chronyd", "keepalived", "haproxy")
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"


def service_lines(host: Host) -> List[str]:
    lines = []
    for service in SERVICES:
        enabled = host.run(host.systemctl("is-enabled", service), check=False).stdout.decode().strip() or "absent"
        if host.live:
            active = host.run(["systemctl", "is-active", service], check=False).stdout.decode().strip()
        else:
            active = "n/a (offline root)"
        lines.append(f"  {service:<11} enabled: {enabled:<9} active: {active}")
    return lines


def image_lines(args: argparse.Namespace, host: Host) -> List[str]:
    """How many of the bundle's images containerd holds in k8s.io (when the bundle and containerd are here)."""
    from installer.commands.node import bundle_dir
    from installer.errors import InstallError
    from installer.images import DEFAULT_ADDRESS, bundle_images, find_ctr, images_to_import

    address = args.containerd_address or (DEFAULT_ADDRESS if host.live else None)
    if address is None:
        return ["  images: pass --containerd-address to ask a containerd (offline root)"]
    try:
        bundle = bundle_dir(args)
        listed = bundle_images(bundle)
        missing = images_to_import(bundle, find_ctr(None), address)
    except InstallError as error:
        return [f"  images: unknown ({error})"]
    lines = [f"  images: {len(listed) - len(missing)} of {len(listed)} bundled images present in k8s.io"]
    lines += [f"    missing: {image.name}" for image in missing]
    return lines


def cluster_lines(host: Host) -> List[str]:
    if not host.live or not host.path(ADMIN_KUBECONFIG).exists() or not host.which("kubectl"):
        return ["  kubectl: not available on this node (no admin kubeconfig)"]
    lines = []
    for what in (["get", "nodes", "-o", "wide"], ["get", "pods", "-A"]):
        result = host.run(["kubectl", f"--kubeconfig={ADMIN_KUBECONFIG}", *what], check=False, timeout=30)
        output = result.stdout.decode("utf-8", "replace") if result.returncode == 0 else result.stderr.decode()
        lines += ["  " + line for line in output.strip().splitlines()]
    return lines


def run_status(args: argparse.Namespace) -> int:
    host = Host(Path(args.root or "/"))
    state = State(host)
    print("services:")
    print("\n".join(service_lines(host)))
    completed = "yes" if state.data.get("completed") else "no"
    print(f"installer: last run completed: {completed}; files managed: {len(state.files())}; "
          f"restarts pending: {', '.join(state.pending_restarts()) or 'none'}")  # fmt: skip
    print("\n".join(image_lines(args, host)))
    print("cluster:")
    print("\n".join(cluster_lines(host)))
    print("\n".join(certificate_lines(host)))
    return 0


def certificate_lines(host: Host) -> List[str]:
    from installer.certs import WARN_DAYS, expiry_warnings

    warnings = expiry_warnings(host)
    if not warnings:
        return [f"certificates: none expires within {WARN_DAYS} days (`certs` lists them)"]
    return [f"warning: {warning}" for warning in warnings]
