"""Facts: read-only probes of the machine a step plans for (its OS release, CPUs, memory, disk, listeners).

They read and never change anything; a step decides what a fact means. Facts of the node's files take the
`Host` (so --root reads the system image); facts of the running machine (/proc) read this machine.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
from typing import Dict, List, Optional

from k8s_install.node.host import Host


def read_os_release(host: Host) -> Dict[str, str]:
    """/etc/os-release as a mapping (ID, VERSION_ID, PRETTY_NAME...); empty when the file is absent."""
    values = {}
    path = host.path("/etc/os-release")
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip('"')
    return values


def releasever(host: Host) -> Optional[str]:
    """What dnf needs as --releasever for an --installroot that has no system-release package yet (None live)."""
    if host.live:
        return None
    return read_os_release(host).get("VERSION_ID", "9").split(".")[0] or "9"


def utc_now() -> datetime.datetime:
    """This machine's clock, the one TLS checks certificates against."""
    return datetime.datetime.now(datetime.timezone.utc)


def effective_uid() -> int:
    return os.geteuid()


def machine() -> str:
    return platform.machine()


def cpu_count() -> int:
    return os.cpu_count() or 1


def memory_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def disk_free(path: object) -> int:
    return shutil.disk_usage(str(path)).free


def filesystem_id(path: object) -> int:
    """Which filesystem holds `path` (its device number): needs on one filesystem add up."""
    return os.stat(str(path)).st_dev


def listening_ports() -> Dict[int, str]:
    """Listening TCP ports of this network namespace -> the command name of the process holding them."""
    inodes: Dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines, None)
                for line in lines:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                        inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
        except FileNotFoundError:
            continue
    owners = {port: "" for port in inodes.values()}
    for pid in (entry for entry in os.listdir("/proc") if entry.isdigit()):
        held = [inodes[inode] for inode in _socket_inodes(pid) if inode in inodes]
        if held:
            try:
                with open(f"/proc/{pid}/comm", encoding="ascii", errors="replace") as comm:
                    name = comm.read().strip()
            except OSError:
                continue
            for port in held:
                owners[port] = name
    return owners


def _socket_inodes(pid: str) -> List[str]:
    """Inodes of the sockets a process holds (fds come and go while we look: each is read on its own)."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []  # the process ended, or is not ours to read
    found = []
    for descriptor in descriptors:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        if link.startswith("socket:["):
            found.append(link[len("socket:[") : -1])
    return found


def docker_running(host: Host) -> bool:
    """A docker socket in the node's /run, or (live) a dockerd process."""
    if host.path("/run/docker.sock").exists():
        return True
    for entry in os.listdir("/proc") if host.live else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="ascii", errors="replace") as comm:
                    if comm.read().strip() == "dockerd":
                        return True
            except OSError:
                continue
    return False
