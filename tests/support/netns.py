"""A throwaway network of namespaces on one bridge, and processes run inside them, all undone by `close()`.

The bridge lives in its own namespace, so nothing is added to the host's network namespace. Names carry
a random suffix; processes are started with `ip netns exec` (which execs, so the PID is the program's)
and stopped by that PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

BRIDGE = "br0"
NODE_LINK = "eth0"


def ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class Lab:
    def __init__(self, logs: Path, prefix: str = "k8sha") -> None:
        self.suffix = secrets.token_hex(3)
        self.prefix = prefix
        self.logs = logs
        self.namespaces: List[str] = []
        self.processes: List[subprocess.Popen] = []
        self.bridge_ns = self._add_namespace("br")
        ip("-n", self.bridge_ns, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", self.bridge_ns, "link", "set", BRIDGE, "up")
        self.hosts: Dict[str, str] = {}  # short name -> namespace

    def _add_namespace(self, short: str) -> str:
        name = f"{self.prefix}-{short}-{self.suffix}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def add_host(self, short: str, address_cidr: str) -> str:
        """A namespace with `eth0` on the bridge holding `address_cidr`."""
        namespace = self._add_namespace(short)
        port = f"v{len(self.hosts)}-{self.suffix}"
        ip(
            "-n",
            self.bridge_ns,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            NODE_LINK,
            "netns",
            namespace,
        )
        ip("-n", self.bridge_ns, "link", "set", port, "master", BRIDGE, "up")
        ip("-n", namespace, "addr", "add", address_cidr, "dev", NODE_LINK)
        ip("-n", namespace, "link", "set", NODE_LINK, "up")
        self.hosts[short] = namespace
        return namespace

    def addresses(self, short: str) -> List[str]:
        links = json.loads(ip("-n", self.hosts[short], "-j", "addr", "show", "dev", NODE_LINK) or "[]")
        return [info["local"] for link in links for info in link.get("addr_info", []) if info.get("family") == "inet"]

    def start(self, short: str, argv: Sequence[str], log_name: str, cwd: Optional[Path] = None) -> subprocess.Popen:
        log = open(self.logs / f"{log_name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.hosts[short], *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
        log.close()
        self.processes.append(process)
        return process

    def run(self, short: str, argv: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.hosts[short], *argv], capture_output=True, text=True, timeout=timeout
        )

    @staticmethod
    def stop(process: subprocess.Popen, grace: float = 5.0) -> None:
        """SIGTERM the process by its PID, then SIGKILL if it lingers."""
        if process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)

    def close(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.stop(process)
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self.namespaces.clear()


def wait_for(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until `condition()` is truthy; returns its value. Fails the test (no hang) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(interval)
