"""Signed bundles: `bundler build --sign-key` and the checks of `bundler verify` and the zipapp (Python 3.9),
all with the real ssh-keygen (and a real ssh-agent for an agent-held key)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from k8s_install.bundle_format import signature
from k8s_install.bundle_format.layout import SIGNATURE_NAME, SIGNATURE_NAMESPACE
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.cluster.secrets import generate_secrets, write_secrets
from k8s_install.errors import InstallError
from tests.conftest import StandInRelease, run_bundler
from tests.support.http_server import MirrorServer
from tests.support.user_errors import one_error_line

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
SIGNER = "ops@example.org"
VICTIM = "files/runc-1.0.0-linux-amd64.bin"


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is needed (package openssh-client)")
        pytest.skip(f"{tool} not installed (package openssh-client)")


@dataclasses.dataclass
class Keys:
    root: Path
    trusted: Path  # private key of SIGNER
    other: Path  # a key nobody trusts
    allowed: Path  # allowed_signers naming SIGNER
    expired: Path  # allowed_signers naming SIGNER with valid-before in the past


def _keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    _need("ssh-keygen")
    root = tmp_path_factory.mktemp("keys")
    trusted = _keygen(root / "ops", SIGNER)
    other = _keygen(root / "intruder", "intruder")
    public = " ".join(Path(f"{trusted}.pub").read_text().split()[:2])
    allowed = root / "allowed_signers"
    allowed.write_text(f"{SIGNER} {public}\n")
    expired = root / "allowed_signers_expired"
    expired.write_text(f'{SIGNER} valid-before="20200101" {public}\n')
    return Keys(root, trusted, other, allowed, expired)


@pytest.fixture(scope="module")
def module_release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInRelease]:
    server = MirrorServer().start()
    try:
        yield StandInRelease(server, tmp_path_factory.mktemp("release"))
    finally:
        server.stop()


def build(release: StandInRelease, out: Path, *extra: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(out.parent / "cache"), "--output", str(out), "--allow-incomplete", *extra, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def signed(module_release: StandInRelease, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tarball of a bundle signed with the trusted key."""
    out = tmp_path_factory.mktemp("signed") / "out"
    result = build(module_release, out, "--sign-key", str(keys.trusted))
    assert result.returncode == 0, result.stderr
    return out / f"{TOP}.tar"


