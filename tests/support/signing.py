"""A throwaway OpenPGP key (gpg, own home folder) that signs RPMs (rpmsign) and repomd.xml (detached)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

TOOLS = ("gpg", "gpgv", "gpgconf", "rpmsign")


def missing_tools() -> List[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class SigningKey:
    def __init__(self, name: str) -> None:
        self.name = name
        self.home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))  # short: gpg-agent's socket lives here
        self.home.chmod(0o700)
        self._gpg(
            "--passphrase",
            "",
            "--quick-gen-key",
            f"{name} <{name}@example.invalid>",
            "ed25519",
            "sign",
            "never",
        )
        self.public = self._gpg("--armor", "--export", f"{name}@example.invalid").stdout

    @property
    def fingerprint(self) -> str:
        listing = self._gpg("--with-colons", "--list-keys", f"{self.name}@example.invalid").stdout.decode()
        return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))

    @property
    def env(self) -> Dict[str, str]:
        return dict(os.environ, GNUPGHOME=str(self.home))

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--batch", *args], env=self.env, check=True, capture_output=True)

    def sign_rpms(self, rpms: Sequence[Path], digest: str = "") -> None:
        """rpmsign with this key; `digest` (e.g. sha1) overrides the signature's hash algorithm."""
        command = [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {self.name}",
            "--define",
            "__gpg /usr/bin/gpg",
        ]
        if digest:
            command += ["--define", f"_gpg_digest_algo {digest}"]
        subprocess.run([*command, *map(str, rpms)], env=self.env, check=True, capture_output=True)

    def sign_detached(self, path: Path) -> Path:
        signature = path.with_name(path.name + ".asc")
        signature.unlink(missing_ok=True)
        self._gpg("--armor", "--detach-sign", "--output", str(signature), str(path))
        return signature

    def clearsign(self, data: bytes) -> bytes:
        """An InRelease: `data` clearsigned with this key."""
        return subprocess.run(
            ["gpg", "--batch", "--clearsign", "--output", "-"],
            input=data,
            env=self.env,
            check=True,
            capture_output=True,
        ).stdout

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


SIGNATURE_TAGS = (267, 268)  # RPMSIGTAG_DSA and RPMSIGTAG_RSA: the header's OpenPGP signature (EdDSA uses 267)


def tamper_signature(rpm: Path) -> None:
    """Flip one byte inside the OpenPGP signature in an RPM's signature header (after the 96-byte lead), so
    the package still reads but its signature no longer verifies."""
    data = bytearray(rpm.read_bytes())
    start = 96
    assert data[start : start + 3] == b"\x8e\xad\xe8", f"{rpm}: no signature header"
    count = struct.unpack(">I", data[start + 8 : start + 12])[0]
    store = start + 16 + 16 * count
    for index in range(count):
        tag, _, offset, size = struct.unpack(">IIII", data[start + 16 + 16 * index : start + 32 + 16 * index])
        if tag in SIGNATURE_TAGS:
            data[store + offset + size - 3] ^= 0xFF  # inside the signature's last MPI
            rpm.write_bytes(bytes(data))
            return
    raise AssertionError(f"{rpm}: not signed")
