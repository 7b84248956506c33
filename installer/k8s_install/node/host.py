"""The machine the installer changes: a root folder (`/` or `--root DIR`), its commands and its log.

With `--root DIR` the installer prepares a mounted system image or a test sandbox: files are written under
DIR and units are enabled with `systemctl --root DIR`, while actions on the running kernel and services
(swapoff, modprobe, sysctl, restarts) are logged as skipped, because they would hit the machine running the
installer rather than DIR.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

from k8s_install.errors import InstallError

LOG_PATH = "/var/log/k8s-install.log"
STATE_DIR = "/var/lib/k8s-install"


class Host:
    def __init__(self, root: Path = Path("/"), verbose: bool = False) -> None:
        self.root = Path(root).resolve()
        self.live = self.root == Path("/")
        self.verbose = verbose
        self.recorded: List[str] = []  # what skipped() logged, in order: `plan` shows it

    def path(self, absolute: str) -> Path:
        """Where an absolute path of the target system is, seen from here."""
        if not absolute.startswith("/"):
            raise ValueError(f"not an absolute path: {absolute}")
        return self.root / absolute.lstrip("/")

    # -- log ---------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
        line = f"{stamp} {message}\n"
        try:
            target = self.path(LOG_PATH)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "a", encoding="utf-8") as log:
                log.write(line)
            os.chmod(target, 0o600)
        except OSError:
            pass  # logging must never be the reason an install fails
        if self.verbose:
            print(f"  | {message}")

    # -- commands ----------------------------------------------------------------------------------
    def which(self, name: str) -> Optional[str]:
        return shutil.which(name)

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        input_bytes: Optional[bytes] = None,
        timeout: Optional[float] = None,
        env: Optional[dict] = None,
        redact: Sequence[str] = (),
    ) -> subprocess.CompletedProcess:
        """Run a command (never through a shell), log it with its exit code, fail with its last line.
        Strings in `redact` (tokens, keys) are masked in the log and in error messages."""
        command = [str(part) for part in argv]
        printable = masked(" ".join(shlex.quote(part) for part in command), redact)
        try:
            result = subprocess.run(
                command, input=input_bytes, capture_output=True, timeout=timeout, check=False,
                env=dict(os.environ, **env) if env else None,
            )  # fmt: skip
        except FileNotFoundError:
            self.log(f"run: {printable} -> not found")
            raise InstallError(f"command {command[0]} is not installed (needed for: {printable})") from None
        except subprocess.TimeoutExpired:
            self.log(f"run: {printable} -> timed out after {timeout} s")
            raise InstallError(f"{printable} did not finish within {timeout} s") from None
        self.log(f"run: {printable} -> exit {result.returncode}")
        if check and result.returncode != 0:
            raise InstallError(f"{printable} failed (exit {result.returncode}): {last_line(result)}")
        return result

    def skipped(self, action: str) -> None:
        """An action on the running system that a --root run does not do."""
        self.recorded.append(action)
        self.log(f"skipped (offline root {self.root}): {action}")

    def systemctl(self, *args: str) -> List[str]:
        """systemctl argv acting on this root (`--root DIR` when not live)."""
        return ["systemctl", *args] if self.live else ["systemctl", f"--root={self.root}", *args]


def masked(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def last_line(result: subprocess.CompletedProcess) -> str:
    for stream in (result.stderr, result.stdout):
        text = stream.decode("utf-8", "replace") if isinstance(stream, bytes) else (stream or "")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1][:300]
    return "no output"
