"""A real containerd started for a test: its own root, state, socket and config under a temp folder,
the CRI plugin off (no CNI, no ports), stopped by its PID."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import List, Optional

CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"""


def missing_tools() -> List[str]:
    return [tool for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2") if shutil.which(tool) is None]


class Containerd:
    def __init__(self, work: Path, config_text: Optional[str] = None) -> None:
        """`config_text`: a whole config of the caller's (its root, state and socket under `work`)."""
        self.work = work
        self.config_text = config_text
        self.socket = str(work / "containerd.sock")
        self.config = work / "config.toml"
        self.log = work / "containerd.log"
        self.ctr = shutil.which("ctr") or "ctr"
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> Containerd:
        for folder in ("root", "state"):
            (self.work / folder).mkdir(parents=True, exist_ok=True)
        text = CONFIG.format(root=self.work / "root", state=self.work / "state", socket=self.socket)
        self.config.write_text(self.config_text or text)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["containerd", "--config", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"containerd exited: {self.log.read_text()[-2000:]}")
            if self.run_ctr("version").returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("containerd did not answer")

    def run_ctr(self, *args: str, namespace: str = "k8s.io") -> subprocess.CompletedProcess:
        command = [self.ctr, "--address", self.socket, "--namespace", namespace, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Containerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
