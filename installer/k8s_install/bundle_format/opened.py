"""One reader of a bundle: `open_bundle(path)` for an unpacked folder or the tarball, verified once.

Opening checks, in this order: the listing (regular files under one top folder, no link, no escaping path),
SHA256SUMS (its syntax and paths), the signature when trusted signers are given, then every file against
SHA256SUMS and bundle.yaml against both (its shape, the files it names, its images against
images/index.json). Every problem is collected and raised together (VerificationFailed). What comes back
serves the manifest, the member files (bytes or streams; a tarball is read in place through one open file),
the signature and the totals, with nothing read twice.

    with open_bundle(path, signers) as bundle:
        bundle.manifest.kubernetes, bundle.read("sbom.spdx.json"), bundle.open("images/index.json")
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, AbstractSet, Any, Dict, List, Optional, Tuple

import yaml

from k8s_install.bundle_format.delta import needed_base
from k8s_install.bundle_format.layout import DELTA_NAME, MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME
from k8s_install.bundle_format.members import Members, TarballMembers, open_members
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.signature import (
    SignatureCheck,
    TrustedSigners,
    VerifiedSums,
    check_signature_unless_verified,
    describe_unchecked,
    signing_key,
)
from k8s_install.bundle_format.sums import parse_sums
from k8s_install.bundle_format.verify import (
    VerificationFailed,
    VerifyResult,
    file_problems,
    manifest_problems,
    without_where,
)
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import InstallError, yaml_problem

GENERATED = (SUMS_NAME, SIGNATURE_NAME, DELTA_NAME)  # never listed in SHA256SUMS


class BundleSignature:
    """SHA256SUMS.sig as found: absent, checked against trusted signers, or present but not checked."""

    def __init__(self, sums: bytes, data: Optional[bytes], check: Optional[SignatureCheck], where: str) -> None:
        self.sums, self.data, self.check, self.where = sums, data, check, where
        self._key: Optional[str] = None

    @property
    def signed(self) -> bool:
        return self.data is not None

    def status(self) -> str:
        """One line: what the check found (`verify` prints it)."""
        return self.check.describe() if self.check is not None else describe_unchecked(self.data)

    def key(self) -> str:
        """The signing key ("ED25519 SHA256:..."), proven to sign this SHA256SUMS; asks ssh-keygen at most once."""
        if self.data is None:
            raise InstallError(f"{self.where}: unsigned bundle (no {SIGNATURE_NAME})")
        if self.check is not None:
            return self.check.key
        if self._key is None:
            with tempfile.TemporaryDirectory(prefix="k8s-signature-") as work:
                path = Path(work) / SIGNATURE_NAME
                path.write_bytes(self.data)
                self._key = signing_key(self.sums, path, self.where)
        return self._key

    def describe(self) -> str:
        """`inspect`'s line: unsigned; signed with which key; and, when signers were given, by whom."""
        if self.data is None:
            return f"unsigned (no {SIGNATURE_NAME})"
        if self.check is not None:
            return self.check.describe()
        return f"signed with {self.key()} (signer not checked: no trusted signers given)"


class OpenedBundle:
    """A verified bundle: its manifest, files, signature and totals. Close it (or use `with`) when done."""

    def __init__(
        self,
        path: Path,
        members: Members,
        manifest: BundleManifest,
        sums: Dict[str, str],
        sums_bytes: bytes,
        signature: BundleSignature,
        delta: Optional[Dict[str, Any]],
    ) -> None:
        self.path = path
        self.members = members
        self.manifest = manifest
        self.sums = sums
        self.sums_sha256 = hashlib.sha256(sums_bytes).hexdigest()
        self.signature = signature
        self.delta = delta  # DELTA.yaml of a delta bundle (opened with allow_delta), else None
        self.files = {path: size for path, size in members.sizes.items() if path not in GENERATED}

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def top(self) -> str:
        """The bundle's folder name: the tarball's top folder, or the unpacked folder's name."""
        return self.members.top

    @property
    def is_tarball(self) -> bool:
        return isinstance(self.members, TarballMembers)

    @property
    def kubernetes(self) -> str:
        return self.manifest.kubernetes

    def has(self, relative: str) -> bool:
        return relative in self.members.sizes

    def size(self, relative: str) -> int:
        if relative not in self.members.sizes:
            raise InstallError(f"{self.where}: {relative} is missing; the bundle is incomplete")
        return self.members.sizes[relative]

    def read(self, relative: str) -> bytes:
        if relative not in self.members.sizes:
            raise InstallError(f"{self.where}: {relative} is missing; the bundle is incomplete")
        return self.members.read(relative)

    def open(self, relative: str) -> IO[bytes]:
        """A member as a binary stream (seekable; for a tarball, read in place)."""
        if relative not in self.members.sizes:
            raise InstallError(f"{self.where}: {relative} is missing; the bundle is incomplete")
        return self.members.open(relative)

    def result(self) -> VerifyResult:
        return VerifyResult(
            len(self.files),
            sum(self.files.values()),
            self.sums_sha256,
            self.signature.status(),
            self.manifest.incomplete,
        )

    def close(self) -> None:
        self.members.close()

    def __enter__(self) -> OpenedBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bundle(
    path: Path,
    signers: Optional[TrustedSigners] = None,
    jobs: int = 0,
    allow_delta: bool = False,
    check_files: bool = True,
    needed: Optional[AbstractSet[str]] = None,
    verified: Optional[VerifiedSums] = None,
) -> OpenedBundle:
    """Open and verify a bundle folder or tarball (see the module docstring).

    `signers`: the signature must hold for one of them. `allow_delta`: a delta bundle (DELTA.yaml) is
    accepted: the files its base holds may be missing, every file it carries must match; else a delta is
    refused with how to complete it. `check_files=False` checks SHA256SUMS, the signature and bundle.yaml
    only, without hashing the other files (for commands that read just the manifest). `needed`: the folder a
    node fetched from a bundle host for its role (bundle_url): files SHA256SUMS lists may be missing, except
    these; every file present must match. `verified`: the signature proof the fetch made of the same
    SHA256SUMS and signature bytes (bundle_url), taken instead of checking them again."""
    path = Path(path)
    members = open_members(path)
    try:
        return _verify(path, members, signers, jobs, allow_delta, check_files, needed, verified)
    except BaseException:
        members.close()
        raise


