"""The worker role with the packages step for real: the bundle's RPM repository installs with dnf into the
simulated node's root, inside the test's network namespace (no route anywhere), kubelet's unit comes from
its RPM, and the CNI plugins 1.4.0 win over kubernetes-cni's, on the first run and after a reinstall."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.conftest import REPO
from tests.support.cluster_files import write_cluster
from tests.support.node_bundle import TOP, node_release_manifest
from tests.support.rpm_graph import ASSUMED, RpmGraph
from tests.support.rpm_release import add_rpm_section
from tests.support.sandbox import NetNamespace, make_el9_root
from tests.support.session_cache import shiv_root

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("dnf", "rpm", "ip")), reason="needs root, dnf, rpm, ip"
    ),
]

NODES = [{"name": "cp1", "ip": "10.213.7.11", "role": "control-plane"},
         {"name": "w1", "ip": "10.213.7.21", "role": "worker"}]  # fmt: skip


class NodeRelease:
    """The node's stand-in release as add_rpm_section expects it (mirror, manifest, write)."""

    def __init__(self, mirror, work: Path) -> None:  # type: ignore[no-untyped-def]
        self.mirror = mirror
        self.path = work / "release.yaml"
        self.manifest = node_release_manifest(mirror)

    def write(self) -> Path:
        self.path.write_text(yaml.safe_dump(self.manifest, sort_keys=False))
        return self.path


@pytest.fixture
def bundle(mirror, rpm_graph: RpmGraph, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    work = tmp_path / "build"
    work.mkdir()
    release = NodeRelease(mirror, work)
    add_rpm_section(release, rpm_graph, name="node")
    result = subprocess.run(
        ["python", "-m", "bundler", "build", "--allow-incomplete", "--manifest", str(release.path),
         "--mirror", mirror.url,
         "--cache", str(work / "cache"), "--output", str(work / "out")],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(work / "out" / f"{TOP}.tar"), "-C", str(work)], check=True)
    return work / TOP


@pytest.fixture
def node_root(rpm_graph: RpmGraph, tmp_path: Path) -> Path:
    root = make_el9_root(tmp_path / "node")
    rpms = [str(p) for name, p in rpm_graph.rpms.items() if name.rsplit("-", 2)[0] in ASSUMED]
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", "--nosignature", *rpms], check=True)
    return root


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    with NetNamespace() as created:
        created.add_address("10.213.7.21/24")
        yield created


def run(python39: str, bundle: Path, root: Path, namespace: NetNamespace, tmp_path: Path, *extra: str):
    from k8s_install.cluster.secrets import generate_secrets

    site = tmp_path / "site"
    if not (site / "cluster.yaml").exists():
        write_cluster(site, generate_secrets("it"), NODES)
    node = ["--role", "worker", "--node", "w1", "--config", str(site / "cluster.yaml"),
            "--secrets", str(site / "cluster-secrets.yaml"), "--no-gpgcheck", "--allow-incomplete"]  # fmt: skip
    command = namespace.prefix() + [
        python39, str(bundle / "k8s-install.pyz"), "--root", str(root), *([] if "reset" in extra else node),
        "--yes", *extra,
    ]  # fmt: skip
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def rpm_query(root: Path, *names: str) -> str:
    return subprocess.run(["rpm", "--root", str(root), "-q", *names], capture_output=True, text=True).stdout


def test_worker_installs_packages_offline_and_cni_plugins_stay_1_4_0(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    first = run(python39, bundle, node_root, namespace, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "dnf install from the bundle: kubeadm-0:1.29.6-150500.1.1.x86_64" in first.stdout
    assert "kubelet-1.29.6-150500.1.1.x86_64" in rpm_query(node_root, "kubelet")
    assert (node_root / "etc/systemd/system/multi-user.target.wants/kubelet.service").is_symlink()
    assert (node_root / "opt/cni/bin/bridge").read_text() == "cni-plugins-1.4.0-bridge"
    log = (node_root / "var/log/k8s-install.log").read_text()
    assert "--disablerepo=* --setopt=reposdir=/dev/null" in log

    second = run(python39, bundle, node_root, namespace, tmp_path)
    assert "done: 0 change(s) applied" in second.stdout, second.stdout + second.stderr

    # someone reinstalls kubernetes-cni: its old plugins come back, the next run puts 1.4.0 back
    package = next(bundle.glob("rpms/**/kubernetes-cni-*.rpm"))
    subprocess.run(["rpm", "--root", str(node_root), "-U", "--replacepkgs", "--nodeps", "--nosignature",
                    str(package)], check=True)  # fmt: skip
    assert (node_root / "opt/cni/bin/bridge").read_text().startswith("kubernetes-cni-")
    third = run(python39, bundle, node_root, namespace, tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "update /opt/cni/bin/bridge" in third.stdout
    assert (node_root / "opt/cni/bin/bridge").read_text() == "cni-plugins-1.4.0-bridge"


def test_reset_removes_the_packages_it_installed(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    assert run(python39, bundle, node_root, namespace, tmp_path).returncode == 0
    reset = run(python39, bundle, node_root, namespace, tmp_path, "reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "package kubelet is not installed" in rpm_query(node_root, "kubelet")
    assert not (node_root / "opt/cni/bin/bridge").exists()
