"""The bundle host's serving certificate: a fresh RSA key, signed by the cluster CA for the host's names and
addresses, made with the `openssl` command as the cluster CA itself is (cluster/certificates.py).

The CA key is written only to a private temporary folder for the signing and removed with it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

from k8s_install.errors import InstallError

EXTENSIONS = """\
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {sans}
"""


class ServingCertificate(NamedTuple):
    cert_pem: bytes
    key_pem: bytes


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise InstallError("openssl is not installed: it signs the bundle host's certificate; dnf install openssl")
    return found


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"openssl could not {what}: {last}")


def issue(ca_cert_pem: str, ca_key_pem: str, sans: Sequence[str], common_name: str, days: int) -> ServingCertificate:
    """A server certificate for `sans` (IP:x / DNS:y entries) signed by the cluster CA."""
    if not sans:
        raise InstallError("the bundle host has no name or address to put in its certificate: pass --address")
    openssl = _openssl()
    with tempfile.TemporaryDirectory(prefix="k8s-serve-cert-") as work:
        os.chmod(work, 0o700)
        folder = Path(work)
        ca_cert, ca_key = folder / "ca.crt", folder / "ca.key"
        ca_cert.write_text(ca_cert_pem, encoding="ascii")
        descriptor = os.open(str(ca_key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as stream:
            stream.write(ca_key_pem)
        key, request, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
        extensions = folder / "server.cnf"
        extensions.write_text(EXTENSIONS.format(sans=", ".join(sans)), encoding="ascii")
        _run([openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={common_name}",
              "-keyout", str(key), "-out", str(request)], "make the bundle host's key")  # fmt: skip
        _run([openssl, "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
              "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(days), "-sha256",
              "-extfile", str(extensions), "-extensions", "server", "-out", str(cert)],
             "sign the bundle host's certificate with the cluster CA (is ca_key the key of ca_cert?)")  # fmt: skip
        return ServingCertificate(cert.read_bytes(), key.read_bytes())


def valid_for(cert: Path, seconds: int) -> bool:
    """Whether the certificate at `cert` is still valid `seconds` from now (openssl x509 -checkend)."""
    result = subprocess.run(
        [_openssl(), "x509", "-noout", "-checkend", str(seconds), "-in", str(cert)], capture_output=True, check=False
    )
    return result.returncode == 0


def not_after(cert: Path) -> str:
    """The certificate's notAfter as openssl prints it ('Dec  6 10:00:00 2027 GMT'), or '' when unreadable."""
    result = subprocess.run(
        [_openssl(), "x509", "-noout", "-enddate", "-in", str(cert)], capture_output=True, text=True, check=False
    )
    return result.stdout.strip().split("=", 1)[1] if result.returncode == 0 and "=" in result.stdout else ""
