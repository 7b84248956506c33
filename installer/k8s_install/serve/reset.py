"""`serve reset`: stop the bundle host and remove exactly what serve made, from serve's own record."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.serve import layout


def run_reset(args: argparse.Namespace) -> int:
    from k8s_install.commands.reset import OFFLINE_DNF
    from k8s_install.node.undo import undo_file

    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    state = State(host, layout.STATE_FILE)
    if not state.path.exists():
        print("serve reset: nothing to undo (this machine is not a bundle host)")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise InstallError("serve reset stops the bundle host and removes what serve made: re-run with --yes")
        if input("Stop the bundle host and remove what serve made? [y/N] ").strip().lower() not in ("y", "yes"):
            raise InstallError("nothing changed: reset was not confirmed")
    host.log("=== serve reset")
    for unit in reversed(state.units()):
        host.run(["systemctl", "disable", "--now", unit] if host.live else host.systemctl("disable", unit), check=False)
        print(f"  disabled {unit}")
    service = state.data.get("firewalld_service")
    if service and host.live and host.run(["firewall-cmd", "--state"], check=False).returncode == 0:
        host.run(["firewall-cmd", "--permanent", f"--remove-service={service}"], check=False)
        host.run(["firewall-cmd", "--reload"], check=False)
        print(f"  closed firewalld service {service}")
    for path, record in sorted(state.files().items(), reverse=True):
        done = undo_file(host, path, record)
        print(f"  {done}")
        host.log(f"serve reset: {done}")
    packages = state.packages()
    if packages:
        command = ["dnf", "remove", "-y", *OFFLINE_DNF]
        command += [] if host.live else [f"--installroot={host.root}"]
        host.run([*command, *packages], check=False)
        print(f"  removed packages {' '.join(packages)}")
    for directory in sorted(set(state.data.get("directories", [])) | set(layout.OWN_DIRS), reverse=True):
        target = host.path(directory)
        if target.is_dir() and (directory in layout.OWN_DIRS or directory in state.data.get("directories", [])):
            shutil.rmtree(target)  # serve's own folders: registry storage, nginx's scratch, the state file
            print(f"  removed {directory}")
    if host.live:
        host.run(["systemctl", "daemon-reload"], check=False)
    print("serve reset: done")
    return 0
