"""The Debian 12 lab: a `--os debian12` bundle installed live on three Debian 12 nodes (tests/lab/debian.py), with
the EL9 lab's checks (tests/lab/test_live_cluster.py): every role converges, its services run, a second run
changes and restarts nothing, reset undoes it. The packages come from the bundle's apt repository with the
node's real apt (stand-in kubeadm, kubelet and kubectl .debs); everything else is Debian 12's own.

Its own nodes, root and bundle, made once for the module: a group of its own beside the other lab modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.lab.bundle import make_lab_bundle
from tests.lab.cluster import VIP, LiveCluster, booted_lab
from tests.lab.conftest import TIMINGS, require_lab
from tests.lab.debian import KUBE_VERSION, bundle_top, debian_release, debian_root
from tests.lab.node import installer_pythons, ran_under_python39
from tests.lab.test_live_cluster import probe
from tests.support.cluster_files import SUBNET

pytestmark = pytest.mark.xdist_group("lab-debian")

CONTROL_PLANES = ("k8s-mn01", "k8s-mn02")
NODES = CONTROL_PLANES + ("k8s-wn01",)
KUBE = ("kubeadm", "kubelet", "kubectl")
IMAGES = ("127.0.0.1:", "registry.k8s.io/pause:3.9")  # the test busybox keeps its loopback registry's name
DEBIAN_SERVICES = ("containerd", "chrony", "firewalld", "keepalived", "haproxy", "buildkitd")


@pytest.fixture(scope="module")
def debian_bundle(pushed_images, cluster_secrets, tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:  # type: ignore[no-untyped-def]
    require_lab()
    work = tmp_path_factory.mktemp("debian-bundle")
    tarball, site = make_lab_bundle(
        work, pushed_images.storage, cluster_secrets, TIMINGS, "--os", "debian12", release_maker=debian_release
    )
    TIMINGS["debian12 bundle build"] = TIMINGS.pop("bundle build")
    return tarball, site


@pytest.fixture(scope="module")
def debian_lab(debian_bundle: Tuple[Path, Path]) -> Iterator[LiveCluster]:
    """Three booted Debian 12 nodes with the bundle unpacked, nothing installed yet."""
    root = debian_root(TIMINGS)
    tarball, site = debian_bundle
    with booted_lab(root, tarball, site, "k8sdeb-", TIMINGS, bundle_dir=f"/root/{bundle_top(tarball)}") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def installed(debian_lab: LiveCluster) -> LiveCluster:
    for name in NODES:
        run = debian_lab.install(name)
        TIMINGS[f"debian12 live install {name}"] = run.seconds
        assert run.result.returncode == 0, f"{name}: {run.output}"
    return debian_lab


def dpkg(node, *names: str) -> Dict[str, str]:  # type: ignore[no-untyped-def]
    """name -> "version status" of those dpkg knows."""
    shown = node.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\\n", *names], check=False).stdout
    return {line.split()[0]: " ".join(line.split()[1:]) for line in shown.splitlines() if line.strip()}


def test_every_role_converges_with_apt_from_the_bundle_alone(installed: LiveCluster) -> None:
    for name in NODES:
        output = installed.runs[name][0].output
        assert "[packages]" in output and "apt-get install from the bundle: install kubeadm 1.29.6-1.1" in output
        assert "[containerd]" in output and "done:" in output, output
        assert (
            "[selinux] SELinux permissive (as kubeadm's guide requires without a policy for it): AppArmor node"
            in output
        )
        node = installed[name]
        assert dpkg(node, *KUBE) == {package: f"{KUBE_VERSION} hold ok installed" for package in KUBE}
        assert not any(node.path("/etc/apt/sources.list.d").iterdir())  # the node's apt sources are its own
        log = node.path("/var/log/k8s-install.log").read_text()
        assert "skipped (offline root" not in log
        assert ran_under_python39(log), installer_pythons(log)


@pytest.mark.parametrize("name", NODES)
def test_services_are_active_and_kubelet_enabled(installed: LiveCluster, name: str) -> None:
    node = installed[name]
    wanted = ["containerd", "chrony", "firewalld"] + (["keepalived", "haproxy"] if name in CONTROL_PLANES else [])
    assert {unit: node.active(unit) for unit in wanted} == {unit: True for unit in wanted}
    assert node.run(["systemctl", "is-enabled", "kubelet"]).stdout.strip() == "enabled"
    if name not in CONTROL_PLANES:
        assert not node.active("keepalived") and not node.active("haproxy")
    chrony = node.path("/etc/chrony/chrony.conf").read_text()
    served = "local stratum 10" if name == "k8s-mn01" else f"server {SUBNET}.11 iburst"  # the first serves time
    assert chrony.startswith("# Managed by k8s-install") and served in chrony, chrony
    assert not node.path("/etc/chrony.conf").exists()  # EL9's path is not Debian's


@pytest.mark.parametrize("name", NODES)
def test_bundled_images_are_in_the_nodes_containerd(installed: LiveCluster, name: str) -> None:
    listed = installed[name].run(["ctr", "-n", "k8s.io", "images", "ls", "-q"]).stdout.split()
    for image in IMAGES:
        assert any(ref.startswith(image) for ref in listed), listed


@pytest.mark.parametrize(
    "target,port,expected",
    [("k8s-mn01", 6443, "open"), ("k8s-mn01", 9099, "filtered"), ("k8s-wn01", 10250, "open"),
     ("k8s-wn01", 6443, "filtered")],
)  # fmt: skip
def test_firewalld_on_debian_opens_the_roles_ports_and_nothing_else(
    installed: LiveCluster, target: str, port: int, expected: str
) -> None:
    source = installed["k8s-mn02"] if target == "k8s-wn01" else installed["k8s-wn01"]
    assert probe(source, installed[target].address, port) == expected


def test_the_vip_is_on_one_control_plane_and_answers(installed: LiveCluster) -> None:
    assert installed.wait_for_vip_holder(30) in CONTROL_PLANES
    answer = installed["k8s-wn01"].run(["curl", "-sk", "--max-time", "5", f"https://{VIP}:8443/healthz"])
    assert answer.stdout == "ok"


def test_second_run_changes_nothing_and_restarts_nothing(installed: LiveCluster) -> None:
    def starts(name: str) -> Dict[str, str]:
        node = installed[name]
        return {unit: node.unit(unit, "InvocationID").get("InvocationID", "") for unit in DEBIAN_SERVICES}

    before = {name: starts(name) for name in NODES}
    for name in NODES:
        run = installed.install(name)
        TIMINGS[f"debian12 second run {name}"] = run.seconds
        assert run.result.returncode == 0, run.output
        assert "done: 0 change(s) applied" in run.output, run.output
    assert {name: starts(name) for name in NODES} == before


def test_reset_removes_the_packages_it_installed_and_restores_debians_files(installed: LiveCluster) -> None:
    node = installed["k8s-wn01"]
    original_chrony = (installed.nodes.root / "etc/chrony/chrony.conf").read_bytes()
    run = installed.install("k8s-wn01", "reset")
    assert run.result.returncode == 0, run.output
    assert "removed packages" in run.output, run.output
    assert all(not status.endswith(" installed") for status in dpkg(node, *KUBE).values()), dpkg(node, *KUBE)
    for unit in ("containerd", "buildkitd"):
        assert not node.active(unit), unit
    assert node.path("/etc/chrony/chrony.conf").read_bytes() == original_chrony
    assert not node.path("/var/lib/k8s-install/apt").exists()
    assert node.active("firewalld") and node.active("chrony")  # there before the installer: left running
    again = installed.install("k8s-wn01")  # and it installs again from the bundle
    assert again.result.returncode == 0, again.output
    assert dpkg(node, "kubelet") == {"kubelet": f"{KUBE_VERSION} hold ok installed"}
