"""Lab nodes: containers booted by systemd-nspawn (systemd as PID 1) from the cached root, one network
namespace each, veths to one bridge (tests/support/netns.py), all undone by `close()`.

Each node's root is an overlay: the cached root below (read-only, shared) and the node's own upper folder,
which therefore holds exactly what the node changed. containerd's folder is a plain bound folder (its
overlay snapshotter cannot use an overlay as upper layer). Commands run inside a node with
`nsenter -t <its PID 1> -a`; the installer as a transient unit of the node's systemd (`systemd-run`).

What a container cannot do, and how the lab stands in for it (also in tests/lab/standins.py):
- /sys/module is the node's own folder holding the names the host kernel has, so the modprobe stand-in
  can record modules it "loads";
- each host-wide sysctl key the installer sets (read-only in a container, shared by every node) is a file
  of the node's own bound over /proc/sys/..., starting at the host's value.

`python3` is Python 3.9, as on EL9, where `./k8s-install.pyz` (`#!/usr/bin/env python3`) finds the platform
Python 3.9: the host's self-contained 3.9 (pyenv's) is bound read-only into every node at its own path, and
/usr/local/bin/python3, ahead of Debian's /usr/bin/python3 on PATH, points to it. The node's own Python tools
(firewalld, firewall-cmd, dnf, the stand-ins) name /usr/bin/python3 and keep Debian's 3.11.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from k8s_install.steps.kernel import SYSCTL_SETTINGS
from tests.conftest import find_python39
from tests.support.netns import Lab, wait_for

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT = 120.0
HOST_WIDE_SYSCTL_DIR = "/var/lib/k8s-lab/sysctl"  # in the node: a file per host-wide key, bound over /proc/sys
NODE_PYTHON3 = "/usr/local/bin/python3"  # the `python3` the installer finds on NODE_PATH (or sshd's PATH)
NSPAWN_FLAGS = ("-q", "-b", "--register=no", "--keep-unit", "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
                "--console=passive", "--link-journal=no")  # fmt: skip


def _children(pid: int) -> List[int]:
    found: List[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found += [int(child) for child in text.split()]
    return found


def _is_namespace_init(pid: int) -> bool:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) >= 2 and ids[-1] == "1"
    return False


def host_wide_sysctl_keys(namespace: str) -> List[str]:
    """Keys of the installer's sysctl file that a container sees read-only (outside its network namespace),
    or that this network namespace shows read-only; keys this kernel lacks are left out."""
    keys = []
    for key, _value, _why in SYSCTL_SETTINGS:
        path = "/proc/sys/" + key.replace(".", "/")
        if not key.startswith("net."):
            if os.path.exists(path):
                keys.append(key)
            continue
        probe = subprocess.run(["ip", "netns", "exec", namespace, "test", "-e", path, "-a", "!", "-w", path])
        if probe.returncode == 0:
            keys.append(key)
    return keys


def python39_program() -> Optional[Path]:
    """The host's Python 3.9 if it is self-contained in one folder (pyenv's: its own libpython, found by the
    folder's path), which can then be bound into a node at the same path; else None."""
    found = find_python39()
    if not found:
        return None
    program = Path(found).resolve()
    prefix = program.parents[1]
    if prefix in (Path("/"), Path("/usr"), Path("/usr/local")):  # a system Python's files spread over /usr
        return None
    return program


def installer_pythons(log_text: str) -> List[str]:
    """The Python each run of the installer logged it ran under ("3.9.18 (/usr/local/bin/python3)"), in order."""
    marker = "=== Python "
    return [line.split(marker, 1)[1] for line in log_text.splitlines() if marker in line]


def ran_under_python39(log_text: str) -> bool:
    """Every run in the log ran under the node's `python3`, Python 3.9, and there was at least one."""
    found = installer_pythons(log_text)
    return bool(found) and all(entry.startswith("3.9.") and entry.endswith(f"({NODE_PYTHON3})") for entry in found)