@pytest.fixture(scope="module")
def pristine(signed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("pristine")
    subprocess.run(["tar", "-xf", str(signed), "-C", str(where)], check=True)
    return where / TOP


@pytest.fixture
def unpacked(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the signed bundle folder each test may change."""
    return Path(shutil.copytree(pristine, tmp_path / TOP))


def verify(target: Path, signers: Path) -> subprocess.CompletedProcess:
    return run_bundler("verify", str(target), "--trusted-signers", str(signers))


def resign(folder: Path, key: Path) -> None:
    """Replace SHA256SUMS.sig with a signature of the current SHA256SUMS by `key`."""
    (folder / SIGNATURE_NAME).unlink()
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f", str(key), str(folder / "SHA256SUMS")],
        check=True, capture_output=True,
    )  # fmt: skip


def change_blob_and_its_line(folder: Path) -> None:
    """What an attacker who can write the bundle does: a new blob and its matching SHA256SUMS line."""
    victim = folder / VICTIM
    old = hashlib.sha256(victim.read_bytes()).hexdigest()
    victim.write_bytes(b"#!/bin/sh\necho owned\n")
    new = hashlib.sha256(victim.read_bytes()).hexdigest()
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(old, new))


# -- the builder --------------------------------------------------------------------------------------------


def test_good_signature_on_tarball_and_folder(signed: Path, pristine: Path, keys: Keys) -> None:
    with tarfile.open(signed) as archive:
        names = archive.getnames()
    assert f"{TOP}/{SIGNATURE_NAME}" in names
    assert SIGNATURE_NAME not in (pristine / "SHA256SUMS").read_text()  # beside SHA256SUMS, not in it
    for target in (signed, pristine):
        result = verify(target, keys.allowed)
        assert result.returncode == 0, result.stderr
        assert f"signature good: signed by {SIGNER} (ED25519 SHA256:" in result.stdout


def test_the_readme_manual_check_with_plain_ssh_keygen(pristine: Path, keys: Keys) -> None:
    with open(pristine / "SHA256SUMS", "rb") as sums:
        result = subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(keys.allowed), "-I", SIGNER, "-n", SIGNATURE_NAMESPACE,
             "-s", str(pristine / SIGNATURE_NAME)],
            stdin=sums, capture_output=True, text=True,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f'Good "{SIGNATURE_NAMESPACE}" signature for {SIGNER}' in result.stdout
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=pristine).returncode == 0


def test_sums_changed_after_signing(unpacked: Path, keys: Keys) -> None:
    with open(unpacked / "SHA256SUMS", "a") as sums:
        sums.write("\n")
    line = one_error_line(verify(unpacked, keys.allowed))
    assert "bad signature: SHA256SUMS.sig does not sign this SHA256SUMS" in line


def test_blob_and_its_sums_line_changed_together(unpacked: Path, keys: Keys) -> None:
    change_blob_and_its_line(unpacked)
    # the sums alone cannot see it (only bundle.yaml's copy of the sum still disagrees) ...
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=unpacked).returncode == 0
    # ... the signature does, before any file is hashed
    assert "bad signature" in one_error_line(verify(unpacked, keys.allowed))


def test_signature_from_another_key(unpacked: Path, keys: Keys) -> None:
    change_blob_and_its_line(unpacked)
    resign(unpacked, keys.other)
    line = one_error_line(verify(unpacked, keys.allowed))
    assert "unknown signer: the bundle is signed by ED25519 SHA256:" in line
    assert f"not a trusted signer in {keys.allowed}" in line


def test_unsigned_bundle_with_a_signer_configured(unpacked: Path, keys: Keys) -> None:
    (unpacked / SIGNATURE_NAME).unlink()
    assert "unsigned bundle (no SHA256SUMS.sig) but trusted signers are set" in one_error_line(
        verify(unpacked, keys.allowed)
    )
    plain = run_bundler("verify", str(unpacked))
    assert plain.returncode == 0, plain.stderr
    assert "bundle is unsigned (no SHA256SUMS.sig)" in plain.stdout


def test_signer_valid_before_in_the_past(pristine: Path, keys: Keys) -> None:
    line = one_error_line(verify(pristine, keys.expired))
    assert "signer not valid now:" in line and "key has expired" in line
    assert str(keys.expired) in line


def test_a_signature_proof_is_taken_only_for_its_own_bytes(
    unpacked: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--bundle-url checks the signature once: the folder's verification takes the fetch's proof (VerifiedSums),
    but only for the very SHA256SUMS and signature it proved; sums changed since are checked, and refused."""
    signers = signature.read_trusted_signers(keys.allowed)
    sums, sig = (unpacked / "SHA256SUMS").read_bytes(), (unpacked / SIGNATURE_NAME).read_bytes()
    proof = signature.VerifiedSums(sums, sig, signers, signature.check_signature(sums, sig, signers, "fetch"))
    calls: List[List[str]] = []
    real_run = signature._run
    monkeypatch.setattr(signature, "_run", lambda arguments, data: calls.append(arguments) or real_run(arguments, data))
    with open_bundle(unpacked, signers, verified=proof) as opened:
        assert opened.signature.status() == f"signature good: signed by {SIGNER} ({proof.check.key})"
    assert calls == []
    other = signature.TrustedSigners(signers.text, "another file")
    with open_bundle(unpacked, other, verified=proof):
        assert [arguments[:2] for arguments in calls] == [["-Y", "check-novalidate"], ["-Y", "find-principals"],
                                                          ["-Y", "verify"]]  # fmt: skip
    change_blob_and_its_line(unpacked)
    with pytest.raises(InstallError, match="bad signature"):
        open_bundle(unpacked, signers, verified=proof)


def test_signed_but_unchecked_says_so(pristine: Path) -> None:
    result = run_bundler("verify", str(pristine))
    assert result.returncode == 0, result.stderr
    assert "bundle is signed but the signature was not checked" in result.stdout


def test_a_bare_public_key_is_not_a_signers_file(pristine: Path, keys: Keys) -> None:
    line = one_error_line(verify(pristine, Path(f"{keys.trusted}.pub")))
    assert "starts with the key type; an allowed_signers line starts with the signer's identity" in line


def test_bad_sign_key_fails_before_any_download(module_release: StandInRelease, tmp_path: Path) -> None:
    junk = tmp_path / "not-a-key"
    junk.write_text("hello\n")
    for key, expected in ((tmp_path / "absent", "no such file"), (junk, "not an OpenSSH key")):
        result = build(module_release, tmp_path / "out", "--sign-key", str(key))
        assert expected in one_error_line(result)
        assert not (tmp_path / "out").exists()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent on its own socket, stopped by its PID."""
    _need("ssh-agent")
    socket = f"/tmp/agent-{os.getpid()}-{time.monotonic_ns()}.sock"
    process = subprocess.Popen(["ssh-agent", "-D", "-a", socket], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(socket):
            assert process.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        yield socket
    finally:
        process.terminate()
        process.wait(timeout=10)
        if os.path.exists(socket):
            os.unlink(socket)


def test_a_key_held_in_an_agent_signs(module_release: StandInRelease, keys: Keys, agent: str, tmp_path: Path) -> None:
    _need("ssh-add")
    env = dict(os.environ, SSH_AUTH_SOCK=agent)
    public = tmp_path / "agent-key.pub"  # only the public half on disk
    private = tmp_path / "agent-key"
    shutil.copy(keys.trusted, private)
    shutil.copy(f"{keys.trusted}.pub", public)
    missing = build(module_release, tmp_path / "out", "--sign-key", str(public), env=env)
    assert "the ssh-agent does not hold this key" in one_error_line(missing)
    subprocess.run(["ssh-add", "-q", str(private)], env=env, check=True, capture_output=True)
    private.unlink()
    result = build(module_release, tmp_path / "out", "--sign-key", str(public), env=env)
    assert result.returncode == 0, result.stderr
    good = verify(tmp_path / "out" / f"{TOP}.tar", keys.allowed)
    assert good.returncode == 0, good.stderr
    assert f"signed by {SIGNER}" in good.stdout


def test_signing_keeps_the_build_reproducible(signed: Path, module_release: StandInRelease, keys: Keys,
                                              tmp_path: Path) -> None:  # fmt: skip
    """ed25519 signatures are deterministic: the same inputs and key give the same tarball."""
    again = build(module_release, tmp_path / "out", "--sign-key", str(keys.trusted))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / f"{TOP}.tar").read_bytes() == signed.read_bytes()


# -- the node: the zipapp under Python 3.9 ------------------------------------------------------------------


def node(python39: str, folder: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    return subprocess.run([python39, str(folder / "k8s-install.pyz"), *args], env=env, capture_output=True, text=True)


def node_error(result: subprocess.CompletedProcess) -> str:
    line = one_error_line(result)
    assert line.startswith("k8s-install.pyz: error: ")
    return line


def test_zipapp_checks_signatures_under_python39(unpacked: Path, keys: Keys, python39: str, tmp_path: Path) -> None:
    flag: List[str] = ["--trusted-signers", str(keys.allowed)]
    good = node(python39, unpacked, "verify", *flag, tmp_path=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"signature good: signed by {SIGNER}")
    expired = node(python39, unpacked, "verify", "--trusted-signers", str(keys.expired), tmp_path=tmp_path)
    assert "signer not valid now" in node_error(expired)
    change_blob_and_its_line(unpacked)
    assert "bad signature" in node_error(node(python39, unpacked, "verify", *flag, tmp_path=tmp_path))
    resign(unpacked, keys.other)
    assert "unknown signer" in node_error(node(python39, unpacked, "verify", *flag, tmp_path=tmp_path))
    (unpacked / SIGNATURE_NAME).unlink()
    assert "unsigned bundle" in node_error(node(python39, unpacked, "verify", *flag, tmp_path=tmp_path))


def test_every_bundle_command_checks_the_signature_first(
    unpacked: Path, keys: Keys, python39: str, tmp_path: Path
) -> None:
    """Signers recorded in the cluster secrets beside the bundle folder: commands that use the bundle refuse
    an unsigned one before doing anything else."""
    signers = keys.allowed.read_text()
    write_secrets(unpacked.parent / "cluster-secrets.yaml", generate_secrets("it", signers))
    ok = node(python39, unpacked, "verify", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f"signed by {SIGNER}" in ok.stdout
    (unpacked / SIGNATURE_NAME).unlink()
    for command in (
        ["verify"],
        ["plan", "--role", "worker", "--root", str(tmp_path / "root")],
        ["preflight", "--role", "worker", "--root", str(tmp_path / "root")],
        ["images", "--containerd-address", str(tmp_path / "no-containerd.sock"), "--root", str(tmp_path / "root")],
        ["images", "push", "127.0.0.1:9", "--plain-http"],
        ["upgrade", "plan", "--role", "worker", "--root", str(tmp_path / "root")],
    ):
        line = node_error(node(python39, unpacked, *command, tmp_path=tmp_path))
        assert "unsigned bundle (no SHA256SUMS.sig) but trusted signers are set" in line, command
        assert "cluster-secrets.yaml: trusted_signers" in line


def test_describe_signature_for_inspect(signed: Path, pristine: Path, unpacked: Path, keys: Keys) -> None:
    from k8s_install.bundle_format.opened import open_bundle
    from k8s_install.bundle_format.signature import read_trusted_signers
    from k8s_install.errors import InstallError

    def describe(bundle: Path, signers: object = None) -> str:
        with open_bundle(bundle, signers, check_files=False) as opened:  # type: ignore[arg-type]
            return opened.signature.describe()

    assert describe(pristine).startswith("signed with ED25519 SHA256:")
    assert describe(signed) == describe(pristine)
    good = describe(pristine, read_trusted_signers(keys.allowed))
    assert good.startswith(f"signature good: signed by {SIGNER} (ED25519 SHA256:")
    change_blob_and_its_line(unpacked)
    with pytest.raises(InstallError, match="bad signature"):
        describe(unpacked)
    (unpacked / SIGNATURE_NAME).unlink()
    assert describe(unpacked) == "unsigned (no SHA256SUMS.sig)"


def test_zipapp_config_init_records_trusted_signers(pristine: Path, keys: Keys, python39: str, tmp_path: Path) -> None:
    result = node(python39, pristine, "config", "init", "--dir", str(tmp_path / "c"),
                  "--trusted-signers", str(keys.allowed), tmp_path=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    from k8s_install.cluster.secrets import recorded_signers

    for name in ("cluster-secrets.yaml", "cluster-secrets-worker.yaml"):
        found = recorded_signers(tmp_path / "c" / name)
        assert found is not None and found.text == keys.allowed.read_text()
