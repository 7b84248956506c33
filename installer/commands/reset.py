"""`reset`: undo what the installer did on this node, from its state file."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict

from k8s_install.atomic import write_atomically
from k8s_install.errors import InstallError
from k8s_install.host import Host
from k8s_install.revert import revert_installer_changes
from k8s_install.state import State, ours_path_for
from k8s_install.steps.leftovers import leftovers

OFFLINE_DNF = ("--disablerepo=*", "--setopt=reposdir=/dev/null")


KUBEADM_RESET = ["kubeadm", "reset", "--force"]


def undo_kubeadm(host: Host) -> None:
    """Leave the cluster first (kubeadm removes what it wrote: /etc/kubernetes, etcd data, CNI state)."""
    if not host.path("/etc/kubernetes/kubelet.conf").exists() and not host.path("/etc/kubernetes/admin.conf").exists():
        return
    if host.live:
        host.run(KUBEADM_RESET, check=False, timeout=600)
        print("  kubeadm reset done")
    else:
        host.skipped(f"would run: {' '.join(KUBEADM_RESET)}")


def undo_file(host: Host, path: str, record: Dict[str, Any]) -> str:
    """Restore the original only where the file is as the installer left it; where the operator edited it
    since, take out only the installer's lines and keep theirs. Returns what was done."""
    target = host.path(path)
    backup = host.path(record["backup"]) if record.get("backup") else None
    original = backup if backup is not None and backup.is_file() else None
    current = target.read_bytes() if target.is_file() else None
    if current is None or hashlib.sha256(current).hexdigest() == record.get("sha256"):
        if original is not None:
            os.makedirs(target.parent, exist_ok=True)
            shutil.copy2(original, target)
            return f"restored {path}"
        if current is not None:
            target.unlink()
            return f"removed {path}"
        return f"{path} is already gone"
    if original is None:
        return f"kept {path}: it was edited after the installer wrote it; remove it if it is not needed"
    ours = host.path(ours_path_for(path))
    if not ours.is_file():  # written by an installer that kept no copy: the edits cannot be told apart
        kept = f"{path}.k8s-install-orig"
        shutil.copy2(original, host.path(kept))
        return f"kept {path} as edited after the install; its original is in {kept}"
    reverted = revert_installer_changes(*(_text(data) for data in (ours.read_bytes(), current, original.read_bytes())))
    write_atomically(target, reverted.text.encode("utf-8", "surrogateescape"), target.stat().st_mode & 0o7777, True)
    done = f"took the installer's lines out of {path} and kept your later edits"
    if reverted.conflicts:
        done += f" ({reverted.conflicts} place(s) you changed over the installer's lines were kept as you left them)"
    return done


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


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
        print(f"  {done}")
        host.log(f"reset: {done}")
    packages = state.packages()
    if packages:
        if host.live:
            host.run(["dnf", "remove", "-y", *OFFLINE_DNF, *packages], check=False)
        else:
            host.run(["dnf", "remove", "-y", *OFFLINE_DNF, f"--installroot={host.root}", *packages], check=False)
        print(f"  removed packages {' '.join(packages)}")
    backups = host.path("/var/lib/k8s-install/backups")
    if backups.exists():
        shutil.rmtree(backups)
    state.remove()
    print("reset: done")
    return 0
