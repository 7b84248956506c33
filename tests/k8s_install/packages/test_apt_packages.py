"""The packages step on a Debian node (--root image with a dpkg database): real apt-get and dpkg install exactly the
bundle's versions from its flat repository alone (signature checking on, its Release signed by the bundle key),
hold the pinned ones, change nothing on a second run, upgrade a held package, and `reset` removes what it put."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from bundler.deb.flat_repo import KEY_NAME, DebFile, write_flat_repository
from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import BundleManifest, Deb, DebRepository
from k8s_install.commands.reset import run_reset
from k8s_install.commands.upgrade import installed_release
from k8s_install.engine import Node
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.packages.apt import SOURCES, plan_debs
from k8s_install.settings import NodeSettings
from k8s_install.steps.disk_space import rpms_to_install
from k8s_install.steps.packages import Packages
from k8s_install.steps.upgrade import KubeadmPackage
from tests.support.deb_repo import FakeDeb, build_debs, missing_tools
from tests.support.prerequisites import require

pytestmark = pytest.mark.root  # dpkg --root writes a database of root-owned files

BASE = "Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: all\nEssential: yes\n" \
       "Maintainer: test <t@example.invalid>\nDescription: base\n"  # fmt: skip
OLD = (
    FakeDeb("kubeadm", "1.29.6-1.1", depends="kubelet (>= 1.19.0), kubectl, cri-tools"),
    FakeDeb("kubelet", "1.29.6-1.1", depends="socat"),
    FakeDeb("kubectl", "1.29.6-1.1"),
    FakeDeb("cri-tools", "1.29.0-1.1"),
    FakeDeb("socat", "1.7.4.4-2"),
)
NEW = (
    FakeDeb("kubeadm", "1.29.15-1.1", depends="kubelet (>= 1.19.0), kubectl, cri-tools"),
    FakeDeb("kubelet", "1.29.15-1.1", depends="socat"),
    FakeDeb("kubectl", "1.29.15-1.1"),
    OLD[3],
    OLD[4],
)


def deb_bundle(folder: Path, debs: Sequence[FakeDeb], version: str) -> Bundle:
    """A bundle folder holding only its apt repository, written by the builder's own code, and its manifest."""
    repo = folder / "debs"
    built = build_debs(debs, folder / "built")
    files = [DebFile(name, path) for name, path in built.items()]
    for name, data in write_flat_repository(files, "amd64", "k8s-bundle test", 1700000000).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    for deb in files:
        shutil.copy2(deb.path, repo / deb.filename)
    install = tuple(f"{name}={version}-*" for name in ("kubeadm", "kubelet", "kubectl")) + ("socat",)
    entries = tuple(Deb(d.name, d.version, d.arch, f"debs/{d.filename}", "0" * 64, 1000) for d in debs)
    manifest = BundleManifest(version, "debian12", "amd64", deb_repository=DebRepository("debs", f"debs/{KEY_NAME}",
                              install), debs=entries)  # fmt: skip
    return Bundle(folder, manifest)


def debian_node(root: Path, bundle: Bundle) -> Node:
    for path in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"):
        (root / path).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(BASE)
    (root / "var/lib/dpkg/available").write_text("")
    (root / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    host = Host(root)
    return Node(host, State(host), bundle, NodeSettings(role="worker", first=False, name="w1", ip="10.213.0.5"))


def dpkg_status(root: Path) -> Dict[str, str]:
    """name -> "version want" for every package dpkg lists as installed."""
    found = {}
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Status", "").endswith("ok installed"):
            found[fields["Package"]] = f"{fields['Version']} {fields['Status'].split()[0]}"
    return found


def summaries(node: Node) -> List[str]:
    return [change.summary for change in Packages().plan(node)]


@pytest.fixture(scope="module")
def tools() -> None:
    require(*missing_tools())


def test_apt_installs_the_bundles_versions_held_and_a_rerun_changes_nothing(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "bundle", OLD, "1.29.6"))
    assert summaries(node) == [
        "apt-get install from the bundle: install kubeadm 1.29.6-1.1, install kubelet 1.29.6-1.1, install kubectl "
        "1.29.6-1.1, install socat 1.7.4.4-2"
    ]
    for change in Packages().plan(node):
        change.apply()
    assert dpkg_status(node.host.root) == {
        "base-files": "12.4 install", "kubeadm": "1.29.6-1.1 hold", "kubelet": "1.29.6-1.1 hold",
        "kubectl": "1.29.6-1.1 hold", "cri-tools": "1.29.0-1.1 install", "socat": "1.7.4.4-2 install",
    }  # fmt: skip
    assert sorted(node.state.packages()) == ["cri-tools", "kubeadm", "kubectl", "kubelet", "socat"]
    sources = (node.host.root / SOURCES.lstrip("/")).read_text()
    debs = (tmp_path / "bundle/debs").resolve()
    assert sources == f"deb [signed-by={debs / 'bundle-key.gpg'}] file:{debs}/ ./\n"
    assert not (node.host.root / "etc/apt").exists()  # the node's own apt configuration is never written
    assert Packages().plan(node) == []


