"""Check a detached OpenPGP signature (repomd.xml.asc) against one pinned public key with gpgv.

gpgv runs with a fresh, empty home folder and a keyring holding only the given key, so no key the
user trusts elsewhere can make a signature pass.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bundler.errors import BundlerError


def verify_detached(data: Path, signature: Path, key: Path, where: str) -> str:
    """The primary-key fingerprint of the key that made a good signature; BundlerError otherwise."""
    gpg, gpgv = shutil.which("gpg"), shutil.which("gpgv")
    if not gpg or not gpgv:
        raise BundlerError(f"{where}: the repository key is pinned but gpg/gpgv are not installed (install gnupg)")
    with tempfile.TemporaryDirectory(prefix="bundler-gpg-") as home:
        keyring = Path(home) / "pinned.gpg"
        if key.read_bytes().lstrip().startswith(b"-----BEGIN"):
            dearmor = subprocess.run(
                [gpg, "--homedir", home, "--batch", "--yes", "--dearmor", "--output", str(keyring), str(key)],
                capture_output=True,
                text=True,
            )
            if dearmor.returncode != 0:
                raise BundlerError(f"{where}: the pinned key is not an OpenPGP public key: {dearmor.stderr.strip()}")
        else:
            shutil.copyfile(key, keyring)
        check = subprocess.run(
            [
                gpgv,
                "--homedir",
                home,
                "--keyring",
                str(keyring),
                "--status-fd",
                "1",
                str(signature),
                str(data),
            ],
            capture_output=True,
            text=True,
        )
    for line in check.stdout.splitlines():
        if line.startswith("[GNUPG:] VALIDSIG ") and check.returncode == 0:
            fields = line.split()
            return fields[-1] if len(fields) >= 12 else fields[2]  # the primary key's, when a subkey signed
    raise BundlerError(
        f"{where}: repomd.xml's signature does not verify with the pinned key; the repository or mirror "
        "may be tampered with (or the key changed: check it and update gpgkey_sha256)"
    )
