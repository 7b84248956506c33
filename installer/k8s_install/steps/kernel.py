"""Kernel: the modules Kubernetes, kube-proxy (IPVS) and Calico need, and common sysctl settings.

Common guides set several keys twice with different values; each key appears once here, with
the reason for the value chosen.
"""

from __future__ import annotations

import os
import posixpath
from typing import Callable, Dict, List, NamedTuple, Tuple

from k8s_install.engine import Change, Node, Step
from k8s_install.node.distro import node_distro
from k8s_install.node.host import Host
from k8s_install.steps.files import plan_file, with_header

MODULES_FILE = "/etc/modules-load.d/k8s.conf"
SYSCTL_FILE = "/etc/sysctl.d/90-k8s.conf"
KERNEL_MODULES = ("overlay", "br_netfilter", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")

# (key, value, why) - one entry per key.
SYSCTL_SETTINGS: Tuple[Tuple[str, str, str], ...] = (
    ("net.bridge.bridge-nf-call-iptables", "1", "required: pod traffic on bridges passes iptables"),
    ("net.bridge.bridge-nf-call-ip6tables", "1", "required, as above for IPv6"),
    ("net.bridge.bridge-nf-call-arptables", "1", ""),
    ("net.ipv4.ip_forward", "1", "required: nodes route pod traffic"),
    ("fs.file-max", "52706963", "guides set 202808 then 52706963; the larger one avoids 'too many open files'"),
    ("fs.nr_open", "52706963", ""),
    ("fs.inotify.max_user_instances", "8192", ""),
    ("fs.inotify.max_user_watches", "524288", ""),
    ("kernel.pid_max", "4194303", ""),
    ("vm.swappiness", "0", ""),
    ("vm.overcommit_memory", "1", ""),
    ("vm.panic_on_oom", "0", ""),
    ("vm.max_map_count", "262144", ""),
    ("net.core.netdev_max_backlog", "16384", "guides set 262144 then 16384; the later value, as sysctl applies it"),
    ("net.core.somaxconn", "32768", "guides set 262144 then 32768; the later value, as sysctl applies it"),
    ("net.core.rmem_default", "6291456", ""),
    ("net.core.wmem_default", "6291456", ""),
    ("net.core.rmem_max", "16777216", "guides set 12582912 then 16777216; the later value"),
    ("net.core.wmem_max", "16777216", "guides set 12582912 then 16777216; the later value"),
    ("net.ipv4.tcp_rmem", "10240 87380 12582912", ""),
    ("net.ipv4.tcp_wmem", "10240 87380 12582912", ""),
    ("net.ipv4.tcp_max_orphans", "262144", ""),
    ("net.ipv4.tcp_max_syn_backlog", "8096", "guides set 262144 then 8096; the later value"),
    ("net.ipv4.tcp_synack_retries", "2", "guides set 1 then 2; 1 drops clients on a single lost SYN-ACK"),
    ("net.ipv4.tcp_syn_retries", "1", ""),
    (
        "net.ipv4.ip_local_port_range",
        "45001 65000",
        "guides set 15000-65000 then 45001-65000; the first overlaps the NodePort range 30000-32767",
    ),
    ("net.ipv4.tcp_keepalive_time", "600", "guides set 1500 then 600; the later value"),
    ("net.ipv4.tcp_keepalive_intvl", "30", "guides set 60 then 30; the later value"),
    ("net.ipv4.tcp_keepalive_probes", "10", "guides set 3 then 10; the later value"),
    ("net.ipv4.tcp_syncookies", "1", ""),
    ("net.ipv4.tcp_fin_timeout", "30", ""),
    ("net.ipv4.tcp_max_tw_buckets", "6000", ""),
    (
        "net.ipv4.tcp_timestamps",
        "1",
        "guides set 0, 0 then 1; tcp_tw_reuse only works with timestamps, and 0 disables PAWS",
    ),
    ("net.ipv4.tcp_tw_reuse", "1", ""),
    ("net.ipv4.neigh.default.gc_stale_time", "120", ""),
    ("net.ipv4.conf.all.rp_filter", "0", "Calico needs loose or no reverse-path filtering"),
    ("net.ipv4.conf.default.rp_filter", "0", ""),
    ("net.ipv4.conf.default.arp_announce", "2", ""),
    ("net.ipv4.conf.lo.arp_announce", "2", ""),
    ("net.ipv4.conf.all.arp_announce", "2", ""),
    ("net.netfilter.nf_conntrack_max", "2310720", ""),
    ("net.ipv6.neigh.default.gc_thresh1", "8192", ""),
    ("net.ipv6.neigh.default.gc_thresh2", "32768", ""),
    ("net.ipv6.neigh.default.gc_thresh3", "65536", ""),
    ("net.ipv6.conf.all.disable_ipv6", "1", "the cluster is IPv4-only"),
    ("net.ipv6.conf.default.disable_ipv6", "1", ""),
    ("net.ipv6.conf.lo.disable_ipv6", "1", ""),
)


def sysctl_conf() -> str:
    lines = []
    for key, value, why in SYSCTL_SETTINGS:
        if why:
            lines.append(f"# {why}")
        lines.append(f"{key} = {value}")
    return with_header("\n".join(lines) + "\n")


def modules_conf() -> str:
    return with_header("\n".join(KERNEL_MODULES) + "\n")


def loaded_modules() -> List[str]:
    try:
        with open("/proc/modules", encoding="ascii") as modules:
            return [line.split()[0] for line in modules]
    except FileNotFoundError:
        return []


def module_present(name: str) -> bool:
    return name in loaded_modules() or os.path.isdir(f"/sys/module/{name}")


def current_sysctl(key: str) -> str:
    try:
        with open("/proc/sys/" + key.replace(".", "/"), encoding="ascii") as value:
            return " ".join(value.read().split())
    except OSError:
        return ""


def load_module(node: Node, module: str) -> Callable[[], object]:
    return lambda: node.host.run(["modprobe", module])


class KernelModules(Step):
    name = "kernel-modules"
    title = "kernel modules"

    def plan(self, node: Node) -> List[Change]:
        changes = plan_file(node, node_distro(node.host).modules_file, modules_conf().encode())
        if not node.host.live:
            node.host.skipped(f"modprobe {' '.join(KERNEL_MODULES)}")
            return changes
        missing = [module for module in KERNEL_MODULES if not module_present(module)]
        for module in missing:
            changes.append(Change(f"load module {module}", load_module(node, module)))
        return changes


def missing_sysctl_keys(proc_sys: str = "/proc/sys") -> List[str]:
    """Our keys this kernel does not have (IPv6 ones on a node booted with ipv6.disable=1, bridge ones
    before br_netfilter is loaded): `sysctl -p` fails on each, so they are left out and reported."""
    return [key for key, _, _ in SYSCTL_SETTINGS if not os.path.exists(f"{proc_sys}/{key.replace('.', '/')}")]


def sysctl_apply_command(path: str = SYSCTL_FILE) -> List[str]:
    """Apply the file; -e: a key the kernel lacks is skipped instead of failing the whole file."""
    return ["sysctl", "-e", "-p", path]


class Sysctl(Step):
    name = "sysctl"
    title = "kernel settings"

    def plan(self, node: Node) -> List[Change]:
        path = node_distro(node.host).sysctl_file
        changes = plan_file(node, path, sysctl_conf().encode())
        if not node.host.live:
            node.host.skipped(" ".join(sysctl_apply_command(path)))
            return changes
        missing = missing_sysctl_keys()
        differing = [
            key for key, value, _ in SYSCTL_SETTINGS if key not in missing and current_sysctl(key) not in ("", value)
        ]
        if missing:
            node.host.log(f"sysctl keys this kernel does not have: {', '.join(missing)}")
        if changes or differing:
            summary = f"apply {path}" + (f" ({len(differing)} values differ)" if differing else "")
            if missing:
                summary += f"; left out, as this kernel does not have them: {', '.join(missing)}"
            changes.append(Change(summary, lambda: node.host.run(sysctl_apply_command(path))))
        return changes


class Override(NamedTuple):
    key: str
    ours: str
    path: str  # the file read after ours that sets the key
    value: str


# Where systemd-sysctl (and `sysctl --system`) read settings: a name in an earlier folder hides the same
# name in later ones; all files are then read in name order, and a later setting of a key wins.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
LEGACY_SYSCTL = ("/etc/sysctl.conf", "99-sysctl.conf")  # EL9 links 99-sysctl.conf to it: read after ours


def sysctl_files(host: Host) -> List[Tuple[str, str]]:
    """(name, path on the node) of every sysctl file, in the order they are applied at boot; a link is
    followed inside the node's root (EL9's 99-sysctl.conf is a link to /etc/sysctl.conf)."""
    chosen: Dict[str, str] = {}
    for directory in SYSCTL_DIRS:
        folder = host.path(directory)
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.endswith(".conf") and entry.name not in chosen:
                path = f"{directory}/{entry.name}"
                if entry.is_symlink():
                    target = posixpath.normpath(posixpath.join(directory, os.readlink(entry)))
                    path = f"{target} (read as {path})"
                chosen[entry.name] = path
    legacy, name = LEGACY_SYSCTL
    if name not in chosen and host.path(legacy).is_file():
        chosen[name] = legacy
    return sorted(chosen.items())


def read_sysctl_file(host: Host, path: str) -> Dict[str, str]:
    settings: Dict[str, str] = {}
    try:
        text = host.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return settings
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        settings[key.strip().lstrip("-").replace("/", ".")] = " ".join(value.split())
    return settings


def sysctl_overrides(host: Host) -> List[Override]:
    """Our keys that a file applied after ours at boot sets to another value (the last such file wins)."""
    ours = {key: value for key, value, _ in SYSCTL_SETTINGS}
    name = posixpath.basename(SYSCTL_FILE)
    found: Dict[str, Override] = {}
    for other, path in sysctl_files(host):
        if other <= name:
            continue
        for key, value in read_sysctl_file(host, path.split(" (read as ")[0]).items():
            if key in ours:
                if value != ours[key]:
                    found[key] = Override(key, ours[key], path, value)
                else:
                    found.pop(key, None)
    return [found[key] for key in sorted(found)]
