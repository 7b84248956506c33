"""The lab's next releases, as delta bundles of the lab bundle's shape: a stand-in 1.29.15 over the lab bundle
(1.29.6), and a stand-in 1.30.14 over that 1.29.15.

The real builder makes each the way tests/lab/bundle.py makes the lab bundle (kubeadm, kubelet and kubectl
RPMs of the release from that minor's stand-in "kubernetes" repository, the same runtime files), with kubeadm's
control-plane images of the release (the test busybox under their names in the loopback registry, which the
upgrade imports and its preflight requires) and cluster.yaml moved to the release; `--from` the older
bundle's tarball, so only the delta is written. A delta's tarball holds the complete SHA256SUMS of its
release, so it serves as `--from` for the next delta as well as the full bundle would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from k8s_install.upgrade_record import kubeadm_images
from tests.lab.bundle import build_lab_bundle
from tests.lab.cluster import BUNDLE_DIR, ROLES, LiveCluster, Run
from tests.lab.node import LabNode
from tests.lab.standins import CALLS_LOG
from tests.support.registry import Registry

INSTALLED_RELEASE = "1.29.6"  # the lab bundle's
NEXT_RELEASE = "1.29.15"  # a patch release: the same minor
NEXT_MINOR_RELEASE = "1.30.14"  # the next minor: kubeadm upgrades one minor at a time


def release_dir(version: str) -> str:
    """Where a release's bundle (or completed delta) is unpacked on a lab node, beside the lab bundle."""
    return BUNDLE_DIR.replace(INSTALLED_RELEASE, version)


def next_release_site(site: Path, work: Path, version: str = NEXT_RELEASE) -> Path:
    """A copy of the lab's cluster.yaml (and its secrets) with kubernetes_version moved to `version`."""
    shutil.copytree(site, work)
    config = work / "cluster.yaml"
    document = yaml.safe_load(config.read_text())
    document["kubernetes_version"] = version
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return work


def make_delta(
    work: Path,
    image_storage: Path,
    site: Path,
    old: Path,
    timings: Dict[str, float],
    version: str = NEXT_RELEASE,
    old_version: str = INSTALLED_RELEASE,
) -> Path:
    """The delta tarball of the lab's release `version` over the bundle (or delta) tarball `old` of `old_version`."""
    new_site = next_release_site(site, work / "site", version)
    storage = work / "registry-storage"
    shutil.copytree(image_storage, storage)
    started = time.monotonic()
    with Registry(storage, work / "registry") as registry:
        for image in kubeadm_images(version):
            mirrored = image.replace("registry.k8s.io/", f"docker://{registry.host}/mirrored/")
            subprocess.run(
                ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                 f"docker://{registry.host}/test/busybox:1.0", mirrored],
                check=True, capture_output=True,
            )  # fmt: skip
        images: List[str] = [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9", *kubeadm_images(version)]
        config = new_site / "cluster.yaml"
        delta = build_lab_bundle(work / "build", config, images, registry, version, "--from", str(old))
    timings[f"delta build {old_version} -> {version}"] = time.monotonic() - started
    return delta


def unpack_delta(node: LabNode, delta: Path) -> None:
    """Copy the delta tarball into /root of `node` and unpack it there, beside the bundle folder(s) already there."""
    shutil.copy2(delta, node.path(f"/root/{delta.name}"))
    node.run(["tar", "-xf", delta.name])
    node.path(f"/root/{delta.name}").unlink()


def calls(cluster: LiveCluster, name: str) -> List[List[str]]:
    """Every kubeadm, kubelet and kubectl call recorded on the node (tests/lab/standins.py), in order."""
    path = cluster[name].path(CALLS_LOG)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_upgrade(cluster: LiveCluster, name: str, version: str) -> Run:
    """`./k8s-install.pyz upgrade --role ... --yes` from the unpacked bundle of `version`."""
    cluster.count += 1
    started = time.monotonic()
    argv = ["./k8s-install.pyz", "upgrade", *ROLES[name], "--allow-incomplete", "--yes"]
    unit = f"k8s-lab-upgrade-{cluster.count}"
    result = cluster[name].run(argv, timeout=900, check=False, cwd=release_dir(version), unit=unit)
    return Run(result, time.monotonic() - started)


def commands_and_kubelet_starts(made: List[List[str]]) -> Tuple[List[List[str]], int]:
    """The kubeadm and kubectl calls in order, and how many times the kubelet (a unit) started: it records
    itself when systemd has started it, so its place among the other calls is not the installer's order."""
    return [call for call in made if call != ["kubelet"]], made.count(["kubelet"])


def upgrade_with_calls(
    cluster: LiveCluster, name: str, version: str, timings: Dict[str, float], label: str
) -> Tuple[List[List[str]], int]:
    """Upgrade the node to `version` (it must succeed), timed as `label`; the calls it made."""
    before = len(calls(cluster, name))
    kubelet = cluster[name].unit("kubelet", "InvocationID").get("InvocationID", "")
    run = run_upgrade(cluster, name, version)
    timings[label] = run.seconds
    assert run.result.returncode == 0, run.output
    assert f"upgrade done: {name} runs {version}" in run.output, run.output
    if cluster[name].unit("kubelet", "InvocationID").get("InvocationID", "") != kubelet:
        wait_for_kubelet_record(cluster, name, before)
    return commands_and_kubelet_starts(calls(cluster, name)[before:])


UNITS = ("containerd", "kubelet", "keepalived", "haproxy", "chronyd", "firewalld", "buildkitd")


def assert_rerun_changes_nothing(
    cluster: LiveCluster, nodes: Tuple[str, ...], version: str, timings: Dict[str, float], label: str
) -> None:
    """Run `upgrade` to `version` again on every node: 0 changes, no kubeadm/kubectl call but the preflight's
    question, and no unit restarted (same InvocationID); each run timed as `label NODE`."""
    before = {name: {unit: cluster[name].unit(unit, "InvocationID").get("InvocationID", "") for unit in UNITS}
              for name in nodes}  # fmt: skip
    for name in nodes:
        count = len(calls(cluster, name))
        run = run_upgrade(cluster, name, version)
        timings[f"{label} {name}"] = run.seconds
        assert run.result.returncode == 0, run.output
        assert f"upgrade done: {name} runs {version}; 0 change(s)" in run.output, run.output
        probe = "/version" if name == "k8s-wn01" else "/readyz"
        assert [call[-1] for call in calls(cluster, name)[count:]] == [probe]  # only the preflight's question
    for name in nodes:
        after = {unit: cluster[name].unit(unit, "InvocationID").get("InvocationID", "") for unit in UNITS}
        assert after == before[name], name


def wait_for_kubelet_record(cluster: LiveCluster, name: str, since: int, timeout: float = 30) -> None:
    """A restarted kubelet records itself once its process runs, which may be just after the installer ended."""
    deadline = time.monotonic() + timeout
    while ["kubelet"] not in calls(cluster, name)[since:] and time.monotonic() < deadline:
        time.sleep(0.1)
