"""Power cuts of a lab node and what must hold after it boots again (tests/lab/test_live_powercut.py).

The cut: SIGKILL to the node's PID 1 (its systemd) from the host. When the first process of a PID namespace
dies, the kernel SIGKILLs every other process in it at once (the installer, dnf, systemctl, containerd, every
daemon), so nothing of the node runs a line of shutdown code: no unit stops, no file is flushed by its
program, no state is saved. `machinectl terminate` or SIGTERM to systemd-nspawn would be an orderly power-off.
What a container kill cannot do is drop the page cache (the node's files live in the host's), so a write that
was not fsynced is not lost here: the write discipline is proven separately by tracing it (`WriteTrace`).

A chain cuts an installer command at each of its boundaries in turn: run, cut at the first boundary not cut
yet, boot, check, run again (the steps done are no-ops), cut at the next, ... until a run finishes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from tests.lab.cluster import BUNDLE_DIR, LiveCluster
from tests.lab.node import LabNode
from tests.support.netns import wait_for

LOG = "/var/log/k8s-install.log"
STATE = "/var/lib/k8s-install/state.json"
Snapshot = Dict[str, Optional[bytes]]  # node path -> its bytes, None when absent
Boundaries = Callable[[List[str]], List[str]]  # one run's complete log lines -> its boundaries, in order


def pid_namespace_members(namespace: str) -> List[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
    return found


def power_cut(node: LabNode) -> None:
    """Every process of the node SIGKILLed at once (see the module's docstring); returns when none is left."""
    assert node.process is not None and node.leader
    namespace = os.readlink(f"/proc/{node.leader}/ns/pid")
    os.kill(node.leader, signal.SIGKILL)
    node.process.wait(timeout=60)  # systemd-nspawn ends with its container
    wait_for(lambda: not pid_namespace_members(namespace), 30, what=f"{node.name}'s processes to be gone")


def snapshot(node: LabNode, paths: Iterable[str]) -> Snapshot:
    found: Snapshot = {}
    for path in sorted(paths):
        target = node.path(path)
        found[path] = target.read_bytes() if target.is_file() and not target.is_symlink() else None
    return found


def managed_paths(node: LabNode) -> Set[str]:
    """The files the installer manages on the node, from its state (empty when there is none)."""
    state = node.path(STATE)
    return set(json.loads(state.read_text())["files"]) if state.exists() else set()


def unit_states(node: LabNode, units: Sequence[str]) -> Dict[str, Tuple[str, str]]:
    """unit -> (its unit file's state, its active state), once no unit is still starting; an alias (Debian's
    chronyd for chrony) is its unit's, a unit without a file is ("absent", "inactive")."""

    def settled() -> Optional[Dict[str, Tuple[str, str]]]:
        found = {}
        for unit in units:
            shown = node.unit(unit, "UnitFileState", "ActiveState")
            active = shown.get("ActiveState", "")
            if active in ("activating", "deactivating", "reloading"):
                return None
            found[unit] = (shown.get("UnitFileState") or "absent", active)
        return found

    return wait_for(settled, 60, interval=0.5, what=f"{', '.join(units)} to settle on {node.name}")


@dataclass
class AfterBoot:
    """What one boot after a cut found: the files neither old nor new, the operator edits gone."""

    torn: List[str] = field(default_factory=list)
    edits_lost: List[str] = field(default_factory=list)
    services: List[str] = field(default_factory=list)  # enabled but not running, or running but not enabled


def check_after_boot(
    node: LabNode, old: Snapshot, new: Snapshot, edits: Callable[[LabNode], List[str]], units: Sequence[str]
) -> AfterBoot:
    found = AfterBoot(edits_lost=edits(node))
    state = node.path(STATE)
    if state.exists():
        try:
            json.loads(state.read_text())
        except ValueError as error:
            found.torn.append(f"{STATE} unreadable: {error}")
    for path, now in snapshot(node, old).items():
        if now != old[path] and now != new[path]:
            found.torn.append(f"{path}: neither as before nor as after ({'absent' if now is None else len(now)} bytes)")
    for unit, (enabled, active) in unit_states(node, units).items():
        if (enabled == "enabled") != (active == "active"):
            found.services.append(f"{unit} {enabled} but {active}")
    return found


@dataclass
class Cut:
    boundary: str
    after: AfterBoot


def cut_at_each_boundary(
    cluster: LiveCluster,
    name: str,
    argv: Sequence[str],
    boundaries: Boundaries,
    after_boot: Callable[[], AfterBoot],
    work: Path,
    cwd: str = BUNDLE_DIR,
) -> Tuple[List[Cut], subprocess.CompletedProcess]:
    """Run `argv` on the node, cut its power at the first boundary not cut yet, boot, check, and again, until a
    run finishes; returns the cuts and the finished run (its output)."""
    node = cluster[name]
    cuts: List[Cut] = []
    for _attempt in range(60):
        log = node.path(LOG)
        offset = log.stat().st_size if log.exists() else 0
        cluster.count += 1
        output = work / f"run-{cluster.count}.log"
        launcher = node.popen(argv, output, cwd=cwd, unit=f"k8s-lab-cut-{cluster.count}")
        boundary = _watch(launcher, log, offset, boundaries, {cut.boundary for cut in cuts})
        if boundary is None:
            launcher.wait(timeout=600)
            text = output.read_text(errors="replace")
            return cuts, subprocess.CompletedProcess(list(argv), launcher.returncode, text, "")
        power_cut(node)
        launcher.wait(timeout=60)
        node.boot()
        cuts.append(Cut(boundary, after_boot()))
    raise AssertionError(f"{name}: {' '.join(argv)} did not finish after {len(cuts)} cuts")


def _watch(launcher: subprocess.Popen, log: Path, offset: int, boundaries: Boundaries, done: Set[str]) -> Optional[str]:
    """The first boundary of this run not in `done`, as soon as the log shows it; None when the run ended."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ended = launcher.poll() is not None
        text = log.read_text(errors="replace")[offset:] if log.exists() else ""
        lines = text.split("\n")[:-1]  # complete lines only
        for boundary in boundaries(lines):
            if boundary not in done:
                return None if ended else boundary
        if ended:
            return None
        time.sleep(0.02)
    raise AssertionError("the run neither reached a boundary nor ended within 600 s")


STEP_LINE = re.compile(r"^\S+ \[([a-z-]+)\] ")


def step_boundaries(lines: List[str]) -> List[str]:
    """An install or upgrade: each step that changes something, when it starts changing (its first change
    is logged just before it is applied); the steps before it are done."""
    found: List[str] = []
    for line in lines:
        matched = STEP_LINE.match(line)
        if matched and matched.group(1) not in found:
            found.append(matched.group(1))
    return [f"before [{step}]" for step in found]


def reset_boundaries(lines: List[str]) -> List[str]:
    """A reset: after `kubeadm reset`, after the first unit is disabled, after the first file and half of the
    files are undone, after the packages are removed."""
    found: List[str] = []
    undone = 0
    for line in lines:
        text = line.split(" ", 1)[-1]
        if text.startswith("run: kubeadm reset"):
            found.append("after kubeadm reset")
        elif text.startswith("run: systemctl disable"):
            found.append("after a unit disabled")
        elif text.startswith("reset: "):
            undone += 1
            if undone == 1:
                found.append("after the first file undone")
            if undone == 10:
                found.append("after ten files undone")
        elif text.startswith("run: dnf remove"):
            found.append("after the packages removed")
    return list(dict.fromkeys(found))


@dataclass
class WriteTrace:
    """The file system calls of a run traced by `strace -f`, read back: how each file came to be."""

    lines: List[str]

    @classmethod
    def read(cls, path: Path) -> WriteTrace:
        """strace's lines, a call split by another process's (`<unfinished ...>`, `<... resumed>`) joined."""
        lines: List[str] = []
        pending: Dict[str, str] = {}
        for line in path.read_text(errors="replace").splitlines():
            pid, _, rest = line.partition(" ")
            rest = rest.lstrip()
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            elif rest.startswith("<..."):
                lines.append(f"{pid} {pending.pop(pid, '')}{rest.split('resumed>', 1)[-1]}")
            else:
                lines.append(f"{pid} {rest}")
        return cls(lines)

    def replacements(self, path: str) -> List[Tuple[str, int]]:
        """(temporary, line index) of each rename or link that put a file at `path`."""
        found = []
        pattern = re.compile(r'(?:rename|renameat2?|link|linkat)\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)"')
        for index, line in enumerate(self.lines):
            matched = pattern.search(line)
            if matched and matched.group(2) == path:
                found.append((matched.group(1), index))
        return found

    def opened(self, path: str, before: int = -1) -> List[Tuple[int, str, int, int]]:
        """(pid, flags, fd, line index) of each successful openat of `path` (before line `before`)."""
        found = []
        pattern = re.compile(r'^(\d+) +openat\(AT_FDCWD, "([^"]+)", ([A-Z_|]+)[^)]*\) = (\d+)')
        for index, line in enumerate(self.lines[: before if before >= 0 else None]):
            matched = pattern.search(line)
            if matched and matched.group(2) == path:
                found.append((int(matched.group(1)), matched.group(3), int(matched.group(4)), index))
        return found

    def synced(self, pid: int, fd: int, start: int, end: int) -> bool:
        """An fsync or fdatasync of the descriptor between two lines (before the descriptor was closed)."""
        for line in self.lines[start:end]:
            if re.match(rf"^{pid} +(?:fsync|fdatasync)\({fd}\) += 0", line):
                return True
            if re.match(rf"^{pid} +close\({fd}\)", line):
                return False
        return False

    def written_in_place(self, path: str) -> bool:
        """`path` itself opened for writing (truncated or not): a reader could see it half-written."""
        return any("O_WRONLY" in flags or "O_RDWR" in flags for _pid, flags, _fd, _index in self.opened(path))

    def problems(self, path: str) -> List[str]:
        """How the writes of `path` break the discipline: temporary in the same folder, fsynced, renamed over
        it, the folder fsynced after the rename."""
        found = []
        if self.written_in_place(path):
            found.append("written in place")
        replacements = self.replacements(path)
        if not replacements:
            return found + ["never renamed into place"]
        folder = os.path.dirname(path)
        for temporary, index in replacements:
            if os.path.dirname(temporary) != folder:
                found.append(f"temporary {temporary} in another folder")
            writes = [entry for entry in self.opened(temporary, index) if "O_CREAT" in entry[1]]
            if not writes:
                found.append(f"temporary {temporary} not created before the rename")
                continue
            pid, _flags, fd, opened_at = writes[-1]
            if not self.synced(pid, fd, opened_at, index):
                found.append(f"temporary {temporary} not fsynced before the rename")
            after = [entry for entry in self.opened(folder) if entry[3] > index]
            if not any(self.synced(p, f, at, len(self.lines)) for p, _fl, f, at in after[:3]):
                found.append(f"{folder} not fsynced after the rename")
        return found


TRACED = "openat,write,fsync,fdatasync,rename,renameat,renameat2,link,linkat,close"


def traced_run(node: LabNode, argv: Sequence[str], trace: Path, cwd: str = BUNDLE_DIR) -> subprocess.CompletedProcess:
    """`argv` on the node under the host's strace (following every process into the node's namespaces)."""
    command = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", f"trace={TRACED}", "-o", str(trace)]
    return subprocess.run(command + node.command(argv, cwd), capture_output=True, text=True, timeout=900)
