"""The cluster CA, made ahead so its public-key pin is known before `kubeadm init` runs.

The CA is created with the `openssl` command (present on EL9 and on build machines); its pin, the
sha256 of the DER SubjectPublicKeyInfo that `kubeadm join --discovery-token-ca-cert-hash` expects, is
computed here with the standard library by walking the certificate's DER structure.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple, Tuple

from k8s_install.errors import InstallError

CA_COMMON_NAME = "kubernetes"  # what kubeadm names its own CA
CA_DAYS = 3650  # kubeadm's CA lifetime: 10 years
CA_EXTENSIONS = """\
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
CN = {common_name}
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
"""
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")


class CertificateAuthority(NamedTuple):
    cert_pem: str
    key_pem: str


def generate_ca(common_name: str = CA_COMMON_NAME, days: int = CA_DAYS) -> CertificateAuthority:
    """A self-signed RSA-2048 CA like kubeadm's own, made by `openssl req -x509` in a private folder."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise InstallError("openssl is not installed: it makes the cluster CA; install it (dnf/apt install openssl)")
    with tempfile.TemporaryDirectory(prefix="k8s-ca-") as work:
        os.chmod(work, 0o700)
        config = Path(work) / "ca.cnf"
        config.write_text(CA_EXTENSIONS.format(common_name=common_name), encoding="utf-8")
        key, cert = Path(work) / "ca.key", Path(work) / "ca.crt"
        command = [
            openssl,
            "req",
            "-x509",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            str(days),
            "-config",
            str(config),
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise InstallError(f"openssl could not create the cluster CA: {last}")
        return CertificateAuthority(cert.read_text(encoding="ascii"), key.read_text(encoding="ascii"))


def certificate_der(pem: str, where: str) -> bytes:
    match = PEM_CERTIFICATE.search(pem)
    if not match:
        raise InstallError(f"{where}: not a PEM certificate")
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except ValueError:
        raise InstallError(f"{where}: the PEM certificate is not valid base64") from None


def ca_cert_hash(pem: str, where: str = "CA certificate") -> str:
    """'sha256:<hex>' of the certificate's SubjectPublicKeyInfo, as kubeadm pins it."""
    der = certificate_der(pem, where)
    try:
        certificate, _ = _read_element(der, 0, where)
        tbs, _ = _read_element(der, certificate.content, where)
        position = tbs.content
        first, _ = _read_element(der, position, where)
        if der[position] == 0xA0:  # [0] EXPLICIT version
            position = first.end
        # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo
        for _ in range(5):
            element, _ = _read_element(der, position, where)
            position = element.end
        spki, _ = _read_element(der, position, where)
    except IndexError:
        raise InstallError(f"{where}: truncated certificate") from None
    if der[spki.start] != 0x30:
        raise InstallError(f"{where}: not an X.509 certificate (no public key where expected)")
    return "sha256:" + hashlib.sha256(der[spki.start : spki.end]).hexdigest()


class _Element(NamedTuple):
    start: int  # the tag byte
    content: int  # first content byte
    end: int  # one past the last content byte


def _read_element(der: bytes, start: int, where: str) -> Tuple[_Element, int]:
    """One DER TLV at `start` (definite lengths only, as DER requires)."""
    position = start + 1
    length = der[position]
    position += 1
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise InstallError(f"{where}: not DER (indefinite or huge length)")
        length = int.from_bytes(der[position : position + count], "big")
        position += count
    end = position + length
    if end > len(der):
        raise InstallError(f"{where}: truncated certificate")
    return _Element(start, position, end), length
