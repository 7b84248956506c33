"""Issue 23's "done when", live in the lab: one bundle host, three nodes that never hold the tarball.

A fourth machine on the lab's bridge, k8s-bh01, receives the lab's bundle tarball, unpacks it under /srv and
runs `k8s-install.pyz serve` (this machine's nginx copied in, Debian's docker-registry as the registry). The
three cluster nodes receive only `k8s-install.pyz`, `SHA256SUMS`, their secrets and a cluster.yaml whose
`registry:` names the host's registry (HOST:5443, the cluster CA as its ca_file), and install with
`--bundle-url https://HOST:8443` in a user's order: first control plane, second, worker.

Checked: the end state of the lab's tarball install (services, kubelet, images, the VIP, kubeadm's calls);
every file nginx served (its access log, turned on by the test: serve keeps it off) is in the sums and each
node's copy has the listed sha256; no node's disk ever held the tarball; a second run changes nothing and
fetches only the sums; each node's containerd, asked through its CRI socket as kubelet asks, pulls the
bundle's pause image through the host's registry after it was removed locally.

The lab bundle is built unsigned (tests/lab/bundle.py, shared by every lab test): the host's SHA256SUMS is
signed after unpacking with a key made here, as `bundler build --sign-key` would have, so SHA256SUMS.sig is part
of each node's kit and every node checks it (`--trusted-signers`) before fetching anything else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.lab.bundle_host import (
    BUNDLE_URL,
    CONTROL_PLANES,
    HOST,
    HOST_DIR,
    HOST_IP,
    NAMES,
    NODES,
    PULLED,
    REGISTRY,
    SITE_DIR,
    HostLab,
    give_kit,
    start_bundle_host,
)  # fmt: skip
from tests.lab.cluster import BUNDLE_DIR, VIP
from tests.lab.conftest import TIMINGS
from tests.lab.node import LabCluster, installer_pythons, ran_under_python39
from tests.support.bundle_host import make_signer
from tests.support.cri_client import CriImageClient

pytestmark = pytest.mark.xdist_group("lab-bundle-host")  # four nodes of its own: runs beside the shared lab


@pytest.fixture(scope="module")
def host_lab(lab_root_dir: Path, lab_bundle: Tuple[Path, Path]) -> Iterator[HostLab]:
    """The host serving, the three nodes booted with their kit, nothing installed yet."""
    work = Path(tempfile.mkdtemp(prefix="k8sbh-", dir="/var/tmp"))  # short: socket and overlay paths inside
    nodes = LabCluster(lab_root_dir, work)
    try:
        lab = HostLab(nodes, *lab_bundle, signer=make_signer(work / "signer"))
        nodes.add(HOST, f"{HOST_IP}/24")
        start_bundle_host(lab, TIMINGS)
        for name, address in NODES:
            nodes.add(name, address)
            give_kit(lab, name, lab.site / "cluster.yaml")
        yield lab
    finally:
        nodes.close()
        if os.environ.get("K8S_LAB_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(host_lab: HostLab) -> HostLab:
    for name in NAMES:
        run = host_lab.install(name)
        TIMINGS[f"bundle-url install {name}"] = run.seconds
        assert run.result.returncode == 0, f"{name}: {run.output}"
    return host_lab


def test_each_node_installs_from_the_host_with_only_the_kit(installed: HostLab) -> None:
    for name in NAMES:
        output = installed.runs[name][0].output
        assert f"bundle host {HOST_IP}:8443: fetched" in output, output
        assert "[containerd]" in output and "done:" in output, output
        log = installed[name].path("/var/log/k8s-install.log").read_text()
        assert ran_under_python39(log), installer_pythons(log)


def test_the_kits_signature_is_checked_against_the_trusted_signers(installed: HostLab) -> None:
    """`verify --bundle-url` on the worker: the sums it trusts are the host's, signed by the trusted key."""
    node = installed["k8s-wn01"]
    host_folder = installed.host.path(HOST_DIR)
    for kit in ("SHA256SUMS", "SHA256SUMS.sig"):
        assert node.path(f"{BUNDLE_DIR}/{kit}").read_bytes() == (host_folder / kit).read_bytes(), kit
    argv = ["./k8s-install.pyz", "verify", "--role", "worker", "--bundle-url", BUNDLE_URL, "--secrets",
            f"{SITE_DIR}/cluster-secrets-worker.yaml", "--trusted-signers", f"{SITE_DIR}/allowed_signers"]  # fmt: skip
    verified = node.run(argv, timeout=600, check=False, cwd=BUNDLE_DIR)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "signature good: signed by ops@example.org" in verified.stdout, verified.stdout