def test_a_hold_taken_off_by_hand_is_put_back(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "bundle", OLD, "1.29.6"))
    for change in Packages().plan(node):
        change.apply()
    status = node.host.root / "var/lib/dpkg/status"
    unheld = status.read_text().replace("Package: kubelet\nStatus: hold ok", "Package: kubelet\nStatus: install ok")
    status.write_text(unheld)
    assert summaries(node) == ["apt-get install from the bundle: hold kubelet 1.29.6-1.1"]
    for change in Packages().plan(node):
        change.apply()
    assert dpkg_status(node.host.root)["kubelet"] == "1.29.6-1.1 hold"


def test_an_upgrade_moves_the_held_packages_kubeadm_first(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "old", OLD, "1.29.6"))
    for change in Packages().plan(node):
        change.apply()
    node.bundle = deb_bundle(tmp_path / "new", NEW, "1.29.15")
    first = KubeadmPackage().plan(node)
    assert [change.summary for change in first] == [
        "apt-get install from the bundle: replace kubeadm 1.29.6-1.1 with 1.29.15-1.1"
    ]
    first[0].apply()
    assert dpkg_status(node.host.root)["kubeadm"] == "1.29.15-1.1 hold"
    assert dpkg_status(node.host.root)["kubelet"] == "1.29.6-1.1 hold"
    for change in Packages().plan(node):
        change.apply()
    assert {name: dpkg_status(node.host.root)[name] for name in ("kubelet", "kubectl")} == {
        "kubelet": "1.29.15-1.1 hold", "kubectl": "1.29.15-1.1 hold"
    }  # fmt: skip
    assert Packages().plan(node) == []


def test_a_repository_signed_by_another_key_is_refused_in_one_line(tools: None, tmp_path: Path) -> None:
    bundle = deb_bundle(tmp_path / "bundle", OLD, "1.29.6")
    other = deb_bundle(tmp_path / "other", OLD, "1.29.6")  # another build: another key
    shutil.copy2(other.root / "debs/bundle-key.gpg", bundle.root / "debs/bundle-key.gpg")
    node = debian_node(tmp_path / "root", bundle)
    (change,) = Packages().plan(node)
    with pytest.raises(InstallError) as raised:
        change.apply()
    message = str(raised.value)
    assert message.startswith("apt-get could not read the bundle's apt repository: E:") and "\n" not in message
    assert "is not signed" in message or "NO_PUBKEY" in message or "signature" in message, message
    assert "kubeadm" not in dpkg_status(node.host.root)


def test_reset_unholds_and_removes_what_the_install_put(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "bundle", OLD, "1.29.6"))
    for change in Packages().plan(node):
        change.apply()
    assert run_reset(argparse.Namespace(root=str(node.host.root), yes=True)) == 0
    assert dpkg_status(node.host.root) == {"base-files": "12.4 install"}
    assert not (node.host.root / "var/lib/k8s-install/apt").exists()
    assert plan_debs(node.bundle, Host(node.host.root))  # nothing left: a new install would install it all again


def test_upgrade_reads_the_running_release_from_the_kubeadm_deb(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "bundle", OLD, "1.29.6"))
    with pytest.raises(InstallError, match="cannot tell which Kubernetes release this node runs: pass --from"):
        installed_release(node, None)
    for change in Packages().plan(node):
        change.apply()
    assert installed_release(node, None) == "1.29.6"


def test_preflights_disk_check_counts_the_debs_still_to_install(tools: None, tmp_path: Path) -> None:
    node = debian_node(tmp_path / "root", deb_bundle(tmp_path / "bundle", OLD, "1.29.6"))
    assert rpms_to_install(node) == 4 * 1000  # kubeadm, kubelet, kubectl, socat (cri-tools comes as a dependency)
    for change in Packages().plan(node):
        change.apply()
    assert rpms_to_install(node) == 0
