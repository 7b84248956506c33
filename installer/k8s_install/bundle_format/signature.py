"""Check a bundle's SHA256SUMS.sig with `ssh-keygen -Y`, which every EL9 node with OpenSSH already has.

A thin adapter: the trusted signers are an OpenSSH allowed_signers text (one `principal [options] key`
per line, see ssh-keygen(1) ALLOWED SIGNERS), the signature an OpenSSH SSHSIG over the bytes of
SHA256SUMS in the namespace SIGNATURE_NAMESPACE. Each way to fail gets its own one-line reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

from k8s_install.bundle_format.layout import SIGNATURE_NAME, SIGNATURE_NAMESPACE, SUMS_NAME
from k8s_install.errors import InstallError

KEY_FINGERPRINT = re.compile(r"with (\S+) key (\S+)")
TIMEOUT = 60
VALIDITY_WORDS = ("expired", "not yet valid")  # ssh-keygen on valid-before / valid-after


class TrustedSigners(NamedTuple):
    text: str  # allowed_signers lines
    source: str  # where they came from, for messages


class SignatureCheck(NamedTuple):
    principal: str
    key: str  # "ED25519 SHA256:..."

    def describe(self) -> str:
        return f"signature good: signed by {self.principal} ({self.key})"


class VerifiedSums(NamedTuple):
    """SHA256SUMS and its signature as check_signature proved them for `signers`: a later reader of the same
    bytes with the same signers in the same run takes `check` instead of asking ssh-keygen again."""

    sums: bytes
    signature: bytes
    signers: TrustedSigners
    check: SignatureCheck

    def covers(self, sums: bytes, signature: Optional[bytes], signers: TrustedSigners) -> bool:
        return (self.sums, self.signature, self.signers) == (sums, signature, signers)


def ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise InstallError(
            "ssh-keygen not found: it checks the bundle's signature; install openssh (dnf install openssh)"
        )
    return found


def _run(arguments: List[str], data: Optional[bytes]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ssh_keygen(), *arguments], input=data if data is not None else b"",
        capture_output=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def _last_line(output: bytes, replace: str = "", by: str = "", prefer: Tuple[str, ...] = ()) -> str:
    """ssh-keygen's reason: its last line, or the first that names one of `prefer`."""
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    chosen = [line for line in lines if any(word in line for word in prefer)] or lines[-1:]
    text = chosen[0] if chosen else "no reason given"
    return text.replace(replace, by) if replace else text


def signing_key(sums: bytes, signature: Path, where: str) -> str:
    """The signature's key ("ED25519 SHA256:..."), once it is proven to sign exactly `sums`."""
    result = _run(["-Y", "check-novalidate", "-n", SIGNATURE_NAMESPACE, "-s", str(signature)], sums)
    if result.returncode != 0:
        reason = _last_line(result.stderr)
        raise InstallError(
            f"{where}: bad signature: {SIGNATURE_NAME} does not sign this {SUMS_NAME} ({reason}); "
            "the bundle was changed after signing: do not use it"
        )
    found = KEY_FINGERPRINT.search(result.stdout.decode("utf-8", "replace"))
    return f"{found.group(1)} {found.group(2)}" if found else "unknown key"


def check_signature(sums: bytes, signature: Optional[bytes], signers: TrustedSigners, where: str) -> SignatureCheck:
    """Prove `signature` is a good signature of `sums` by one of `signers`, valid now."""
    if signature is None:
        raise InstallError(
            f"{where}: unsigned bundle (no {SIGNATURE_NAME}) but trusted signers are set ({signers.source}): "
            "use a bundle built with `bundler build --sign-key`"
        )
    with tempfile.TemporaryDirectory(prefix="k8s-signature-") as work:
        sig_path = Path(work) / SIGNATURE_NAME
        allowed = Path(work) / "allowed_signers"
        sig_path.write_bytes(signature)
        fd = os.open(str(allowed), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(signers.text if signers.text.endswith("\n") else signers.text + "\n")
        key = signing_key(sums, sig_path, where)
        found = _run(["-Y", "find-principals", "-s", str(sig_path), "-f", str(allowed)], None)
        principals = found.stdout.decode("utf-8", "replace").strip().splitlines()
        if found.returncode != 0 or not principals:
            reason = _last_line(found.stderr, str(allowed), signers.source, VALIDITY_WORDS)
            if any(word in reason for word in VALIDITY_WORDS):
                raise InstallError(f"{where}: signer not valid now: {reason}")
            raise InstallError(
                f"{where}: unknown signer: the bundle is signed by {key}, which is not a trusted signer in "
                f"{signers.source}"
            )
        principal = principals[0].split(",")[0].strip()
        verified = _run(
            ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", SIGNATURE_NAMESPACE, "-s", str(sig_path)], sums
        )
        if verified.returncode != 0:
            reason = _last_line(verified.stderr, str(allowed), signers.source)
            raise InstallError(f"{where}: signature of {principal} not accepted: {reason}")
    return SignatureCheck(principal, key)


def check_signature_unless_verified(
    sums: bytes, signature: Optional[bytes], signers: TrustedSigners, where: str, verified: Optional[VerifiedSums]
) -> SignatureCheck:
    """check_signature, unless `verified` already proved exactly these bytes for these signers."""
    if verified is not None and verified.covers(sums, signature, signers):
        return verified.check
    return check_signature(sums, signature, signers, where)


def describe_unchecked(signature: Optional[bytes]) -> str:
    """What to say when no trusted signer is configured."""
    if signature is None:
        return f"bundle is unsigned (no {SIGNATURE_NAME}): files checked against {SUMS_NAME} only"
    return (
        "bundle is signed but the signature was not checked: no trusted signers "
        "(pass --trusted-signers FILE, or record them in the cluster secrets)"
    )


def read_trusted_signers(path: Path) -> TrustedSigners:
    """An allowed_signers file given on the command line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InstallError(f"{path}: cannot read the trusted signers file: {error}") from None
    return TrustedSigners(validate_signers(text, str(path)), str(path))


KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def validate_signers(text: str, where: str) -> str:
    """allowed_signers lines: `principals [options] keytype base64 [comment]`; refuse a bare public key or a
    private key (the usual mistakes) before anything is signed or checked."""
    count = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if "PRIVATE KEY" in stripped:
            raise InstallError(f"{where} line {number}: a private key; trusted signers are public keys only")
        fields = stripped.split()
        if fields[0].startswith(KEY_TYPES):
            raise InstallError(
                f"{where} line {number}: starts with the key type; an allowed_signers line starts with the "
                f"signer's identity: `ops@example.org {fields[0]} AAAA...`"
            )
        if not any(field.startswith(KEY_TYPES) for field in fields[1:]):
            raise InstallError(f"{where} line {number}: no public key (ssh-ed25519 AAAA...) on the line")
        count += 1
    if count == 0:
        raise InstallError(f"{where}: no trusted signer in it (allowed_signers lines: `identity ssh-ed25519 AAAA...`)")
    return text
