"""Node basics: hostname and /etc/hosts, swap off, SELinux permissive (EL9; AppArmor is left as it is)."""

from __future__ import annotations

import re
import socket
from typing import List, Optional

from k8s_install.engine import Change, Node, Step
from k8s_install.node.distro import node_distro
from k8s_install.steps.files import plan_file

HOSTS_BEGIN = "# BEGIN k8s-install: cluster nodes (managed block)"
HOSTS_END = "# END k8s-install"
SWAP_MARK = "#k8s-install# "


def read_text(node: Node, path: str) -> str:
    target = node.host.path(path)
    return target.read_text(encoding="utf-8", errors="surrogateescape") if target.is_file() else ""


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def hosts_with_block(current: str, entries: List[tuple]) -> str:
    """/etc/hosts with our block replaced where it is (or appended); lines outside it are kept as they are,
    so a line the operator adds after the block does not move it on every run."""
    width = max((len(ip) for ip, _ in entries), default=0)
    lines = [f"{ip.ljust(width)} {name}" for ip, name in entries]
    block = "\n".join([HOSTS_BEGIN, *lines, HOSTS_END]) + "\n"
    pattern = re.compile(re.escape(HOSTS_BEGIN) + r".*?" + re.escape(HOSTS_END) + r"[^\n]*\n?", re.S)
    found = pattern.search(current)
    if found is not None:
        rest = pattern.sub("", current[found.end() :])  # a second block (hand-copied) goes
        return current[: found.start()] + block + rest
    if current and not current.endswith("\n"):
        current += "\n"
    return current + block


class Hostname(Step):
    name = "hostname"
    title = "hostname and /etc/hosts"

    def plan(self, node: Node) -> List[Change]:
        wanted = node.settings.name
        changes = plan_file(node, "/etc/hostname", f"{wanted}\n".encode())
        if node.host.live and socket.gethostname() != wanted:
            changes.append(
                Change(f"set the running hostname to {wanted}",
                       lambda: node.host.run(["hostnamectl", "set-hostname", wanted]))
            )  # fmt: skip
        hosts = read_text(node, "/etc/hosts")
        if node.settings.hosts:
            changes += plan_file(node, "/etc/hosts", _encode(hosts_with_block(hosts, list(node.settings.hosts))))
        return changes


def fstab_without_swap(text: str) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if fields and not fields[0].startswith("#") and len(fields) >= 3 and fields[2] == "swap":
            out.append(SWAP_MARK + line)
        else:
            out.append(line)
    return "".join(out)


def active_swaps() -> List[str]:
    try:
        with open("/proc/swaps", encoding="ascii") as swaps:
            return [line.split()[0] for line in list(swaps)[1:] if line.strip()]
    except FileNotFoundError:
        return []


class Swap(Step):
    name = "swap"
    title = "swap off (kubelet refuses to run with swap)"

    def plan(self, node: Node) -> List[Change]:
        changes: List[Change] = []
        fstab = read_text(node, "/etc/fstab")
        if fstab:
            wanted = fstab_without_swap(fstab)
            if wanted != fstab:
                changes += plan_file(node, "/etc/fstab", _encode(wanted))
        if node.host.live and active_swaps():
            changes.append(Change("swapoff -a", lambda: node.host.run(["swapoff", "-a"])))
        return changes


def selinux_config_permissive(text: str) -> str:
    return re.sub(r"(?m)^SELINUX=enforcing\s*$", "SELINUX=permissive", text)


class Selinux(Step):
    name = "selinux"
    title = "SELinux permissive (as kubeadm's guide requires without a policy for it)"

    def plan(self, node: Node) -> List[Change]:
        if node_distro(node.host).mac != "selinux":  # AppArmor stays enforcing (k8s_install/node/distro.py)
            return []
        changes: List[Change] = []
        config = read_text(node, "/etc/selinux/config")
        if config:
            wanted = selinux_config_permissive(config)
            if wanted != config:
                changes += plan_file(node, "/etc/selinux/config", _encode(wanted))
        if node.host.live and node.host.which("getenforce"):
            mode = node.host.run(["getenforce"], check=False).stdout.decode().strip()
            if mode == "Enforcing":
                changes.append(Change("setenforce 0", lambda: node.host.run(["setenforce", "0"])))
        return changes

    def outcome(self, node: Node) -> Optional[str]:
        if node_distro(node.host).mac == "apparmor":
            return "AppArmor node: left as it is (containerd's default profile confines containers)"
        return None
