"""Debian and Ubuntu node prep from the distribution table (k8s_install/node/distro.py): facts in, changes out,
on a --root image of each release; the EL9 entries keep what EL9 nodes always got."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.engine import Node
from k8s_install.errors import InstallError
from k8s_install.node.distro import DISTROS, EL9, node_distro, target_of
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.chrony import Chrony
from k8s_install.steps.containerd import containerd_unit_path
from k8s_install.steps.firewall import Firewall
from k8s_install.steps.kernel import MODULES_FILE, SYSCTL_FILE
from k8s_install.steps.system import Selinux
from tests.support.sandbox import make_el9_root

DEBIAN12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
UBUNTU2204 = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n'


def debian_root(root: Path, os_release: str = DEBIAN12) -> Path:
    """A Debian-like image: its os-release, chrony's unit as Debian ships it, no SELinux."""
    (root / "etc/chrony").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    (root / "etc/chrony/chrony.conf").write_text("pool 2.debian.pool.ntp.org iburst\n")
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
    (root / "lib/systemd/system/chrony.service").write_text("[Service]\nExecStart=/usr/sbin/chronyd\n[Install]\n"
                                                            "WantedBy=multi-user.target\n")  # fmt: skip
    return root


def node_on(root: Path, firewall: str = "firewalld") -> Node:
    host = Host(root)
    settings = NodeSettings(role="worker", first=False, name="w1", ip="10.213.0.5", firewall=firewall)
    return Node(host, State(host), Bundle(root, EMPTY_MANIFEST), settings)


@pytest.mark.parametrize(
    "os_release,target",
    [
        ({"ID": "rocky", "VERSION_ID": "9.3"}, "rocky9"),
        ({"ID": "almalinux", "VERSION_ID": "9.4"}, "alma9"),
        ({"ID": "debian", "VERSION_ID": "12"}, "debian12"),
        ({"ID": "ubuntu", "VERSION_ID": "22.04"}, "ubuntu2204"),
        ({"ID": "ubuntu", "VERSION_ID": "24.04"}, "ubuntu2404"),
        ({"ID": "ubuntu", "VERSION_ID": "20.04"}, "ubuntu2004"),  # not in the table: named, then refused
        ({}, ""),
    ],
)  # fmt: skip
def test_each_release_names_its_bundle_target(os_release: dict, target: str) -> None:
    assert target_of(os_release) == target


def test_the_table_differs_only_where_the_distributions_do() -> None:
    debian, el9 = DISTROS[("debian", "12")], DISTROS[("rocky", "9")]
    assert (el9.package_manager, el9.firewall, el9.mac, el9.chrony_conf, el9.chrony_service) == (
        "dnf", "firewalld", "selinux", "/etc/chrony.conf", "chronyd"
    )  # fmt: skip
    assert (debian.package_manager, debian.firewall, debian.mac, debian.chrony_conf, debian.chrony_service) == (
        "apt", "existing", "apparmor", "/etc/chrony/chrony.conf", "chrony"
    )  # fmt: skip
    same = ("swap", "modules_file", "sysctl_file", "containerd_unit_dir")
    assert {field: getattr(debian, field) for field in same} == {field: getattr(el9, field) for field in same}
    assert (el9.modules_file, el9.sysctl_file) == (MODULES_FILE, SYSCTL_FILE)  # EL9's, as the steps always had them
    assert f"{el9.containerd_unit_dir}/containerd.service" == containerd_unit_path


def test_an_unknown_release_is_prepared_as_el9(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    assert node_distro(Host(tmp_path)) == EL9


@pytest.mark.parametrize("os_release", [DEBIAN12, UBUNTU2204])
def test_chrony_is_debians_file_and_service(tmp_path: Path, os_release: str) -> None:
    node = node_on(debian_root(tmp_path / "root", os_release))
    changes = [change.summary for change in Chrony().plan(node)]
    assert changes == ["update /etc/chrony/chrony.conf", "enable chrony"], changes
    for change in Chrony().plan(node):
        change.apply()
    written = (tmp_path / "root/etc/chrony/chrony.conf").read_text()
    assert "keyfile /etc/chrony/chrony.keys" in written and "driftfile /var/lib/chrony/chrony.drift" in written
    assert not (tmp_path / "root/etc/chrony.conf").exists()
    assert Chrony().plan(node) == []  # converged


def test_apparmor_nodes_get_no_selinux_change_and_el9_still_does(tmp_path: Path) -> None:
    debian = debian_root(tmp_path / "debian")
    (debian / "etc/selinux").mkdir()
    (debian / "etc/selinux/config").write_text("SELINUX=enforcing\n")  # left over, not Debian's: not touched
    assert Selinux().plan(node_on(debian)) == []
    assert Selinux().outcome(node_on(debian)) == (
        "AppArmor node: left as it is (containerd's default profile confines containers)"
    )
    el9 = node_on(make_el9_root(tmp_path / "el9"))
    assert [change.summary for change in Selinux().plan(el9)] == ["update /etc/selinux/config"]
    assert Selinux().outcome(el9) is None


def test_no_firewall_on_a_plain_debian_node_changes_nothing(tmp_path: Path) -> None:
    assert Firewall().plan(node_on(debian_root(tmp_path / "root"))) == []


def test_an_active_ufw_stops_the_step_in_one_line_and_disable_disables_it(tmp_path: Path) -> None:
    root = debian_root(tmp_path / "root")
    (root / "etc/ufw").mkdir()
    (root / "etc/ufw/ufw.conf").write_text("# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n")
    with pytest.raises(InstallError) as raised:
        Firewall().plan(node_on(root))
    assert str(raised.value) == (
        "ufw is active on this node and the installer does not configure it: allow the worker's ports (10250/tcp "
        "10256/tcp 30000:32767/tcp 30000:32767/udp 179/tcp 4789/udp 5473/tcp) and IP protocol(s) 4 in ufw, or run "
        "with --firewall disable (it disables ufw)"
    )
    assert [change.summary for change in Firewall().plan(node_on(root, "disable"))] == [
        "ufw disable (--firewall disable)"
    ]
    (root / "etc/ufw/ufw.conf").write_text("ENABLED=no\n")
    assert Firewall().plan(node_on(root)) == []
