"""A simulated EL9 node: a temporary root with the files a fresh Rocky 9 install has, and a netns."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

ROCKY_OS_RELEASE = """NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
"""
ORIGINAL_CHRONY = "# hand-edited by the site admin\npool 2.rocky.pool.ntp.org iburst\n"
ORIGINAL_FSTAB = "/dev/mapper/rl-root /     xfs  defaults 0 0\n/dev/mapper/rl-swap none  swap defaults 0 0\n"
ORIGINAL_HOSTS = "127.0.0.1 localhost localhost.localdomain\n"


def make_el9_root(root: Path) -> Path:
    (root / "etc/selinux").mkdir(parents=True)
    (root / "etc/os-release").write_text(ROCKY_OS_RELEASE)
    (root / "etc/fstab").write_text(ORIGINAL_FSTAB)
    (root / "etc/hosts").write_text(ORIGINAL_HOSTS)
    (root / "etc/chrony.conf").write_text(ORIGINAL_CHRONY)
    (root / "etc/selinux/config").write_text("SELINUX=enforcing\nSELINUXTYPE=targeted\n")
    # systemd's own units (targets, sockets), as every EL9 root has them; copied from this machine
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return root


KUBELET_UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent
[Service]
ExecStart=/usr/bin/kubelet
[Install]
WantedBy=multi-user.target
"""


def add_kubelet_unit(root: Path) -> None:
    """What the kubelet RPM ships, for tests of the node steps that run without the packages step."""
    (root / "usr/lib/systemd/system/kubelet.service").write_text(KUBELET_UNIT)


class NetNamespace:
    """A network namespace made by the test, removed on exit; commands run in it with `ip netns exec`."""

    def __init__(self, prefix: str = "k8sit") -> None:
        self.name = f"{prefix}-{secrets.token_hex(3)}"

    def __enter__(self) -> NetNamespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def add_address(self, cidr: str, device: str = "eth-node") -> None:
        """Give the namespace an interface holding `cidr` (the node's own address)."""
        run = self.prefix()
        peer = f"{device}-peer"[:15]
        subprocess.run(run + ["ip", "link", "add", device, "type", "veth", "peer", "name", peer], check=True)
        subprocess.run(run + ["ip", "addr", "add", cidr, "dev", device], check=True)
        for link in (device, peer):
            subprocess.run(run + ["ip", "link", "set", link, "up"], check=True)

    def prefix(self) -> list:
        return ["ip", "netns", "exec", self.name]


def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as namespace:
        yield namespace
