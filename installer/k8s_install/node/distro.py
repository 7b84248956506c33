"""What differs between the distributions a node may run, as data: one entry per os-release ID and VERSION_ID.

Steps read the node's entry (`node_distro`) instead of branching on the distribution themselves. What is the
same everywhere (swap off through /etc/fstab, the kernel modules and sysctl files, containerd's units under
/usr/local/lib/systemd/system) is written once, in `_COMMON`, so the table says so rather than leaving it out.

Decisions behind the Debian/Ubuntu entries:
- firewall `existing`: a Debian or Ubuntu install has no active firewall (nftables.service ships disabled with
  an accept-all ruleset, Ubuntu's ufw is inactive). The installer opens the role's ports in the firewall the node
  runs: firewalld when it is installed (as on EL9), ufw when it is installed and active (an application profile
  per role, `ufw allow`), else none. It never writes a nftables ruleset of its own: a base chain with a drop
  policy in a table of ours drops what kube-proxy and Calico accept in theirs (nftables needs every base chain
  of a hook to accept), so it would break Service and pod traffic unless it listed all of it.
- MAC `apparmor`: AppArmor stays enforcing; containerd loads its default profile (cri-containerd.apparmor.d) for
  every container, as kubeadm's guides on Debian and Ubuntu expect. SELinux (EL9) is set permissive as before.
- chrony is `chrony` there (config /etc/chrony/chrony.conf, keys /etc/chrony/chrony.keys), `chronyd` on EL9.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Mapping, Optional, Tuple

from k8s_install.node.facts import read_os_release
from k8s_install.node.host import Host


@dataclass(frozen=True)
class Distro:
    """How a node of one distribution release is prepared."""

    target: str  # the bundle target (`bundler build --os`) this release installs
    name: str  # for messages: "EL9", "Debian 12"
    package_manager: str  # "dnf" (the bundle's RPM repository) or "apt" (its flat apt repository)
    firewall: str  # "firewalld": firewalld; "existing": firewalld or an active ufw if the node has one, else none
    mac: str  # "selinux": set permissive; "apparmor": left as it is (enforcing, containerd's default profile)
    chrony_conf: str
    chrony_service: str
    chrony_keyfile: str
    chrony_driftfile: str
    swap: str = "fstab"  # swap entries commented out in /etc/fstab, `swapoff -a` live
    modules_file: str = "/etc/modules-load.d/k8s.conf"
    sysctl_file: str = "/etc/sysctl.d/90-k8s.conf"
    containerd_unit_dir: str = "/usr/local/lib/systemd/system"  # containerd.service and buildkitd.service

    @property
    def uses_apt(self) -> bool:
        return self.package_manager == "apt"


_COMMON = Distro(
    target="", name="", package_manager="dnf", firewall="firewalld", mac="selinux", chrony_conf="/etc/chrony.conf",
    chrony_service="chronyd", chrony_keyfile="/etc/chrony.keys", chrony_driftfile="/var/lib/chrony/drift",
)  # fmt: skip
EL9 = replace(_COMMON, name="EL9")
_DEBIAN_FAMILY = replace(
    _COMMON, package_manager="apt", firewall="existing", mac="apparmor", chrony_conf="/etc/chrony/chrony.conf",
    chrony_service="chrony", chrony_keyfile="/etc/chrony/chrony.keys", chrony_driftfile="/var/lib/chrony/chrony.drift",
)  # fmt: skip

# (os-release ID, VERSION_ID as the table matches it: the major for EL and Debian, the full one for Ubuntu)
DISTROS: Mapping[Tuple[str, str], Distro] = {
    ("rocky", "9"): replace(EL9, target="rocky9", name="Rocky Linux 9"),
    ("almalinux", "9"): replace(EL9, target="alma9", name="AlmaLinux 9"),
    ("rhel", "9"): replace(EL9, target="rhel9", name="RHEL 9"),
    ("centos", "9"): replace(EL9, target="centos9", name="CentOS Stream 9"),
    ("debian", "12"): replace(_DEBIAN_FAMILY, target="debian12", name="Debian 12"),
    ("ubuntu", "22.04"): replace(_DEBIAN_FAMILY, target="ubuntu2204", name="Ubuntu 22.04"),
    ("ubuntu", "24.04"): replace(_DEBIAN_FAMILY, target="ubuntu2404", name="Ubuntu 24.04"),
}
FULL_VERSION_IDS = ("ubuntu",)  # IDs whose releases differ in the minor (22.04, 24.04)
FAMILY_BY_ID = {"rocky": "rocky", "almalinux": "alma", "rhel": "rhel", "centos": "centos"}  # target names


def release_key(release: Mapping[str, str]) -> Tuple[str, str]:
    """The table's key for an os-release mapping."""
    distro_id, version = release.get("ID", ""), release.get("VERSION_ID", "")
    return distro_id, version if distro_id in FULL_VERSION_IDS else version.split(".")[0]


def known_distro(release: Mapping[str, str]) -> Optional[Distro]:
    return DISTROS.get(release_key(release))


def target_of(release: Mapping[str, str]) -> str:
    """The bundle target this os-release names: a known release's, else family and major (`fedora40`, `` for none)."""
    known = known_distro(release)
    if known is not None:
        return known.target
    distro_id, version = release_key(release)
    family = FAMILY_BY_ID.get(distro_id, distro_id)
    return f"{family}{version.replace('.', '')}" if family else ""


def node_distro(host: Host) -> Distro:
    """The node's entry; a release the table does not know is prepared as EL9 (preflight refuses a bundle that is
    not for it before any step reads this)."""
    return known_distro(read_os_release(host)) or EL9


def for_target(target: str) -> Optional[Distro]:
    """The entry of a bundle target (`debian12`), if the table has one."""
    return next((distro for distro in DISTROS.values() if distro.target == target), None)


def apt_targets() -> Dict[str, Distro]:
    return {distro.target: distro for distro in DISTROS.values() if distro.uses_apt}
