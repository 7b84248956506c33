"""The upgrade's first action, with the real dnf and rpm: the new kubeadm package alone, before anything else
(kubelet and kubectl stay until the node is drained)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.engine import Node, NodeOptions
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.packages.dnf import install_packages
from k8s_install.settings import NodeSettings
from k8s_install.steps.upgrade import KubeadmPackage
from tests.conftest import StandInRelease
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_node import OfflineRunner, build_and_unpack, installed, minimal_node
from tests.support.rpm_release import PACKAGES, add_rpm_section

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("dnf", "rpm", "unshare")), reason="needs dnf, rpm and unshare"
    ),
]


def test_new_kubeadm_package_is_installed_alone(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    add_rpm_section(release, rpm_graph, name="old")
    old = build_and_unpack(release, tmp_path / "old")
    root = minimal_node(tmp_path / "root", rpm_graph)
    install_packages(load_bundle(old), root, gpgcheck=False, releasever="9", run=OfflineRunner())
    # the next release's bundle: kubeadm 1.30.0 (the graph's newer kubeadm)
    release.manifest["rpm"]["rocky9"]["packages"] = ["kubeadm = 1.30.0", *PACKAGES[1:]]
    release.write()
    new = build_and_unpack(release, tmp_path / "new")
    host = Host(root)
    settings = NodeSettings(role="worker", first=False, name="wn01", ip="10.0.0.1")
    node = Node(host, State(host), load_bundle(new), settings, NodeOptions(no_gpgcheck=True))
    changes = KubeadmPackage().plan(node)
    replace = "replace kubeadm-0:1.29.6-150500.1.1.x86_64 with kubeadm-0:1.30.0-150500.1.1.x86_64"
    assert [c.summary for c in changes] == [f"dnf install from the bundle: {replace}"]
    changes[0].apply()
    now = installed(root)
    assert "kubeadm-0:1.30.0-150500.1.1.x86_64" in now and "kubeadm-0:1.29.6-150500.1.1.x86_64" not in now
    assert "kubelet-0:1.29.6-150500.1.1.x86_64" in now  # the kubelet waits for the drain
    assert KubeadmPackage().plan(node) == []  # done: a re-run changes nothing
    log = (root / "var/log/k8s-install.log").read_text()
    assert "dnf install -y --disablerepo=* --setopt=reposdir=/dev/null" in log
    dnf = [line for line in log.splitlines() if " run: dnf install " in line]
    assert len(dnf) == 1 and dnf[0].endswith(" -- kubeadm-0:1.30.0-150500.1.1.x86_64 -> exit 0")