def _verify(
    path: Path,
    members: Members,
    signers: Optional[TrustedSigners],
    jobs: int,
    allow_delta: bool,
    check_files: bool,
    needed: Optional[AbstractSet[str]] = None,
    verified: Optional[VerifiedSums] = None,
) -> OpenedBundle:
    where = str(path)
    if SUMS_NAME not in members.sizes:  # a folder without one is refused before it is walked
        raise InstallError(f"{where}: no {SUMS_NAME} in the tarball: this is not a bundle")
    record = _delta_record(members, where, allow_delta)
    partial = record is not None or needed is not None
    sums_bytes = members.read(SUMS_NAME)
    signature_bytes = members.read(SIGNATURE_NAME) if SIGNATURE_NAME in members.sizes else None
    check = (
        check_signature_unless_verified(sums_bytes, signature_bytes, signers, where, verified)
        if signers is not None
        else None
    )
    signature = BundleSignature(sums_bytes, signature_bytes, check, where)
    sums_where = f"{where}:{SUMS_NAME}" if isinstance(members, TarballMembers) else f"{where}/{SUMS_NAME}"
    sums = parse_sums(sums_bytes.decode("utf-8", "replace"), sums_where)
    present = [relative for relative in members.sizes if relative not in GENERATED]
    wanted = present if check_files else [relative for relative in present if relative == MANIFEST_NAME]
    actual = _measure(members, wanted, jobs)
    problems = file_problems(sums, actual, partial=partial) if check_files else _manifest_line(sums, actual)
    if needed is not None:
        problems += [f"{relative} is missing; re-run with --bundle-url to fetch it" for relative in
                     sorted(needed) if relative in sums and relative not in members.sizes]  # fmt: skip
    manifest: Optional[BundleManifest] = None
    if MANIFEST_NAME not in sums:
        problems.append(f"{MANIFEST_NAME} is not listed in {SUMS_NAME}")
    elif MANIFEST_NAME in actual and actual[MANIFEST_NAME][0] == sums[MANIFEST_NAME]:
        try:
            manifest = BundleManifest.from_yaml(members.read(MANIFEST_NAME), where)
        except InstallError as error:
            problems.append(without_where(str(error), where))
    if manifest is not None and check_files:
        problems += manifest_problems(manifest, sums, actual, members.read, where, partial=partial)
    if problems or manifest is None:
        raise VerificationFailed(where, problems or [f"{MANIFEST_NAME} is missing; re-copy the bundle"])
    return OpenedBundle(path, members, manifest, sums, sums_bytes, signature, record)


def _manifest_line(sums: Dict[str, str], actual: Dict[str, Tuple[str, int]]) -> List[str]:
    """Without hashing every file: bundle.yaml alone against its SHA256SUMS line."""
    if MANIFEST_NAME not in actual:
        return [f"{MANIFEST_NAME} is missing; re-copy the bundle"] if MANIFEST_NAME in sums else []
    return file_problems({MANIFEST_NAME: sums[MANIFEST_NAME]}, actual) if MANIFEST_NAME in sums else []


def _measure(members: Members, paths: List[str], jobs: int) -> Dict[str, Tuple[str, int]]:
    """path -> (sha256, size), hashing the largest files first on several threads."""
    workers = jobs or min(8, (os.cpu_count() or 2) * 2)
    ordered = sorted(paths, key=lambda relative: -members.sizes[relative])

    def measure(relative: str) -> Tuple[str, Tuple[str, int]]:
        return relative, (members.sha256(relative), members.sizes[relative])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(measure, ordered))


def _delta_record(members: Members, where: str, allow_delta: bool) -> Optional[Dict[str, Any]]:
    """DELTA.yaml when there is one: read when deltas are allowed, else refused with how to complete it."""
    if DELTA_NAME not in members.sizes:
        return None
    try:
        record = load_yaml(members.read(DELTA_NAME).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InstallError(f"{where}: {DELTA_NAME}: cannot read it ({error}); re-copy the delta bundle") from None
    except yaml.YAMLError as error:
        raise InstallError(
            f"{where}: {DELTA_NAME}: not valid YAML ({yaml_problem(error)}); re-copy the delta bundle"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("base"), dict):
        raise InstallError(f"{where}: {DELTA_NAME}: not a delta record; re-copy the delta bundle")
    if not allow_delta:
        raise InstallError(
            f"{where} is a delta bundle: complete it first with `verify --base DIR`, DIR the unpacked "
            f"{needed_base(record)}"
        )
    return record
