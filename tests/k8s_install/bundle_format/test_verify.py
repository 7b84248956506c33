"""`bundler verify` and `k8s-install.pyz verify` on a real built bundle, intact and damaged."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_bundler
from tests.support.stand_in_bundle import stand_in_tarball
from tests.support.user_errors import one_error_line

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """This test's copy of the stand-in bundle's tarball (built once per run: tests/support/stand_in_bundle.py)."""
    return stand_in_tarball(tmp_path / "out")


@pytest.fixture
def unpacked(bundle: Path, tmp_path: Path) -> Path:
    subprocess.run(["tar", "-xf", str(bundle), "-C", str(tmp_path)], check=True)
    return tmp_path / TOP


def verify(target: Path):
    return run_bundler("verify", str(target))


def test_intact_tarball_and_folder_pass(bundle: Path, unpacked: Path) -> None:
    for target in (bundle, unpacked):
        result = verify(target)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("bundle OK: 6 files")


def test_flipped_byte_is_caught_in_folder_and_tarball(bundle: Path, unpacked: Path) -> None:
    victim = unpacked / "files" / "containerd-1.0.0-linux-amd64.bin"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x01
    victim.write_bytes(bytes(data))
    assert "files/containerd-1.0.0-linux-amd64.bin is corrupted" in one_error_line(verify(unpacked))
    with tarfile.open(bundle) as archive:
        offset = archive.getmember(f"{TOP}/files/containerd-1.0.0-linux-amd64.bin").offset_data
    with open(bundle, "r+b") as stream:
        stream.seek(offset + 5)
        byte = stream.read(1)
        stream.seek(offset + 5)
        stream.write(bytes([byte[0] ^ 0xFF]))
    assert "is corrupted" in one_error_line(verify(bundle))


def test_missing_file_is_caught(unpacked: Path) -> None:
    (unpacked / "files" / "runc-1.0.0-linux-amd64.bin").unlink()
    assert "files/runc-1.0.0-linux-amd64.bin is missing (listed in SHA256SUMS)" in one_error_line(verify(unpacked))


def test_extra_file_is_caught(unpacked: Path) -> None:
    (unpacked / "files" / "evil.sh").write_text("#!/bin/sh\n")
    assert "files/evil.sh is not listed in SHA256SUMS" in one_error_line(verify(unpacked))


def test_symlink_is_refused(unpacked: Path) -> None:
    target = unpacked / "files" / "runc-1.0.0-linux-amd64.bin"
    target.rename(unpacked / "elsewhere")
    os.symlink("../elsewhere", target)
    assert "is a symbolic link" in one_error_line(verify(unpacked))


def test_member_escaping_the_folder_is_refused(bundle: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(bundle) as source, tarfile.open(evil, "w") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(f"{TOP}/../escaped")
        info.size = 3
        out.addfile(info, io.BytesIO(b"bad"))
    assert "escapes the bundle folder" in one_error_line(verify(evil))


def test_link_member_in_tarball_is_refused(bundle: Path, tmp_path: Path) -> None:
    evil = tmp_path / "link.tar"
    with tarfile.open(bundle) as source, tarfile.open(evil, "w") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo(f"{TOP}/files/passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        out.addfile(info)
    assert "is a link" in one_error_line(verify(evil))


def test_bundle_yaml_disagreeing_with_sums_is_caught(unpacked: Path) -> None:
    manifest = unpacked / "bundle.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("arch: amd64", "arch: arm64", 1))
    line = one_error_line(verify(unpacked))
    assert "bundle.yaml is corrupted" in line


def test_zipapp_verify_under_python39(unpacked: Path, python39: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    version = subprocess.run([python39, str(unpacked / "k8s-install.pyz"), "--version"], env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("k8s-install.pyz 0.1.0")
    ok = subprocess.run([python39, str(unpacked / "k8s-install.pyz"), "verify"], env=env,
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("bundle is unsigned (no SHA256SUMS.sig)")
    assert "\nbundle OK: 6 files" in ok.stdout
    (unpacked / "files" / "runc-1.0.0-linux-amd64.bin").write_bytes(b"changed")
    bad = subprocess.run([python39, str(unpacked / "k8s-install.pyz"), "verify"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.startswith("k8s-install.pyz: error: ") and "is corrupted" in bad.stderr


def test_zipapp_holds_no_compiled_code(unpacked: Path) -> None:
    import zipfile

    with zipfile.ZipFile(unpacked / "k8s-install.pyz") as archive:
        names = archive.namelist()
    assert any(n.endswith("k8s_install/main.py") for n in names)
    assert any(n.endswith("yaml/__init__.py") for n in names)
    assert any(n.endswith("jinja2/__init__.py") for n in names)
    assert not [n for n in names if n.endswith((".so", ".pyd", ".dylib"))]
    with open(unpacked / "k8s-install.pyz", "rb") as stream:
        assert stream.readline() == b"#!/usr/bin/env python3\n"
