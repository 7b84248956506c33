"""Prove at build time that every RPM put into the bundle is signed by the key of the repository it came from,
with rpm's own verifier (`rpmkeys --checksig`), the check dnf's gpgcheck makes on the node.

Per repository, its key(s) are imported into a private, throwaway rpm database (nothing the user or the
machine trusts can make a package pass), then one rpmkeys process checks many packages at once with
`_pkgverify_level signature` (a package without a signature fails, as with gpgcheck). rpmkeys prints one
verdict line per file; only for the files that fail does a second, verbose run say why (unsigned, signed by
another key, a signature that does not verify), so the error names the package and what to do. When all pass,
a verbose run names the signatures' hash: one made with SHA-1 verifies here but not under EL9's default
crypto policy, so it fails the build too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from bundler.errors import BundlerError

FILES_PER_RUN = 400  # packages per rpmkeys process: few processes, command lines far below ARG_MAX
_ARMORED_KEY = re.compile(rb"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.S)
_KEY_ID = re.compile(r"key ID ([0-9a-fA-F]+)")
_SHA1_SIGNATURE = re.compile(r"/SHA1 Signature\b")


@dataclass(frozen=True)
class PackageFile:
    nevra: str
    path: Path


@dataclass(frozen=True)
class RepositoryPackages:
    """The packages taken from one repository and the key file it names (`gpgkey`)."""

    repository: str
    key: Path
    key_label: str  # the key's fingerprint when pinned, else its URL: for messages
    packages: Tuple[PackageFile, ...]


def rpmkeys_program() -> str:
    program = shutil.which("rpmkeys")
    if program is None:
        raise BundlerError(
            "checking the RPMs' signatures needs rpmkeys, which is not installed (install the rpm package: "
            "`apt-get install rpm` or `dnf install rpm`)"
        )
    return program


def verify_signatures(groups: Sequence[RepositoryPackages]) -> int:
    """Check every package against its repository's key; the number checked, or one BundlerError line naming
    the first failing package, why it fails and what to do (and the other failing packages)."""
    groups = [group for group in groups if group.packages]
    if not groups:
        return 0
    program = rpmkeys_program()
    failures: List[Tuple[RepositoryPackages, PackageFile]] = []
    explanation = ""
    for group in groups:
        with tempfile.TemporaryDirectory(prefix="bundler-rpmkeys-") as work:
            base = _base_command(program, Path(work))
            _import_keys(base, group, Path(work))
            chunks = [group.packages[start : start + FILES_PER_RUN] for start in range(0, len(group.packages),
                                                                                     FILES_PER_RUN)]  # fmt: skip
            failed = [p for chunk in chunks for p in _failed(base, chunk)]
            if failed and not failures:
                explanation = _sentence(_verbose(base, failed[0]), group)
            if not failed and not failures:
                weak = [found for chunk in chunks for found in _sha1_signed(base, chunk)]
                if weak:
                    package, item = weak[0]
                    raise BundlerError(
                        f"RPM {package.nevra} from repository {group.repository} is signed with SHA-1 ({item}), "
                        "which EL9's default crypto policy refuses: dnf on the node would refuse it; take another "
                        f"version, or report it to the repository's owner ({len(weak)} RPM(s) so signed)"
                    )
        failures += [(group, package) for package in failed]
    if failures:
        group, package = failures[0]
        more = ""
        if len(failures) > 1:
            names = [f"{p.nevra} ({g.repository})" for g, p in failures[1:4]]
            more = f" ({len(failures) - 1} more RPM(s) fail rpmkeys --checksig too: {', '.join(names)}"
            more += ", ...)" if len(failures) > 4 else ")"
        raise BundlerError(f"RPM {package.nevra} from repository {group.repository} {explanation}{more}")
    return sum(len(group.packages) for group in groups)


def _base_command(program: str, work: Path) -> List[str]:
    """rpmkeys on a private rpm database in `work`, whatever the rpm version keeps its keys in."""
    database = work / "rpmdb"
    database.mkdir()
    return [
        program, "--dbpath", str(database),
        "--define", f"_keyringpath {work / 'pubkeys'}/", "--define", "_keyring rpmdb",
        "--define", "_pkgverify_level signature",
    ]  # fmt: skip


def _import_keys(base: List[str], group: RepositoryPackages, work: Path) -> None:
    """Import every public key in the repository's key file (an armored file may hold several)."""
    data = group.key.read_bytes()
    blocks = _ARMORED_KEY.findall(data)
    files = []
    for index, block in enumerate(blocks):
        files.append(work / f"key-{index}.asc")
        files[-1].write_bytes(block + b"\n")
    if not blocks:
        files.append(group.key)  # a binary key file, as rpm reads it
    result = subprocess.run([*base, "--import", *map(str, files)], capture_output=True, text=True)
    if result.returncode != 0:
        detail = " ".join(result.stderr.split())[:200]
        raise BundlerError(
            f"repository {group.repository}: rpm cannot import its key {group.key_label} ({detail}), so its "
            "packages' signatures cannot be checked, here or by dnf on the node"
        )


