"""One user-error root for both tools, and output whose reader left early: what each exit looks like."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

from k8s_install.errors import STDOUT_CLOSED
from tests.conftest import REPO, StandInRelease, run_bundler

INSTALLER_CRASH_LOG = Path("/var/log/k8s-install.crash.log")


def test_user_error_deep_in_installer_code_is_one_line_from_bundler(release: StandInRelease, tmp_path: Path) -> None:
    """A file whose URL ends in `/..` would land at `files/..`: the bundle layout code of k8s_install refuses
    that path, and `bundler build` reports it as any other user error (it was exit 3 before the one root)."""
    evil = "/releases/evil/.."
    release.mirror.add("/downloads.example.invalid/releases/", b"evil")  # the HTTP client drops the dot segment
    release.manifest["files"].append(  # type: ignore[union-attr]
        {"name": "evil", "version": "1", "url": f"https://downloads.example.invalid{evil}", "arch": "noarch"}
    )
    release.write()
    result = run_bundler(
        "build", "--allow-incomplete", "--allow-unpinned", "--manifest", str(release.path),
        "--mirror", release.mirror.url, "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
        env={"TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "bundler: error: bundle contents: path 'files/..' escapes the bundle folder"
    ), result.stderr
    assert not list(tmp_path.glob("bundler-crash-*"))
    assert not (tmp_path / "out" / "k8s-bundle-1.29.6-rocky9-amd64.tar").exists()


def run_into_closed_pipe(command: List[str], env: Dict[str, str]) -> subprocess.CompletedProcess:
    """Run `command` with its standard output a real pipe whose reader has already gone (`| head` that left)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, timeout=300)
    finally:
        os.close(writer)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_bundler_inspect_json_into_a_closed_pipe_leaves_quietly(release: StandInRelease, tmp_path: Path) -> None:
    built = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    tarball = tmp_path / "out" / "k8s-bundle-1.29.6-rocky9-amd64.tar"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    result = run_into_closed_pipe([sys.executable, "-m", "bundler", "inspect", "--json", str(tarball)], env)
    assert (result.returncode, result.stderr) == (STDOUT_CLOSED, "")
    assert not list(tmp_path.glob("bundler-crash-*"))

    shell = subprocess.run(  # the same through a shell, as a user types it: no message whatever the timing
        f"{sys.executable} -m bundler inspect --json {tarball} | head -c 10",
        shell=True, capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert (shell.returncode, shell.stdout, shell.stderr) == (0, '{\n  "schem', "")
    assert not list(tmp_path.glob("bundler-crash-*"))


def test_installer_status_json_into_a_closed_pipe_leaves_quietly(tmp_path: Path) -> None:
    """`status --root` of an empty system image reads only files: no node needed."""
    (tmp_path / "root").mkdir()
    (tmp_path / "bundle").mkdir()
    env = dict(os.environ, HOME=str(tmp_path))
    crash_log_before = _size(INSTALLER_CRASH_LOG)
    command = [sys.executable, "-m", "k8s_install", "status", "--json", "--root", str(tmp_path / "root")]
    result = run_into_closed_pipe([*command, "--bundle", str(tmp_path / "bundle")], env)
    assert (result.returncode, result.stderr) == (STDOUT_CLOSED, "")
    assert _size(INSTALLER_CRASH_LOG) == crash_log_before
    assert not (tmp_path / ".k8s-install.crash.log").exists()


def test_a_broken_pipe_that_is_not_stdout_stays_a_bug() -> None:
    """Only the reader of standard output leaving is quiet: a pipe to a child process that broke is not."""
    from k8s_install.errors import stdout_reader_left

    assert not stdout_reader_left(BrokenPipeError(32, "Broken pipe"))  # our stdout (pytest's capture) is fine
    assert not stdout_reader_left(ValueError("not a pipe at all"))


def test_each_tool_has_a_name_for_the_one_root() -> None:
    import bundler.errors
    import k8s_install.errors

    assert bundler.errors.BundlerError is k8s_install.errors.InstallError is k8s_install.errors.UserError
