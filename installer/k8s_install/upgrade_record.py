"""What an upgrade needs to know: the release this node runs, the skew rules, and the upgrade's own record.

The record (`upgrade` in /var/lib/k8s-install/state.json) names the target release and the actions done for
it, each written right after it succeeded: a run killed half-way goes on from the next action, and a
finished upgrade re-run changes nothing. A later upgrade (another target) starts a new record.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

import yaml

from k8s_install.errors import InstallError

APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
KUBEADM_BACKUPS = "/etc/kubernetes/tmp"  # kubeadm-backup-etcd-<date>-<time>, kubeadm-backup-manifests-<date>-<time>
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def parse_version(text: str) -> Tuple[int, int, int]:
    match = _VERSION.match(text.strip())
    if not match:
        raise InstallError(f"{text!r} is not a Kubernetes version like 1.29.6")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def skew_problem(installed: str, target: str) -> Optional[str]:
    """Why this node cannot go from `installed` to `target` (kubeadm: one minor at a time, no downgrade)."""
    old, new = parse_version(installed), parse_version(target)
    if new < old:
        return f"this node runs {installed}, newer than the bundle's {target}: downgrades are not supported"
    if new[0] != old[0]:
        return f"{installed} -> {target} changes the major version: not supported"
    if new[1] - old[1] > 1:
        step = f"{old[0]}.{old[1] + 1}"
        return (
            f"{installed} -> {target} skips a minor version: kubeadm upgrades one minor at a time; upgrade every "
            f"node to a {step} bundle first"
        )
    return None


def apiserver_version(manifest_text: str) -> Optional[str]:
    """The version of the kube-apiserver static pod (its image tag), e.g. '1.29.6'."""
    try:
        pod = yaml.safe_load(manifest_text) or {}
        containers = pod["spec"]["containers"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    for container in containers or []:
        image = str(container.get("image", ""))
        name, _, tag = image.rpartition(":")
        if name.endswith("/kube-apiserver") and _VERSION.match(tag):
            return tag.lstrip("v")
    return None


def kubeadm_images(version: str) -> List[str]:
    """The control-plane images kubeadm of `version` runs (etcd, CoreDNS, pause vary: bundle.yaml has them)."""
    return [
        f"registry.k8s.io/{name}:v{version}"
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    ]


class UpgradeRecord:
    """The `upgrade` entry of the installer's state: target, source release and the actions done."""

    def __init__(self, state: Any, target: str, installed: str) -> None:
        self.state = state
        record: Dict[str, Any] = state.data.get("upgrade") or {}
        if record.get("to") != target:
            record = {"from": installed, "to": target, "done": []}
            state.data["upgrade"] = record
        self.record = record

    @property
    def source(self) -> str:
        return str(self.record["from"])

    def done(self, action: str) -> bool:
        return action in self.record["done"]

    def mark(self, action: str) -> None:
        if action not in self.record["done"]:
            self.record["done"].append(action)
        self.state.data["upgrade"] = self.record
        self.state.save()

    def finish(self) -> None:
        self.record["completed"] = True
        self.state.data["kubernetes"] = self.record["to"]
        self.state.save()