def _failed(base: List[str], packages: Sequence[PackageFile]) -> List[PackageFile]:
    """The packages rpmkeys does not pass: its verdict line ends in NOT OK, or it printed none (a file it
    cannot read leaves "<path>:" without a line end, so a verdict is found after a ':' too)."""
    result = subprocess.run([*base, "--checksig", *(str(p.path) for p in packages)], capture_output=True, text=True)
    failed = []
    for package in packages:
        verdict = re.search(rf"(?:^|:){re.escape(str(package.path))}: (.*)$", result.stdout, re.M)
        if verdict is None or not verdict.group(1).strip().endswith("OK") or "NOT OK" in verdict.group(1):
            failed.append(package)
    if result.returncode != 0 and not failed:
        detail = " ".join(result.stderr.split())[:300]
        raise BundlerError(f"rpmkeys --checksig failed without naming a package ({detail})")
    return failed


def _sha1_signed(base: List[str], packages: Sequence[PackageFile]) -> List[Tuple[PackageFile, str]]:
    """Packages whose signature rpmkeys reports as made with SHA-1 ("Header V4 RSA/SHA1 Signature, key ID
    ...: OK"): they verify here, but EL9's DEFAULT crypto policy makes its rpm reject them."""
    result = subprocess.run([*base, "--checksig", "--verbose", *(str(p.path) for p in packages)],
                            capture_output=True, text=True)  # fmt: skip
    by_path = {f"{package.path}:": package for package in packages}
    found: List[Tuple[PackageFile, str]] = []
    current = None
    for line in result.stdout.splitlines():
        if line in by_path:
            current = by_path[line]
        elif current is not None and _SHA1_SIGNATURE.search(line):
            found.append((current, line.strip()))
            current = None  # one mention per package
    return found


def _verbose(base: List[str], package: PackageFile) -> List[str]:
    """rpmkeys' item lines for one package ("Header V4 RSA/SHA256 Signature, key ID ...: NOKEY", ...)."""
    result = subprocess.run([*base, "--checksig", "--verbose", str(package.path)], capture_output=True, text=True)
    lines = result.stdout.replace(f"{package.path}:", "\n").splitlines() + result.stderr.splitlines()
    return [line.strip() for line in lines if line.strip()]


def _sentence(items: List[str], group: RepositoryPackages) -> str:
    """Why one package failed, and what to do, from rpmkeys' verbose lines."""
    signatures = [i for i in items if "ignature" in i and not i.endswith("NOTFOUND")]
    key = f"the repository's key {group.key_label}"
    errors = [i for i in items if i.startswith("error:")]
    if errors:
        return f"cannot be read by rpmkeys ({'; '.join(errors)}): remove that file from the cache and build again"
    if any(i.endswith(": BAD") for i in items if "ignature" not in i):
        return (
            f"is damaged: rpmkeys finds a digest that does not match ({'; '.join(items)}); the repository or "
            "mirror serves a broken file: retry later or take the repository without --rpm-mirror"
        )
    if any(i.endswith(": BAD") for i in signatures):
        return (
            f"has a signature that does not verify with {key} (rpmkeys: BAD): the package was changed after it "
            "was signed; the repository or mirror is damaged or tampered with: do not use it, retry later or "
            "take the repository without --rpm-mirror"
        )
    unknown = sorted({m.group(1) for i in signatures if "NOKEY" in i for m in [_KEY_ID.search(i)] if m})
    if any("NOKEY" in i for i in signatures):
        by = f"key ID {', '.join(unknown)}" if unknown else "another key"
        return (
            f"is signed by {by}, not by {key}: dnf on the node would refuse it (gpgcheck); if the repository "
            "moved to a new key, check its announcement and pin the new key, else the repository or mirror "
            "is tampered with"
        )
    if any("NOTTRUSTED" in i for i in signatures):
        return (
            f"is signed by {key}, but rpm does not trust the key now (rpmkeys: NOTTRUSTED, e.g. expired or "
            "revoked): dnf on the node would refuse it; wait for the repository to renew its key"
        )
    if not signatures:
        return (
            f"is not signed, but dnf on the node installs only packages signed by {key} (gpgcheck): the "
            "repository or mirror serves an unsigned package; take another version or mirror, or report it "
            "to the repository's owner"
        )
    detail = "; ".join(items) or "no verdict"
    return f"does not pass rpmkeys --checksig with {key} ({detail}): dnf on the node would refuse it"
