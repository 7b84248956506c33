"""Running the installer live on lab nodes, as a user would: the bundle tarball copied onto the node,
unpacked there, the secrets file beside it, then `./k8s-install.pyz --role ... --yes` from the bundle folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from tests.lab.node import LabCluster, LabNode
from tests.support.cluster_files import CLUSTER_NAME, SUBNET
from tests.support.node_bundle import TOP

VIP = f"{SUBNET}.240"
LAB_NODES = (("k8s-mn01", f"{SUBNET}.11/24"), ("k8s-mn02", f"{SUBNET}.22/24"), ("k8s-wn01", f"{SUBNET}.100/24"))
LAB_TOP = f"{TOP}-{CLUSTER_NAME}"  # built with --cluster: the cluster's name ends the bundle's name
BUNDLE_DIR = f"/root/{LAB_TOP}"
ROLES: Dict[str, Tuple[str, ...]] = {
    "k8s-mn01": ("--role", "control-plane", "--first"),
    "k8s-mn02": ("--role", "control-plane"),
    "k8s-wn01": ("--role", "worker"),
}
INSTALLED_SERVICES = ("containerd", "keepalived", "haproxy", "chronyd", "firewalld", "buildkitd")


@dataclass
class Run:
    result: subprocess.CompletedProcess
    seconds: float

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


class LiveCluster:
    def __init__(self, nodes: LabCluster, tarball: Path, site: Path, bundle_dir: str = BUNDLE_DIR) -> None:
        self.nodes = nodes
        self.tarball = tarball
        self.site = site
        self.bundle_dir = bundle_dir  # where the tarball unpacks on the node (its name: OS and cluster)
        self.runs: Dict[str, List[Run]] = {}
        self.count = 0

    def __getitem__(self, name: str) -> LabNode:
        return self.nodes.nodes[name]

    def unpack_everywhere(self) -> None:
        for name, node in self.nodes.nodes.items():
            shutil.copy2(self.tarball, node.path(f"/root/{self.tarball.name}"))
            node.run(["tar", "-xf", self.tarball.name])
            secrets = "cluster-secrets-worker.yaml" if "wn" in name else "cluster-secrets.yaml"
            target = node.path(f"/root/{secrets}")
            shutil.copy2(self.site / secrets, target)
            target.chmod(0o600)

    def installer(self, name: str, *command: str) -> List[str]:
        """The command with the options it takes (the installer refuses any other)."""
        verb = command[0] if command else "install"
        if verb in ("status", "reset"):
            return ["./k8s-install.pyz", *command] + (["--yes"] if verb == "reset" else [])
        if verb == "join-info":
            return ["./k8s-install.pyz", *command, *ROLES[name]]
        confirm = [] if verb in ("plan", "preflight") else ["--yes"]
        return ["./k8s-install.pyz", *command, *ROLES[name], "--allow-incomplete", *confirm]

    def install(self, name: str, *command: str, timeout: float = 900) -> Run:
        started = time.monotonic()
        self.count += 1
        argv = self.installer(name, *command)
        unit = f"k8s-lab-run-{self.count}"
        result = self[name].run(argv, timeout=timeout, check=False, cwd=self.bundle_dir, unit=unit)
        run = Run(result, time.monotonic() - started)
        self.runs.setdefault(name, []).append(run)
        return run

    def install_every_role(self) -> LiveCluster:
        """Each role installed in the order a user would (first control plane, second, worker); a no-op
        re-run where an earlier module installed them."""
        for name, _address in LAB_NODES:
            run = self.install(name)
            assert run.result.returncode == 0, f"{name}: {run.output}"
        return self

    def start_install(self, name: str, log: Path, unit: str) -> subprocess.Popen:
        return self[name].popen(self.installer(name), log, cwd=self.bundle_dir, unit=unit)

    def kill_install(self, name: str, unit: str) -> None:
        """SIGKILL the installer itself (the unit's main process), as `kill -9 PID` would."""
        self[name].run(["systemctl", "kill", "--signal=SIGKILL", "--kill-whom=main", unit])

    def vip_holders(self) -> List[str]:
        holders = []
        for name in ("k8s-mn01", "k8s-mn02"):
            shown = self[name].run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
            if f" {VIP}/" in shown:
                holders.append(name)
        return holders

    def wait_for_vip_holder(self, timeout: float, not_on: Optional[str] = None) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            holders = self.vip_holders()
            if len(holders) == 1 and holders[0] != not_on:
                return holders[0]
            time.sleep(0.2)
        raise AssertionError(f"no single VIP holder (other than {not_on}) within {timeout:.0f} s: {self.vip_holders()}")

    def service_starts(self, name: str) -> Dict[str, str]:
        """unit -> its invocation id: a restart changes it."""
        node = self[name]
        found = {}
        for unit in INSTALLED_SERVICES:
            found[unit] = node.unit(unit, "InvocationID").get("InvocationID", "")
        return found


def boot_lab(
    root: Path, tarball: Path, site: Path, work: Path, timings: Dict[str, float], bundle_dir: str = BUNDLE_DIR
) -> LiveCluster:
    """The three nodes booted from `root` with the bundle unpacked on each; the caller closes `.nodes`."""
    nodes = LabCluster(root, work)
    try:
        nodes.add_all(LAB_NODES)
        for name, _address in LAB_NODES:
            timings[f"boot {name}"] = nodes.boot_seconds[name]
        cluster = LiveCluster(nodes, tarball, site, bundle_dir)
        cluster.unpack_everywhere()
    except BaseException:
        nodes.close()
        raise
    return cluster


@contextlib.contextmanager
def booted_lab(
    root: Path, tarball: Path, site: Path, prefix: str, timings: Dict[str, float], bundle_dir: str = BUNDLE_DIR
) -> Iterator[LiveCluster]:
    """boot_lab in a work folder of its own under /var/tmp (short: containerd's socket and the overlay options
    inside must stay short); the nodes closed and the folder removed afterwards (kept with K8S_LAB_KEEP=1)."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    cluster = boot_lab(root, tarball, site, work, timings, bundle_dir)
    try:
        yield cluster
    finally:
        cluster.nodes.close()
        if os.environ.get("K8S_LAB_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