@pytest.mark.parametrize("name", NAMES)
def test_the_end_state_is_the_tarball_installs(installed: HostLab, name: str) -> None:
    """As tests/lab/test_live_cluster.py checks a node installed from the unpacked tarball."""
    node = installed[name]
    wanted = ["containerd", "chronyd", "firewalld"] + (["keepalived", "haproxy"] if name in CONTROL_PLANES else [])
    assert {unit: node.active(unit) for unit in wanted} == {unit: True for unit in wanted}
    assert node.run(["systemctl", "is-enabled", "kubelet"]).stdout.strip() == "enabled"
    listed = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
    for image in ("127.0.0.1:", PULLED):  # the test busybox keeps its loopback registry's name
        assert any(ref.startswith(image) for ref in listed), listed
    calls = node.path("/var/lib/k8s-lab/calls.jsonl").read_text()
    if name == "k8s-mn01":
        assert '["kubeadm", "init", "--config", "/etc/k8s-install/kubeadm-init.yaml", "--upload-certs"]' in calls
        assert '"apply", "-f", "/etc/k8s-install/calico.yaml"]' in calls
    else:
        assert '["kubeadm", "join", "--config", "/etc/k8s-install/kubeadm-join.yaml"]' in calls
    hosts = node.path("/etc/containerd/certs.d/registry.k8s.io/hosts.toml").read_text()
    assert f'[host."https://{REGISTRY}' in hosts, hosts


def test_the_vip_answers_from_the_worker(installed: HostLab) -> None:
    answer = installed["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
    assert answer.stdout == "ok"


def test_every_file_served_is_in_the_sums_and_each_nodes_copy_matches_them(installed: HostLab) -> None:
    sums = installed.sums()
    host_folder = installed.host.path(HOST_DIR)
    fetched: Dict[str, Dict[str, int]] = {}
    for name, address in NODES:
        ip = address.split("/")[0]
        served = [entry for entry in installed.served() if entry.client == ip and entry.status == 200]
        assert served, f"nginx served nothing to {name}"
        files = {entry.path: entry.size for entry in served if entry.path != "SHA256SUMS"}
        assert set(files) <= set(sums), f"{name} was served files outside the sums: {set(files) - set(sums)}"
        for path, size in files.items():
            assert size == (host_folder / path).stat().st_size, path  # served whole, byte for byte
            copy = installed[name].path(f"{BUNDLE_DIR}/{path}")
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == sums[path], f"{name}: {path}"
        fetched[name] = files
    assert set(fetched["k8s-wn01"]) < set(fetched["k8s-mn01"])  # a worker fetches only what a worker needs
    assert not any(path.endswith("calico.yaml") for path in fetched["k8s-wn01"])
    worker_bytes = sum(fetched["k8s-wn01"].values())
    control_bytes = sum(fetched["k8s-mn01"].values())
    tarball = installed.tarball.stat().st_size
    TIMINGS["bundle-url bytes worker / tarball"] = worker_bytes / tarball
    TIMINGS["bundle-url bytes control plane / tarball"] = control_bytes / tarball
    print(f"\nbytes fetched: worker {worker_bytes:,} ({len(fetched['k8s-wn01'])} files), control plane "
          f"{control_bytes:,} ({len(fetched['k8s-mn01'])} files), tarball {tarball:,}")  # fmt: skip


def test_no_node_ever_held_the_tarball(installed: HostLab) -> None:
    """Nothing of the size of the tarball in any node's own writes (its overlay's upper folder, containerd's)."""
    size = installed.tarball.stat().st_size
    for name in NAMES:
        node = installed[name]
        assert not node.path(f"/root/{installed.tarball.name}").exists()
        for top in (node.work / "upper", node.work / "containerd"):
            for folder, _dirs, files in os.walk(top):
                for file in files:
                    path = Path(folder) / file
                    assert path.is_symlink() or path.stat().st_size != size, f"{name}: {path}"


def test_a_second_run_changes_nothing_and_fetches_only_the_sums(installed: HostLab) -> None:
    before = len(installed.served())
    for name in NAMES:
        run = installed.install(name)
        assert run.result.returncode == 0, run.output
        assert "done: 0 change(s) applied" in run.output, run.output
        assert f"bundle host {HOST_IP}:8443: fetched 0 file(s)" in run.output, run.output
    again = [entry for entry in installed.served()[before:] if entry.status == 200]
    assert {entry.path for entry in again} == {"SHA256SUMS"}, again


def test_each_runtime_pulls_a_bundled_image_through_the_hosts_registry(installed: HostLab) -> None:
    work = Path(tempfile.mkdtemp(prefix="cri-", dir="/tmp"))
    try:
        for name in NAMES:
            node = installed[name]
            node.run(["ctr", "-n", "k8s.io", "images", "rm", "--sync", PULLED])
            link = work / f"{name}.sock"
            link.symlink_to(f"/proc/{node.leader}/root/run/containerd/containerd.sock")
            with CriImageClient(str(link)) as cri:
                assert cri.image_status(PULLED) is None, name
                reference = cri.pull_image(PULLED)  # as kubelet asks: no account, the mirror from hosts.toml
                status = cri.image_status(PULLED)
            assert status is not None and status.id == reference, name
        journal = installed.host.run(["journalctl", "-u", "k8s-bundle-registry.service", "--no-pager"]).stdout
        asked = [line for line in journal.splitlines() if "/v2/pause/manifests/3.9" in line]
        for _name, address in NODES:
            assert any(address.split("/")[0] in line for line in asked), (address, asked[-5:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
