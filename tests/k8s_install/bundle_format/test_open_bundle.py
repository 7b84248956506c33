"""The one reader, `open_bundle`: a folder or a tarball verified once, then its manifest, members and signature.

Small bundles made here (bundle.yaml, two files, SHA256SUMS; signed with a real ssh-keygen key); the
commands on top (`verify`, `inspect`) run as the user runs them."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import jsonschema
import pytest

from k8s_install.bundle_format.layout import SIGNATURE_NAMESPACE
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.bundle_format.signature import TrustedSigners
from k8s_install.bundle_format.sums import format_sums, parse_sums, sha256_file
from k8s_install.bundle_format.verify import VerificationFailed
from k8s_install.errors import InstallError
from tests.conftest import REPO, run_bundler
from tests.support.tiny_bundle import write_tiny_bundle
from tests.support.user_errors import one_error_line

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
RUNC = b"runc " * 1000
CONTAINERD = bytes(range(256)) * 300


def tar_folder(folder: Path, tarball: Path) -> Path:
    with tarfile.open(tarball, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(folder, arcname=folder.name)
    return tarball


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    files = {"files/runc.bin": RUNC, "files/containerd.bin": CONTAINERD}
    return write_tiny_bundle(tmp_path / "unpacked" / TOP, files=files)


@pytest.fixture
def tarball(folder: Path, tmp_path: Path) -> Path:
    return tar_folder(folder, tmp_path / f"{TOP}.tar")


def rewrite_sums(folder: Path, change: Callable[[Dict[str, str]], None]) -> None:
    sums = parse_sums((folder / "SHA256SUMS").read_text())
    change(sums)
    (folder / "SHA256SUMS").write_text(format_sums(sums))


def installer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k8s_install", *args], cwd=REPO, capture_output=True, text=True)


@pytest.mark.parametrize("kind", ["folder", "tarball"])
def test_a_bundle_opens_verified_and_serves_its_parts(kind: str, folder: Path, tarball: Path) -> None:
    with open_bundle(folder if kind == "folder" else tarball) as bundle:
        assert bundle.top == TOP and bundle.is_tarball == (kind == "tarball")
        assert bundle.kubernetes == "1.29.6" and bundle.manifest.arch == "amd64"
        assert sorted(bundle.files) == ["bundle.yaml", "files/containerd.bin", "files/runc.bin"]
        assert bundle.read("files/runc.bin") == RUNC and bundle.size("files/containerd.bin") == len(CONTAINERD)
        with bundle.open("files/containerd.bin") as stream:
            assert stream.read(10) == CONTAINERD[:10]
            stream.seek(1000)
            assert stream.read() == CONTAINERD[1000:]
        assert bundle.sums_sha256 == hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()
        assert not bundle.signature.signed and bundle.signature.describe() == "unsigned (no SHA256SUMS.sig)"
        result = bundle.result()
        assert result.files == 3 and result.signature.startswith("bundle is unsigned")
        with pytest.raises(InstallError, match="files/nothing is missing"):
            bundle.read("files/nothing")


@pytest.mark.parametrize("kind", ["folder", "tarball"])
def test_a_tampered_member_is_caught(kind: str, folder: Path, tmp_path: Path) -> None:
    (folder / "files" / "runc.bin").write_bytes(RUNC[:-1] + b"X")
    target = folder if kind == "folder" else tar_folder(folder, tmp_path / "t.tar")
    with pytest.raises(VerificationFailed) as caught:
        open_bundle(target)
    assert caught.value.problems == [
        f"files/runc.bin is corrupted: sha256 {sha256_file(folder / 'files' / 'runc.bin')}, expected "
        f"{hashlib.sha256(RUNC).hexdigest()}; re-copy the bundle"
    ]
    assert str(caught.value) == f"{target}: {caught.value.problems[0]}"


def test_every_problem_is_listed_at_once(folder: Path) -> None:
    (folder / "files" / "runc.bin").write_bytes(b"changed")
    (folder / "files" / "containerd.bin").unlink()
    (folder / "files" / "evil.sh").write_text("#!/bin/sh\n")
    with pytest.raises(VerificationFailed) as caught:
        open_bundle(folder)
    problems = caught.value.problems
    assert [line.split(" ", 1)[0] for line in problems[:3]] == [
        "files/containerd.bin", "files/evil.sh", "files/runc.bin"
    ]  # fmt: skip
    assert "missing" in problems[0] and "not listed in SHA256SUMS" in problems[1] and "corrupted" in problems[2]
    assert caught.value.summary().startswith(f"{folder}: {len(problems)} problems (listed above), first: ")
    assert "`verify` lists them all" in str(caught.value)


def test_verify_lists_every_problem_then_one_summary_line_and_json_says_ok_false(folder: Path) -> None:
    (folder / "files" / "runc.bin").write_bytes(b"changed")
    (folder / "files" / "containerd.bin").unlink()
    (folder / "files" / "evil.sh").write_text("#!/bin/sh\n")
    schema = json.loads((REPO / "schemas" / "verify.schema.json").read_text())
    for run in (
        lambda *a: run_bundler("verify", *a, str(folder)),
        lambda *a: installer("--bundle", str(folder), "verify", *a),
    ):
        text = run()
        line = one_error_line(text)
        assert "3 problems (listed above), first: files/containerd.bin is missing" in line
        listed = text.stdout.strip().splitlines()
        assert [entry.split(" ", 1)[0] for entry in listed if entry.startswith("files/")] == [
            "files/containerd.bin", "files/evil.sh", "files/runc.bin"
        ]  # fmt: skip
        as_json = run("--json")
        assert as_json.returncode == 1 and len(as_json.stderr.strip().splitlines()) == 1
        doc = json.loads(as_json.stdout)
        jsonschema.validate(doc, schema)
        assert doc["ok"] is False and len(doc["problems"]) == 3 and doc["bundle"] == str(folder)


def test_verify_json_when_it_stops_early_and_when_it_passes(folder: Path) -> None:
    schema = json.loads((REPO / "schemas" / "verify.schema.json").read_text())
    good = run_bundler("verify", "--json", str(folder))
    assert good.returncode == 0, good.stderr
    jsonschema.validate(json.loads(good.stdout), schema)
    (folder / "SHA256SUMS").unlink()
    bad = run_bundler("verify", "--json", str(folder))
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    jsonschema.validate(doc, schema)
    assert doc["ok"] is False and doc["problems"] == [
        "no SHA256SUMS: this is not a bundle folder (or it was copied incompletely)"
    ]


def test_a_missing_file_and_an_extra_file_in_the_tarball(folder: Path, tmp_path: Path) -> None:
    rewrite_sums(folder, lambda sums: sums.update({"files/gone.bin": "0" * 64}))
    (folder / "files" / "extra.bin").write_bytes(b"extra")
    with pytest.raises(VerificationFailed) as caught:
        open_bundle(tar_folder(folder, tmp_path / "t.tar"))
    assert caught.value.problems[:2] == [
        "files/extra.bin is not listed in SHA256SUMS: remove it or rebuild the bundle",
        "files/gone.bin is missing (listed in SHA256SUMS); re-copy the bundle",
    ]


@pytest.mark.parametrize("name", ["files/..", "../outside", "/etc/passwd", "files/../bundle.yaml"])
def test_a_path_escaping_the_bundle_in_sha256sums_is_one_user_error_line(folder: Path, name: str) -> None:
    rewrite_sums(folder, lambda sums: None)
    with open(folder / "SHA256SUMS", "a") as stream:
        stream.write(f"{'0' * 64}  {name}\n")
    with pytest.raises(InstallError, match="line 4: path"):
        open_bundle(folder)
    for result in (
        run_bundler("verify", str(folder)),
        run_bundler("inspect", str(folder)),
        run_bundler("inspect", "--json", str(folder)),
        installer("--bundle", str(folder), "verify"),
    ):
        assert "SHA256SUMS line 4: path" in one_error_line(result)


def test_a_member_escaping_the_top_folder_of_the_tarball_is_refused(tarball: Path) -> None:
    with tarfile.open(tarball, "a") as archive:
        info = tarfile.TarInfo(f"{TOP}/../escaped")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(InstallError, match="escapes the bundle folder"):
        open_bundle(tarball)


def test_a_delta_is_refused_unless_allowed_and_may_lack_what_its_base_holds(folder: Path) -> None:
    (folder / "DELTA.yaml").write_text("base: {bundle: k8s-bundle-1.29.5-rocky9-amd64, sums_sha256: abc}\n")
    (folder / "files" / "runc.bin").unlink()
    with pytest.raises(InstallError, match="is a delta bundle: complete it first with `verify --base DIR`"):
        open_bundle(folder)
    with open_bundle(folder, allow_delta=True) as bundle:
        assert bundle.delta is not None and bundle.delta["base"]["bundle"] == "k8s-bundle-1.29.5-rocky9-amd64"
    (folder / "files" / "containerd.bin").write_bytes(b"changed")
    with pytest.raises(VerificationFailed, match="files/containerd.bin is corrupted"):
        open_bundle(folder, allow_delta=True)


def test_manifest_only_opening_checks_bundle_yaml_but_hashes_nothing_else(folder: Path) -> None:
    (folder / "files" / "runc.bin").write_bytes(b"changed")
    with open_bundle(folder, check_files=False) as bundle:
        assert bundle.kubernetes == "1.29.6"
    (folder / "bundle.yaml").write_text((folder / "bundle.yaml").read_text().replace("1.29.6", "1.29.7"))
    with pytest.raises(VerificationFailed, match="bundle.yaml is corrupted"):
        open_bundle(folder, check_files=False)


# signatures: a real OpenSSH key, the bundle's SHA256SUMS signed as `bundler build --sign-key` does


@pytest.fixture
def signer(tmp_path: Path) -> Dict[str, Any]:
    if shutil.which("ssh-keygen") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ssh-keygen is needed (package openssh-client)")
        pytest.skip("ssh-keygen not installed (package openssh-client)")
    key = tmp_path / "keys" / "signer"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", str(key)], check=True)
    allowed = f"ops@example.org {key.with_suffix('.pub').read_text().split(' ', 2)[0]} "
    allowed += key.with_suffix(".pub").read_text().split(" ", 2)[1] + "\n"
    return {"key": key, "signers": TrustedSigners(allowed, "allowed_signers")}


def sign(folder: Path, key: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f", str(key), str(folder / "SHA256SUMS")],
        check=True, capture_output=True,
    )  # fmt: skip


def test_signed_and_unsigned_bundles(folder: Path, tmp_path: Path, signer: Dict[str, Any]) -> None:
    with pytest.raises(InstallError, match="unsigned bundle .* but trusted signers are set"):
        open_bundle(folder, signer["signers"])
    sign(folder, signer["key"])
    tarball = tar_folder(folder, tmp_path / "signed.tar")
    for target in (folder, tarball):
        with open_bundle(target, signer["signers"]) as bundle:
            assert bundle.signature.status().startswith("signature good: signed by ops@example.org (ED25519 SHA256:")
        with open_bundle(target) as bundle:
            assert bundle.signature.status().startswith("bundle is signed but the signature was not checked")
            assert bundle.signature.describe().startswith("signed with ED25519 SHA256:")
    rewrite_sums(folder, lambda sums: sums.update({"files/runc.bin": "1" * 64}))
    with pytest.raises(InstallError, match="bad signature"):
        open_bundle(folder, signer["signers"])


def test_inspect_opens_the_tarball_once_and_runs_ssh_keygen_once(
    folder: Path, tmp_path: Path, signer: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bundler.commands.inspect import inspect_document

    sign(folder, signer["key"])
    tarball = tar_folder(folder, tmp_path / "signed.tar")
    calls = tmp_path / "ssh-keygen-calls"
    fake = tmp_path / "bin" / "ssh-keygen"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {shutil.which("ssh-keygen")} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    opened: List[str] = []

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)) and Path(file) == tarball:
                opened.append(real.__name__)
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    monkeypatch.setattr(io, "open", counting(io.open))
    monkeypatch.setattr(os, "open", counting(os.open))
    monkeypatch.setattr(tarfile, "bltn_open", counting(tarfile.bltn_open))  # type: ignore[attr-defined]
    doc = inspect_document(tarball)
    assert doc["signer"].startswith("signed with ED25519 SHA256:") and doc["kubernetes"] == "1.29.6"
    assert len(opened) == 1, opened
    assert len(calls.read_text().splitlines()) == 1, calls.read_text()