class LabNode:
    def __init__(self, lab: Lab, root: Path, work: Path, name: str, address_cidr: str) -> None:
        self.name, self.address = name, address_cidr.split("/")[0]
        self.work = work
        self.namespace = lab.add_host(name, address_cidr)
        self.machine = f"{name}-{lab.suffix}"  # unique: systemd-nspawn keeps state under /run by this name
        self.process: Optional[subprocess.Popen] = None
        self.leader = 0
        self.merged = work / "root"
        for folder in ("upper", "overlay-work", "root", "containerd", "sys-module"):
            (work / folder).mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={root},upperdir={work / 'upper'},workdir={work / 'overlay-work'}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)], check=True)
        (self.merged / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
        for module in os.listdir("/sys/module"):
            (work / "sys-module" / module).mkdir(exist_ok=True)
        self.binds = [f"--bind={work / 'containerd'}:/var/lib/containerd", f"--bind={work / 'sys-module'}:/sys/module"]
        python39 = python39_program()
        if python39 is None:
            raise AssertionError("no self-contained Python 3.9 for the lab nodes (see conftest.lab_prerequisites)")
        self.binds.append(f"--bind-ro={python39.parents[1]}")
        python3 = self.path(NODE_PYTHON3)
        python3.parent.mkdir(parents=True, exist_ok=True)
        python3.symlink_to(python39)
        # systemd-nspawn binds onto /proc from inside the container: the sources are paths of the node
        sysctl_dir = self.path(HOST_WIDE_SYSCTL_DIR)
        sysctl_dir.mkdir(parents=True, exist_ok=True)
        for key in host_wide_sysctl_keys(self.namespace):
            (sysctl_dir / key).write_text(Path("/proc/sys/" + key.replace(".", "/")).read_text())
            self.binds.append(f"--bind={HOST_WIDE_SYSCTL_DIR}/{key}:/proc/sys/{key.replace('.', '/')}")

    # -- life -------------------------------------------------------------------------------------
    def boot(self) -> float:
        """Start the container and wait until systemd reports the boot finished; returns the seconds taken."""
        started = time.monotonic()
        self.start()
        self.wait_booted()
        return time.monotonic() - started

    def start(self) -> None:
        """Start the container (systemd as PID 1) and find its PID 1; `wait_booted` waits for the boot's end."""
        log = open(self.work / "console.log", "ab")  # noqa: SIM115 - lives as long as the container
        self.process = subprocess.Popen(
            ["systemd-nspawn", *NSPAWN_FLAGS, "-D", str(self.merged), f"--machine={self.machine}",
             f"--network-namespace-path=/run/netns/{self.namespace}", *self.binds],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SYSTEMD_LOG_LEVEL="err", SYSTEMD_NSPAWN_API_VFS_WRITABLE="network"),
        )  # fmt: skip
        log.close()
        self.leader = wait_for(self._find_leader, 30, what=f"{self.name}'s PID 1")

    def wait_booted(self) -> None:
        wait_for(self._booted, BOOT_TIMEOUT, interval=0.5, what=f"{self.name} to finish booting")

    def _find_leader(self) -> int:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.work / "console.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"systemd-nspawn for {self.name} exited {self.process.returncode}: {log}")
        candidates = [pid for pid in _children(self.process.pid) if _is_namespace_init(pid)]
        return candidates[0] if candidates else 0

    def _booted(self) -> bool:
        state = self.run(["systemctl", "is-system-running"], timeout=20, check=False).stdout.strip()
        return state in ("running", "degraded")

    def shutdown(self, grace: float = 30.0) -> None:
        """Orderly: SIGTERM to systemd-nspawn (it asks systemd to power off), then SIGKILL our PIDs."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                for pid in (self.leader, self.process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait(timeout=grace)
        subprocess.run(["umount", "-l", str(self.merged)], capture_output=True)

    # -- commands ---------------------------------------------------------------------------------
    def command(self, argv: Sequence[str], cwd: str = "/root", unit: str = "") -> List[str]:
        """argv as root on the node: in its namespaces and root; with `unit`, as a transient service of the
        node's systemd (`systemd-run --wait --pipe`), so it has the node's capabilities and cgroup, as a
        login shell would, and can be killed by unit name."""
        enter = ["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "--"]
        in_folder = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]
        if unit:
            environment = [f"--setenv={name}" for name in (f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8")]
            return enter + ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", f"--unit={unit}",
                            *environment, *in_folder]  # fmt: skip
        environment = [f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]
        return enter + ["env", "-i", *environment, *in_folder]

    def run(
        self, argv: Sequence[str], timeout: float = 120, check: bool = True, cwd: str = "/root", unit: str = ""
    ) -> subprocess.CompletedProcess:
        command = self.command(argv, cwd, unit)
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(argv)} -> {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result

    def popen(self, argv: Sequence[str], log: Path, cwd: str, unit: str) -> subprocess.Popen:
        out = open(log, "ab")  # noqa: SIM115
        process = subprocess.Popen(self.command(argv, cwd, unit), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
        out.close()
        return process

    def path(self, absolute: str) -> Path:
        """A path of the node, seen from the host (through the overlay)."""
        return self.merged / absolute.lstrip("/")

    def unit(self, unit: str, *properties: str) -> Dict[str, str]:
        shown = self.run(["systemctl", "show", unit, *(f"--property={p}" for p in properties)]).stdout
        return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)

    def active(self, unit: str) -> bool:
        return self.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0


class LabCluster:
    """N nodes on one bridge. `close()` stops only the containers it started and removes its namespaces."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root, self.work = root, work
        (work / "logs").mkdir(parents=True, exist_ok=True)
        self.lab = Lab(work / "logs", prefix="k8slab")
        self.nodes: Dict[str, LabNode] = {}
        self.boot_seconds: Dict[str, float] = {}

    def add(self, name: str, address_cidr: str) -> LabNode:
        node = LabNode(self.lab, self.root, self.work / name, name, address_cidr)
        self.nodes[name] = node
        self.boot_seconds[name] = node.boot()
        return node

    def add_all(self, nodes: Sequence[Tuple[str, str]]) -> None:
        """Like `add` for each (name, address) in turn, but the nodes boot at the same time; each node's
        boot_seconds run from its own start to the end of its boot."""
        started: Dict[str, float] = {}
        for name, address_cidr in nodes:
            node = LabNode(self.lab, self.root, self.work / name, name, address_cidr)
            self.nodes[name] = node
            started[name] = time.monotonic()
            node.start()
        for name in started:
            self.nodes[name].wait_booted()
            self.boot_seconds[name] = time.monotonic() - started[name]

    def close(self) -> None:
        for node in reversed(list(self.nodes.values())):
            node.shutdown()
        self.lab.close()
