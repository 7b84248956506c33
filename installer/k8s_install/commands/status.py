"""`status`: the node's own view: services, the installer's record, images, and the cluster via kubectl.

The facts are gathered once into a document (`--json` prints it; its fields are in docs/json-output.md), and the
text view is rendered from the same document.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

from k8s_install import report
from k8s_install.node.host import Host
from k8s_install.node.state import State

SERVICES = ("containerd", "buildkitd", "kubelet", "chronyd", "keepalived", "haproxy")
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
OFFLINE = "n/a (offline root)"


def services(host: Host) -> List[Dict[str, str]]:
    found = []
    for service in SERVICES:
        enabled = host.run(host.systemctl("is-enabled", service), check=False).stdout.decode().strip() or "absent"
        if host.live:
            active = host.run(["systemctl", "is-active", service], check=False).stdout.decode().strip()
        else:
            active = OFFLINE
        found.append({"name": service, "enabled": enabled, "active": active})
    return found


def images(args: argparse.Namespace, host: Host) -> Dict[str, Any]:
    """How many of the bundle's images containerd holds in k8s.io (when the bundle and containerd are here)."""
    from k8s_install.bundle_format.bundle import Bundle
    from k8s_install.bundle_format.opened import open_bundle
    from k8s_install.commands.node import bundle_dir
    from k8s_install.errors import InstallError
    from k8s_install.images.containerd_import import DEFAULT_ADDRESS, bundle_images, find_ctr, images_to_import

    address = args.containerd_address or (DEFAULT_ADDRESS if host.live else None)
    if address is None:
        return {"checked": False, "reason": "pass --containerd-address to ask a containerd (offline root)"}
    try:
        with open_bundle(bundle_dir(args), check_files=False) as opened:  # bundle.yaml checked, files not hashed
            bundle = Bundle(bundle_dir(args), opened.manifest)
        listed = bundle_images(bundle)
        missing = images_to_import(bundle, find_ctr(None), address)
    except InstallError as error:
        return {"checked": False, "reason": str(error)}
    return {
        "checked": True,
        "bundled": len(listed),
        "present": len(listed) - len(missing),
        "missing": [image.name for image in missing],
    }


def cluster(host: Host) -> Dict[str, Any]:
    if not host.live or not host.path(ADMIN_KUBECONFIG).exists() or not host.which("kubectl"):
        return {"available": False, "reason": "not available on this node (no admin kubeconfig)", "output": []}
    lines: List[str] = []
    for what in (["get", "nodes", "-o", "wide"], ["get", "pods", "-A"]):
        result = host.run(["kubectl", f"--kubeconfig={ADMIN_KUBECONFIG}", *what], check=False, timeout=30)
        output = result.stdout.decode("utf-8", "replace") if result.returncode == 0 else result.stderr.decode()
        lines += output.strip().splitlines()
    return {"available": True, "reason": None, "output": lines}


def status_document(args: argparse.Namespace) -> Dict[str, Any]:
    host = Host(Path(args.root or "/"))
    state = State(host)
    return {
        "root": str(host.root),
        "services": services(host),
        "installer": {
            "completed": bool(state.data.get("completed")),
            "files_managed": len(state.files()),
            "restarts_pending": list(state.pending_restarts()),
        },
        "images": images(args, host),
        "cluster": cluster(host),
        "certificate_warnings": certificate_warnings(host),
    }


def render(doc: Dict[str, Any]) -> List[str]:
    lines = ["services:"]
    for service in doc["services"]:
        lines.append(f"  {service['name']:<11} enabled: {service['enabled']:<9} active: {service['active']}")
    record = doc["installer"]
    lines.append(
        f"installer: last run completed: {'yes' if record['completed'] else 'no'}; "
        f"files managed: {record['files_managed']}; restarts pending: {', '.join(record['restarts_pending']) or 'none'}"
    )
    found = doc["images"]
    if not found["checked"]:
        lines.append(f"  images: {found['reason']}" if "--containerd-address" in found["reason"]
                     else f"  images: unknown ({found['reason']})")  # fmt: skip
    else:
        lines.append(f"  images: {found['present']} of {found['bundled']} bundled images present in k8s.io")
        lines += [f"    missing: {name}" for name in found["missing"]]
    lines.append("cluster:")
    kube = doc["cluster"]
    lines += [f"  {line}" for line in kube["output"]] if kube["available"] else [f"  kubectl: {kube['reason']}"]
    lines += certificate_lines(doc["certificate_warnings"])
    return lines


def run_status(args: argparse.Namespace) -> int:
    doc = status_document(args)
    if getattr(args, "json", False):
        report.emit("status", doc)
        return 0
    print("\n".join(render(doc)))
    return 0


def certificate_warnings(host: Host) -> List[str]:
    from k8s_install.cert_expiry import expiry_warnings

    return list(expiry_warnings(host))


def certificate_lines(warnings: List[str]) -> List[str]:
    from k8s_install.cert_expiry import WARN_DAYS

    if not warnings:
        return [f"certificates: none expires within {WARN_DAYS} days (`certs` lists them)"]
    return [f"warning: {warning}" for warning in warnings]
