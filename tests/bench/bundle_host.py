"""One bundle host against the tarball carried to every node (issue 23), on the lab's systemd-nspawn nodes.

The lab's bundle is built once; a bundle host (tests/lab/bundle_host.py) receives it and runs `serve`; a first
control plane installs from it; then BENCH_WORKERS workers (default 6):

- from the host: each has only the kit and runs `--role worker --bundle-url https://HOST:8443`, all at once;
  bytes each fetched are read from the host's nginx access log;
- baseline, measured in the same run on the same workers after `reset`: the tarball copied to each over SSH
  from an admin machine on the lab's bridge (scp, all at once, as Ansible's copy would), unpacked on the
  node, and installed from the folder, all at once.

The host-first order favours the baseline a little (its nodes were installed once already: the reset leaves
the node's dnf cache and the package database's history). No timing assertion anywhere: figures only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import yaml

from k8s_install.cluster.secrets import generate_secrets
from tests.lab.bundle import make_lab_bundle
from tests.lab.bundle_host import HOST, HOST_IP, HostLab, give_kit, start_bundle_host
from tests.lab.cluster import BUNDLE_DIR
from tests.lab.conftest import lab_prerequisites
from tests.lab.node import LabCluster
from tests.lab.root import lab_root
from tests.lab.ssh import lab_ssh
from tests.support.cluster_files import CLUSTER_NAME, SEED_NODES, SUBNET, cluster_document
from tests.support.ssh_nodes import SshNodes
from tests.support.test_images import build_test_images, missing_tools

FIRST = ("k8s-mn01", f"{SUBNET}.11/24")
ADMIN_ADDRESS = f"{SUBNET}.4/24"
WORKER_ROLE = ("--role", "worker")


def workers(count: int) -> List[Tuple[str, str]]:
    return [(f"k8s-wn{number:02d}", f"{SUBNET}.{99 + number}") for number in range(1, count + 1)]


def wide_cluster_yaml(folder: Path, count: int) -> Path:
    """The lab's cluster.yaml with `count` workers (the nodes pass it with --config)."""
    nodes = [node for node in SEED_NODES if node["role"] == "control-plane"]
    nodes += [{"name": name, "ip": ip, "role": "worker"} for name, ip in workers(count)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster_document(nodes), sort_keys=False))
    return path


def at_once(names: Sequence[str], work: Callable[[str], None]) -> float:
    """Wall time of `work` run for every name at once."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        for future in [pool.submit(work, name) for name in names]:
            future.result()
    return time.monotonic() - started


def checked(lab: HostLab, name: str, from_host: bool) -> None:
    run = lab.install(name, WORKER_ROLE, from_host=from_host)
    if run.result.returncode != 0:
        raise RuntimeError(f"{name}: install failed: {run.output[-2000:]}")


def scp(ssh: SshNodes, tarball: Path, address: str) -> None:
    options = ["-q", "-o", f"UserKnownHostsFile={ssh.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", f"IdentityFile={ssh.client_key}", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]  # fmt: skip
    argv = ["ip", "netns", "exec", ssh.lab.hosts[ssh.admin], "scp", *options, str(tarball), f"root@{address}:/root/"]
    subprocess.run(argv, check=True, capture_output=True, timeout=1800)


def run() -> List[str]:
    reason = lab_prerequisites() or (f"needs {', '.join(missing_tools())}" if missing_tools() else "")
    if reason:
        return [f"skipped: {reason}"]
    count = int(os.environ.get("BENCH_WORKERS", "6"))
    timings: Dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="k8sbh-bench-", dir="/var/tmp"))
    try:
        root = lab_root(timings)
        images = build_test_images(work / "images")
        tarball, site = make_lab_bundle(work / "bundle", images.storage, generate_secrets(CLUSTER_NAME), timings)
        nodes = LabCluster(root, work / "nodes")
        try:
            return measure(HostLab(nodes, tarball, site), count, wide_cluster_yaml(work / "wide", count), timings)
        finally:
            nodes.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(lab: HostLab, count: int, cluster_yaml: Path, timings: Dict[str, float]) -> List[str]:
    nodes = lab.nodes
    nodes.add(HOST, f"{HOST_IP}/24")
    start_bundle_host(lab, timings)
    names = [name for name, _ in workers(count)]
    for name, address in [FIRST, *[(name, f"{ip}/24") for name, ip in workers(count)]]:
        nodes.add(name, address)
        give_kit(lab, name, cluster_yaml)
    ssh = lab_ssh(nodes, nodes.work / "ssh", ADMIN_ADDRESS)
    try:
        first = lab.install(FIRST[0])
        if first.result.returncode != 0:
            raise RuntimeError(f"{FIRST[0]}: install failed: {first.output[-2000:]}")
        served_before = len(lab.served())
        from_host = at_once(names, lambda name: checked(lab, name, True))
        served = [entry for entry in lab.served()[served_before:] if entry.status == 200]
        per_worker = [sum(entry.size for entry in served if entry.client == lab[name].address) for name in names]

        at_once(names, lambda name: lab[name].run(["./k8s-install.pyz", "reset", "--yes"], timeout=900,
                                                  cwd=BUNDLE_DIR, unit=f"k8s-bench-reset-{name}"))  # fmt: skip
        for name in names:
            shutil.rmtree(lab[name].path(BUNDLE_DIR))
        copy = at_once(names, lambda name: scp(ssh, lab.tarball, lab[name].address))
        unpack_and_install = at_once(names, lambda name: unpack_and_install_from_tarball(lab, name))
    finally:
        ssh.close()
    tarball = lab.tarball.stat().st_size
    carried = copy + unpack_and_install
    average = sum(per_worker) / len(per_worker)
    return [
        f"{count} workers (plus the bundle host and a first control plane: {len(nodes.nodes)} nodes on "
        f"{os.cpu_count()} cores); tarball {tarball:,} bytes; serve on the host {timings['bundle host serve']:.1f} s",
        f"bytes a worker fetched from the host: {average:,.0f} on average "
        f"({average / tarball:.2f}x the tarball; min {min(per_worker):,}, max {max(per_worker):,})",
        f"{count} workers installed at once from one host: {from_host:.1f} s; the tarball carried to each "
        f"(scp at once {copy:.1f} s) then unpacked and installed at once ({unpack_and_install:.1f} s): "
        f"{carried:.1f} s; host / carried = {from_host / carried:.2f}x",
    ]


def unpack_and_install_from_tarball(lab: HostLab, name: str) -> None:
    node = lab[name]
    node.run(["tar", "-xf", lab.tarball.name], timeout=900, unit=f"k8s-bench-untar-{name}")
    checked(lab, name, False)


if __name__ == "__main__":
    print("\n".join(run()))
