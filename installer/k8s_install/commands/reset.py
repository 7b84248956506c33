"""`reset`: undo what the installer did on this node, from its state file."""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
from pathlib import Path

from k8s_install.errors import InstallError
from k8s_install.node.distro import node_distro
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.node.undo import undo_file
from k8s_install.packages.apt import APT_DIR, remove_debs
from k8s_install.steps.leftovers import leftovers

OFFLINE_DNF = ("--disablerepo=*", "--setopt=reposdir=/dev/null")


KUBEADM_RESET = ["kubeadm", "reset", "--force"]


def undo_kubeadm(host: Host) -> None:
    """Leave the cluster first (kubeadm removes what it wrote: /etc/kubernetes, etcd data, CNI state). kubeadm
    reset leaves the Node object behind (listed NotReady for good), and a worker holds no credentials to
    delete it: say how."""
    if not host.path("/etc/kubernetes/kubelet.conf").exists() and not host.path("/etc/kubernetes/admin.conf").exists():
        return
    if host.live:
        host.run(KUBEADM_RESET, check=False, timeout=600)
        print("  kubeadm reset done")
    else:
        host.skipped(f"would run: {' '.join(KUBEADM_RESET)}")
    name = node_name(host)
    print(f"  the cluster still lists {name} (NotReady): on a control plane run `kubectl delete node {name}`")


def node_name(host: Host) -> str:
    """This node's name in the cluster: its hostname (the install set it to the cluster config's name)."""
    try:
        name = host.path("/etc/hostname").read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    return name or (socket.gethostname() if host.live else "NODE")


def run_reset(args: argparse.Namespace) -> int:
    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    state = State(host)
    files = state.files()
    units = state.units()
    if not files and not units and not state.packages():
        print("reset: nothing to undo (no record of an install on this node)")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise InstallError("reset removes what the installer did: re-run with --yes to confirm")
        answer = input(f"Undo {len(files)} file(s), {len(units)} unit(s)? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise InstallError("nothing changed: reset was not confirmed")
    host.log("=== reset")
    undo_kubeadm(host)
    for unit in reversed(units):
        if host.live:
            host.run(["systemctl", "disable", "--now", unit], check=False)
        else:
            host.run(host.systemctl("disable", unit), check=False)
        print(f"  disabled {unit}")
    for leftover in leftovers(host, state):
        leftover.unlink()
        print(f"  removed /{leftover.relative_to(host.root)} (left by an interrupted run)")
    for path, record in sorted(files.items(), reverse=True):
        done = undo_file(host, path, record)
        state.drop_file(path)  # undone: a reset cut after this point (a power cut) goes on with the rest
        print(f"  {done}")
        host.log(f"reset: {done}")
    packages = state.packages()
    if packages and node_distro(host).uses_apt:
        remove_debs(host, packages)
        print(f"  removed packages {' '.join(packages)}")
    elif packages:
        if host.live:
            host.run(["dnf", "remove", "-y", *OFFLINE_DNF, *packages], check=False)
        else:
            host.run(["dnf", "remove", "-y", *OFFLINE_DNF, f"--installroot={host.root}", *packages], check=False)
        print(f"  removed packages {' '.join(packages)}")
    for folder in (host.path("/var/lib/k8s-install/backups"), host.path(APT_DIR)):
        if folder.exists():
            shutil.rmtree(folder)
    state.remove()
    print("reset: done")
    return 0
