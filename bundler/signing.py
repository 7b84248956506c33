"""Sign a bundle's SHA256SUMS with `ssh-keygen -Y sign` (OpenSSH signatures), and describe a signature.

The key is an OpenSSH private key file (ed25519 is the documented default), or a public key file whose
private half is held by the ssh-agent at SSH_AUTH_SOCK. SHA256SUMS covers bundle.yaml and every file, so
its signature covers the whole bundle. Checking lives in k8s_install/bundle_format/signature.py,
shared with the node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

from bundler.errors import BundlerError
from k8s_install.bundle_format.layout import SIGNATURE_NAME, SIGNATURE_NAMESPACE, SUMS_NAME
from k8s_install.bundle_format.signature import TrustedSigners, check_signature, signing_key

TIMEOUT = 300  # a passphrase may be typed, or an agent may ask for confirmation


class SignKey(NamedTuple):
    path: Path
    fingerprint: str  # "256 SHA256:... comment (ED25519)" as ssh-keygen -l prints it
    in_agent: bool  # a public key file: the agent signs


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise BundlerError("--sign-key: ssh-keygen not found: install the OpenSSH client (openssh-client)")
    return found


def open_sign_key(path: Path) -> SignKey:
    """Check the key before anything is downloaded: it exists, ssh-keygen reads it, and an agent key is loaded."""
    path = Path(path)
    if not path.is_file():
        raise BundlerError(f"--sign-key {path}: no such file")
    listed = subprocess.run([_ssh_keygen(), "-l", "-f", str(path)], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise BundlerError(f"--sign-key {path}: not an OpenSSH key ({listed.stderr.strip() or 'ssh-keygen -l failed'})")
    fingerprint = listed.stdout.strip()
    head = path.read_bytes()[:200]
    in_agent = b"PRIVATE KEY" not in head
    if in_agent:
        _check_agent_holds(path, fingerprint)
    return SignKey(path, fingerprint, in_agent)


def _check_agent_holds(path: Path, fingerprint: str) -> None:
    if not os.environ.get("SSH_AUTH_SOCK"):
        raise BundlerError(
            f"--sign-key {path}: a public key, so its private half must be in an ssh-agent, but SSH_AUTH_SOCK is "
            "not set: start the agent and ssh-add the key, or pass the private key file"
        )
    agent = shutil.which("ssh-add")
    if agent is None:
        return  # ssh-keygen will say so when it signs
    held = subprocess.run([agent, "-l"], capture_output=True, text=True, check=False)
    wanted = fingerprint.split()[1] if len(fingerprint.split()) > 1 else fingerprint
    if wanted not in held.stdout:
        raise BundlerError(f"--sign-key {path}: the ssh-agent does not hold this key ({wanted}): ssh-add it first")


def sign_sums(sums: str, key: Optional[SignKey]) -> Optional[bytes]:
    """The OpenSSH signature of SHA256SUMS's text, or None when no key was given."""
    if key is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bundler-sign-") as work:
        message = Path(work) / SUMS_NAME
        message.write_text(sums, encoding="utf-8")
        command = [_ssh_keygen(), "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f", str(key.path)]
        if key.in_agent:
            command.insert(3, "-U")  # the key is in the agent: never look for a private key file
        try:
            # the message is a file argument, so stdin stays free for a passphrase prompt
            result = subprocess.run([*command, str(message)], capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BundlerError(f"--sign-key {key.path}: ssh-keygen did not sign within {TIMEOUT} s") from None
        signature = message.with_name(SIGNATURE_NAME)
        if result.returncode != 0 or not signature.is_file():
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no reason given"
            raise BundlerError(f"--sign-key {key.path}: ssh-keygen could not sign: {reason}")
        print(f"  signed SHA256SUMS into {SIGNATURE_NAME} with {key.fingerprint}", file=sys.stderr)
        return signature.read_bytes()


def _sums_and_signature(bundle: Path) -> Tuple[bytes, Optional[bytes]]:
    """SHA256SUMS and SHA256SUMS.sig (None when absent) of an unpacked bundle or of its tarball."""
    if bundle.is_dir():
        sig_path = bundle / SIGNATURE_NAME
        return (bundle / SUMS_NAME).read_bytes(), sig_path.read_bytes() if sig_path.is_file() else None
    with tarfile.open(bundle, "r:") as archive:
        members = {member.name.split("/", 1)[-1]: member for member in archive.getmembers() if member.isfile()}

        def read(name: str) -> Optional[bytes]:
            stream = archive.extractfile(members[name]) if name in members else None
            return stream.read() if stream is not None else None

        sums = read(SUMS_NAME)
        if sums is None:
            raise BundlerError(f"{bundle}: no {SUMS_NAME}: not a bundle")
        return sums, read(SIGNATURE_NAME)


def describe_signature(bundle: Path, signers: Optional[TrustedSigners] = None) -> str:
    """One line about a bundle's signature (folder or tarball; for `bundler inspect`): unsigned; signed with
    which key (proven to sign this SHA256SUMS); and, given trusted signers, by whom. Raises BundlerError
    when a signature is present but does not hold."""
    bundle = Path(bundle)
    try:
        sums, signature = _sums_and_signature(bundle)
    except (OSError, tarfile.TarError) as error:
        raise BundlerError(f"{bundle}: cannot read the bundle: {error}") from None
    if signature is None:
        return f"unsigned (no {SIGNATURE_NAME})"
    if signers is not None:
        return check_signature(sums, signature, signers, str(bundle)).describe()
    with tempfile.TemporaryDirectory(prefix="bundler-signature-") as work:
        sig_path = Path(work) / SIGNATURE_NAME
        sig_path.write_bytes(signature)
        key = signing_key(sums, sig_path, str(bundle))
    return f"signed with {key} (signer not checked: no trusted signers given)"
