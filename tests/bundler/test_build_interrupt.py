"""Ctrl-C ends a build promptly in every phase, even while servers accept and never answer, and keeps what was
downloaded (the partial files resume next time). Real subprocesses, a real SIGINT, real loopback servers.

The bound asserted is generous (20 s, against the 30 s timeout and four retries the build is given: before,
such a build exited only after its pending requests had timed out and retried, minutes later): this is about
not waiting for the requests, not about timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import REPO, StandInRelease
from tests.support.silent_server import SilentServer

BOUND = 20.0
STALL = 1 << 16  # one whole read of the downloader (64 KiB): it reaches the file before the server stalls
INTERRUPTED = "bundler: interrupted; run the same command again to continue from the cache"


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer().start()
    yield server
    server.stop()


def start_build(release: StandInRelease, tmp_path: Path, mirror: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "bundler", "build", "--allow-incomplete", "--manifest", str(release.path),
        "--mirror", mirror, "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
        "--timeout", "30", "--retries", "4", "--jobs", "4",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=REPO, stderr=subprocess.PIPE, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen) -> None:
    for _ in range(400):
        if condition():
            return
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the build never reached the state to interrupt: {process.communicate()[1]}")


def interrupt(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"the build was still running {BOUND} s after Ctrl-C") from None
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in stderr
    return stderr


def test_ctrl_c_while_the_server_never_answers_the_plan_requests(
    release: StandInRelease, silent: SilentServer, tmp_path: Path
) -> None:
    """Planning asks every file's size on four threads; the server accepts and says nothing."""
    process = start_build(release, tmp_path, silent.url)
    wait_for(lambda: len(silent.accepted) >= 3, process)
    interrupt(process)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_while_downloads_hang_keeps_the_partial_files(release: StandInRelease, tmp_path: Path) -> None:
    """The sizes are known; every download sends its first bytes and then nothing. Ctrl-C ends the build at
    once, and the bytes received stay in the cache for the next run, which resumes from them."""
    for name in ("containerd", "runc"):
        release.mirror.files[release.served_path(name)].stall_after = STALL
    process = start_build(release, tmp_path, release.mirror.url)
    partial_dir = tmp_path / "cache" / "partial"

    def both_started() -> bool:
        parts = list(partial_dir.glob("*.part")) if partial_dir.exists() else []
        return len([p for p in parts if p.stat().st_size >= STALL]) >= 2

    wait_for(both_started, process)
    interrupt(process)
    kept = sorted(p.stat().st_size for p in partial_dir.glob("*.part"))
    assert kept == [STALL, STALL]
    for name in ("containerd", "runc"):
        release.mirror.files[release.served_path(name)].stall_after = None
    release.mirror.requests.clear()
    again = subprocess.run(
        [sys.executable, "-m", "bundler", "build", "--allow-incomplete", "--manifest", str(release.path),
         "--mirror", release.mirror.url, "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    ranges = {path: header for path, header in release.mirror.requests}
    assert ranges[release.served_path("containerd")] == f"bytes={STALL}-"
    assert ranges[release.served_path("runc")] == f"bytes={STALL}-"
