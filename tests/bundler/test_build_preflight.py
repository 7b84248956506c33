"""What `bundler build` checks before its first request: an output folder it cannot write, the programs the
build will run (rpmkeys, gpg, ssh-keygen), and (tests/test_build.py) the free space the plan needs; and a
cleanup that fails never hides the error being reported."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.prerequisites import require


def _build_args(release: StandInRelease, tmp_path: Path, *extra: str) -> list:
    return [
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--retries", "0", *extra,
    ]  # fmt: skip


@pytest.mark.root
def test_read_only_output_is_refused_before_any_download(release: StandInRelease, tmp_path: Path) -> None:
    """A read-only disk as --output (mounted read-only in a private mount namespace): one line naming
    --output and the reason, exit 1, and not one request to the mirror."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private read-only mount")
    require("unshare")
    (tmp_path / "out").mkdir()
    args = " ".join(_build_args(release, tmp_path))
    script = f"mount -t tmpfs -o ro,size=1m tmpfs {tmp_path / 'out'} && {sys.executable} -m bundler {args}"
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"bundler: error: --output {tmp_path / 'out'}: cannot write there (Read-only file system); "
        "choose another --output"
    ]
    assert release.mirror.requests == [] and release.mirror.heads == []


def test_output_that_is_a_file_is_refused_before_any_download(release: StandInRelease, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    result = run_bundler(*_build_args(release, tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"bundler: error: --output {tmp_path / 'out'}: ")
    assert release.mirror.requests == [] and release.mirror.heads == []


def _path_with_only_python(tmp_path: Path) -> str:
    """A PATH holding python and nothing else: rpmkeys, gpg, gpgv and ssh-keygen are all missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "python"  # not a symlink: the venv is found beside the interpreter's own path
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(bin_dir)


def test_missing_rpmkeys_and_gpg_are_named_before_any_download(release: StandInRelease, tmp_path: Path) -> None:
    key = f"{release.mirror.url}/repo/RPM-GPG-KEY"
    release.manifest["rpm"] = {
        "rocky9": {
            "repositories": [
                {"id": "base", "baseurl": f"{release.mirror.url}/repo/", "gpgkey": key, "gpgkey_fingerprint": "A" * 40},
            ],  # fmt: skip
            "packages": ["kubeadm"],
        }
    }
    release.write()
    result = run_bundler(*_build_args(release, tmp_path), env={"PATH": _path_with_only_python(tmp_path)})
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "bundler: error: this build needs rpmkeys to check the signatures of repository base's RPMs, and it is "
        "not installed: install the rpm package: `apt-get install rpm` or `dnf install rpm` "
        "(also missing: gpg, gpgv)"
    )
    assert release.mirror.requests == [] and release.mirror.heads == []


def test_missing_ssh_keygen_is_named_before_any_download(release: StandInRelease, tmp_path: Path) -> None:
    key = tmp_path / "signing-key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    result = run_bundler(
        *_build_args(release, tmp_path, "--sign-key", str(key)), env={"PATH": _path_with_only_python(tmp_path)}
    )
    assert result.returncode == 1
    assert "ssh-keygen not found" in result.stderr.strip().splitlines()[-1]
    assert release.mirror.requests == [] and release.mirror.heads == []


def test_a_failing_cleanup_does_not_hide_why_the_tarball_could_not_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a read-only disk even removing the half-written file fails: the error reported is still the write's."""
    from bundler.bundle_writer import BundleContents, write_tarball
    from bundler.errors import BundlerError

    contents = BundleContents()
    contents.add_bytes("bundle.yaml", b"kubernetes: 1.29.6\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".b.tar.partial").mkdir()  # opening it for writing fails (EISDIR)

    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(BundlerError, match=r"cannot write .*b\.tar: Is a directory"):
        write_tarball(contents, "b", tmp_path / "out" / "b.tar", 1700000000)


def test_the_programs_a_build_needs_come_from_the_manifest() -> None:
    """Known from the manifest alone (no network): here the real 1.29.6 release."""
    from bundler.manifest import load_release
    from bundler.preflight import needed_programs

    release = load_release("1.29.6", None)
    needed = needed_programs(release, release.resolve_os("rocky9"), "amd64")
    assert set(needed) == {"rpmkeys", "gpg", "gpgv"}  # pinned keys; pkgs.k8s.io signs its repomd.xml
    assert "repository kubernetes" in needed["gpgv"]
