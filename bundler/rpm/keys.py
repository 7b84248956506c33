"""Repository keys pinned by OpenPGP fingerprint (checksums/k8s-<version>.keys, or the manifest's
`gpgkey_fingerprint`), read with gpg itself.

A fingerprint, unlike the key file's sha256, stays the same when the key's owner extends its expiry, so a
renewed key still matches its pin. The key is read with `gpg --show-keys --with-colons` in an empty home
folder (nothing is imported anywhere); an expired key is refused at build time with what to do, because
dnf refuses repository metadata signed by an expired key on the node.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from bundler.checksums import pin_lines
from bundler.errors import BundlerError

_LINE = re.compile(r"^([0-9A-Fa-f ]{40,60}?)\s{2,}(\S+)$")


def normalize(fingerprint: str) -> str:
    return "".join(fingerprint.split()).upper()


def is_fingerprint(text: str) -> bool:
    value = normalize(text)
    return len(value) in (40, 64) and all(c in "0123456789ABCDEF" for c in value)


def load_fingerprint_pins(path: Path) -> Dict[str, str]:
    """key URL -> fingerprint, from lines '<fingerprint>  <url>' (spaces inside the fingerprint allowed)."""
    pins: Dict[str, str] = {}
    lines = pin_lines(path, _LINE, "<OpenPGP fingerprint>  <key url>", lambda match: is_fingerprint(match.group(1)))
    for _, match in lines:
        pins[match.group(2)] = normalize(match.group(1))
    return pins


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str  # the primary key's
    user: str
    expires: Optional[int]  # the primary key's expiry (epoch seconds), None: never
    signing_expires: List[Optional[int]]  # each key (primary or subkey) able to sign

    def expired(self, now: float) -> bool:
        if self.expires is not None and self.expires <= now:
            return True
        return bool(self.signing_expires) and all(e is not None and e <= now for e in self.signing_expires)


def inspect_key(path: Path, where: str) -> KeyInfo:
    """The first public key in an (armored or binary) key file, as gpg reads it."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise BundlerError(f"{where}: the repository key is pinned but gpg is not installed (install gnupg)")
    with tempfile.TemporaryDirectory(prefix="bundler-gpg-") as home:
        result = subprocess.run(
            [gpg, "--homedir", home, "--batch", "--with-colons", "--fixed-list-mode", "--show-keys", str(path)],
            capture_output=True,
            text=True,
        )
    fingerprint, user, expires, signing = "", "", None, []
    current_caps, current_expiry, awaiting = "", None, ""
    for line in result.stdout.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            if fields[0] == "pub" and fingerprint:
                break  # only the first key of the file
            current_expiry = int(fields[6]) if len(fields) > 6 and fields[6].isdigit() else None
            current_caps, awaiting = fields[11] if len(fields) > 11 else "", fields[0]
            if "s" in current_caps:
                signing.append(current_expiry)
            if fields[0] == "pub":
                expires = current_expiry
        elif fields[0] == "fpr" and awaiting == "pub" and not fingerprint:
            fingerprint = fields[9]
        elif fields[0] == "uid" and not user:
            user = fields[9].replace("\\x3a", ":")
    if result.returncode != 0 or not fingerprint:
        raise BundlerError(f"{where}: the repository key is not an OpenPGP public key ({result.stderr.strip()[:200]})")
    return KeyInfo(fingerprint.upper(), user, expires, signing)


def check_key(path: Path, pinned: str, url: str, where: str, now: Optional[float] = None) -> KeyInfo:
    """The key at `path` must be the pinned one and must not have expired."""
    info = inspect_key(path, where)
    if info.fingerprint != normalize(pinned):
        raise BundlerError(
            f"{where}: the key at {url} has fingerprint {info.fingerprint}, but {normalize(pinned)} is pinned: "
            "the repository (or a mirror) serves another key; check the repository's announcement before "
            "changing the pin"
        )
    when = time.time() if now is None else now
    if info.expired(when):
        day = time.strftime("%Y-%m-%d", time.gmtime(info.expires)) if info.expires else "an earlier date"
        raise BundlerError(
            f"{where}: the key at {url} ({info.fingerprint}, {info.user}) expired on {day}, and dnf refuses "
            "repositories signed with an expired key: the owner usually re-publishes it with a later expiry under "
            "the same fingerprint; retry later, take the repository from a mirror serving the renewed key "
            "(--rpm-mirror NAME), or report it to the repository's owner"
        )
    return info
