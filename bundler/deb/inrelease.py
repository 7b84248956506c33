"""Check an apt repository's InRelease (a clearsigned Release) against one pinned key with gpgv, and read the
Release fields from what the signature covers, never from the text around it.

gpgv runs with an empty home folder and a keyring holding only the pinned key. An InRelease may carry several
signatures (Debian signs with its archive keys and the release key): it passes when one good signature is
made by the pinned key (VALIDSIG with its primary fingerprint) and no signature is bad.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from bundler.deb.control import Stanza, checksum_lines, parse_stanzas
from bundler.errors import BundlerError

REFUSED = ("BADSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG")


def keyring(key: Path, home: Path) -> Path:
    """A binary keyring holding only `key` (armored or binary), made in `home`."""
    ring = home / "pinned.gpg"
    if key.read_bytes().lstrip().startswith(b"-----BEGIN"):
        result = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--yes", "--dearmor", "--output", str(ring), str(key)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BundlerError(f"{key}: not an OpenPGP public key: {result.stderr.strip()[:200]}")
    else:
        shutil.copyfile(key, ring)
    return ring


def verify_clearsigned(signed: Path, key: Path, fingerprint: str, where: str) -> bytes:
    """The text InRelease's signature covers, when the pinned key made a good signature of it."""
    if not shutil.which("gpg") or not shutil.which("gpgv"):
        raise BundlerError(f"{where}: checking InRelease needs gpg and gpgv: install gnupg (apt-get install gnupg)")
    with tempfile.TemporaryDirectory(prefix="bundler-gpg-") as folder:
        home = Path(folder)
        output = home / "Release"
        check = subprocess.run(
            ["gpgv", "--homedir", str(home), "--keyring", str(keyring(key, home)), "--status-fd", "1",
             "--output", str(output), str(signed)],
            capture_output=True, text=True,
        )  # fmt: skip
        content = output.read_bytes() if output.is_file() else b""
    signers = []
    for line in check.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "[GNUPG:]":
            continue
        if fields[1] in REFUSED:
            raise BundlerError(
                f"{where}: InRelease has a bad or expired signature ({fields[1]}); the repository or mirror may be "
                "tampered with or stale: retry later or use another mirror"
            )
        if fields[1] == "VALIDSIG":
            signers.append((fields[-1] if len(fields) >= 12 else fields[2]).upper())
    if fingerprint.upper() not in signers or not content:
        found = ", ".join(signers) or "no key it knows"
        raise BundlerError(
            f"{where}: InRelease is not signed by the pinned key {fingerprint} (good signatures from: {found}); the "
            "repository or mirror may be tampered with, or the key changed: check the announcement before the pin"
        )
    return content


@dataclass(frozen=True)
class ReleaseFile:
    """The fields of a verified Release that the builder uses."""

    suite: str
    codename: str
    architectures: Tuple[str, ...]
    components: Tuple[str, ...]
    sha256: Dict[str, Tuple[str, int]]  # path relative to the Release's folder -> (sha256, size)
    valid_until: Optional[float]
    arch_all_in_arch_indexes: bool  # No-Support-for-Architecture-all: Packages

    def indexes_in(self, folder: str) -> List[Tuple[str, str, int]]:
        """(path, sha256, size) of each Packages index the Release lists in `folder` ("" or main/binary-amd64/):
        xz first, then gz, then uncompressed (a mirror may lack some of them)."""
        found = []
        for suffix in (".xz", ".gz", ""):
            path = f"{folder}Packages{suffix}"
            if path in self.sha256:
                digest, size = self.sha256[path]
                found.append((path, digest, size))
        return found


def parse_release(content: bytes, where: str, now: Optional[float] = None, check_expiry: bool = True) -> ReleaseFile:
    try:
        stanza = next(parse_stanzas(content.decode("utf-8"), where), Stanza(()))
    except (UnicodeDecodeError, ValueError) as error:
        raise BundlerError(f"{where}: Release is not readable: {error}") from None
    sums = checksum_lines(stanza.text("SHA256"))
    if not sums:
        raise BundlerError(f"{where}: Release lists no SHA256 sums; apt (and the builder) refuse such a repository")
    valid_until = _date(stanza.get("Valid-Until"), where)
    when = time.time() if now is None else now
    if check_expiry and valid_until is not None and valid_until < when:
        raise BundlerError(
            f"{where}: Release expired on {stanza.text('Valid-Until')} (Valid-Until): the mirror is stale or replays "
            "old metadata; retry later or use another mirror"
        )
    return ReleaseFile(
        suite=stanza.text("Suite"),
        codename=stanza.text("Codename"),
        architectures=tuple(stanza.text("Architectures").split()),
        components=tuple(stanza.text("Components").split()),
        sha256=sums,
        valid_until=valid_until,
        arch_all_in_arch_indexes=stanza.text("No-Support-for-Architecture-all") == "Packages",
    )


def _date(value: Optional[str], where: str) -> Optional[float]:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        raise BundlerError(f"{where}: Release has an unreadable date {value!r}") from None
