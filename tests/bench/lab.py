"""Live installs on the lab's systemd-nspawn nodes (tests/lab): wall time per role from the unpacked bundle
to a converged node, the second run's time, and how long the API VIP takes to move.

Baselines measured in the same run: the same role's `plan` (reads every fact, changes nothing) for the
installs, and the first run for the second one; VRRP's advertisement interval (1 s) for the failovers.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from k8s_install.cluster.secrets import generate_secrets
from tests.lab.bundle import make_lab_bundle
from tests.lab.cluster import LAB_NODES, LiveCluster, boot_lab
from tests.lab.conftest import lab_prerequisites
from tests.lab.root import lab_root
from tests.support.cluster_files import CLUSTER_NAME
from tests.support.test_images import build_test_images, missing_tools

ROLE_NAMES = {"k8s-mn01": "first control plane", "k8s-mn02": "second control plane", "k8s-wn01": "worker"}
ADVERT_SECONDS = 1.0


def timed_install(cluster: LiveCluster, name: str, *command: str) -> float:
    run = cluster.install(name, *command)
    if run.result.returncode != 0:
        raise RuntimeError(f"{name}: {' '.join(command) or 'install'} failed: {run.output[-2000:]}")
    return run.seconds


def failover_seconds(cluster: LiveCluster, service: str) -> float:
    holder = cluster.wait_for_vip_holder(60)
    started = time.monotonic()
    cluster[holder].run(["systemctl", "stop", service])
    try:
        cluster.wait_for_vip_holder(60, not_on=holder)
        return time.monotonic() - started
    finally:
        cluster[holder].run(["systemctl", "start", service])
        cluster.wait_for_vip_holder(60)


def run() -> List[str]:
    reason = lab_prerequisites() or (f"needs {', '.join(missing_tools())}" if missing_tools() else "")
    if reason:
        return [f"skipped: {reason}"]
    timings: Dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="k8slab-bench-", dir="/var/tmp"))
    try:
        root = lab_root(timings)
        images = build_test_images(work / "images")
        tarball, site = make_lab_bundle(work / "bundle", images.storage, generate_secrets(CLUSTER_NAME), timings)
        cluster = boot_lab(root, tarball, site, work / "nodes", timings)
        try:
            return measure(cluster, timings)
        finally:
            cluster.nodes.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(cluster: LiveCluster, timings: Dict[str, float]) -> List[str]:
    lines = []
    if "base root build" in timings:
        lines.append(f"lab root built from Debian's registry in {timings['base root build']:.0f} s (then cached)")
    boots = [timings[f"boot {name}"] for name, _ in LAB_NODES]
    boot_text = ", ".join(f"{seconds:.1f}" for seconds in boots)
    lines.append(f"node boot to multi-user: {boot_text} s; bundle build {timings['bundle build']:.0f} s")
    for name, _ in LAB_NODES:
        plan = timed_install(cluster, name, "plan")
        first = timed_install(cluster, name)
        second = timed_install(cluster, name)
        lines.append(
            f"{ROLE_NAMES[name]}: live install {first:.1f} s ({first / plan:.1f}x its plan, {plan:.1f} s); "
            f"second run {second:.1f} s ({second / first:.2f}x the first)"
        )
    for service in ("keepalived", "haproxy"):
        seconds = failover_seconds(cluster, service)
        lines.append(f"VIP moved after stopping {service} on its holder: {seconds:.1f} s "
                     f"({seconds / ADVERT_SECONDS:.1f}x VRRP's advertisement interval)")  # fmt: skip
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
