"""The bundle's own apt repository: a flat repository (`deb [signed-by=KEY] file:/…/debs/ ./`) made with
apt-ftparchive, its Release signed with a key made for this one build.

Why a signed Release and not `[trusted=yes]`: apt on the node then runs with signature checking on, exactly
as against any other repository, so the packages step needs no option that switches a check off, and the
proof before writing uses the same check. The key's private half is made in a temporary gpg home and
deleted after signing: nobody can sign anything else with it. Its public half is in the bundle, listed in
SHA256SUMS like every other file, so it is exactly as trustworthy as the bundle: SHA256SUMS (its sum, or its
signature) stays the one root of trust, and `k8s-install.pyz verify` checks it before apt reads the folder.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bundler.deb.control import parse_stanzas
from bundler.errors import BundlerError

PROGRAMS = ("apt-ftparchive", "gpg")
KEY_NAME = "bundle-key.gpg"
SUITE = "./"
PACKAGES = "Packages"


@dataclass(frozen=True)
class DebFile:
    filename: str  # the .deb's name in the repository folder
    path: Path  # its verified copy (the cache)


def _run(argv: Sequence[str], what: str, cwd: Path, env: Dict[str, str]) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, env=env)
    if result.returncode != 0:
        raise BundlerError(f"{what}: {argv[0]} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return result.stdout


def _sorted_packages(text: str) -> str:
    stanzas = list(parse_stanzas(text, PACKAGES))
    stanzas.sort(key=lambda s: (s.text("Package"), s.text("Version"), s.text("Architecture")))
    return "\n".join(stanza.render() for stanza in stanzas)


def write_flat_repository(debs: Sequence[DebFile], arch: str, label: str, epoch: int) -> Dict[str, bytes]:
    """Packages, Packages.gz, Release, InRelease, Release.gpg and the public key, by their names in the
    repository folder (the .debs themselves are added by the caller)."""
    if shutil.which("apt-ftparchive") is None:
        raise BundlerError("writing the bundle's apt repository needs apt-ftparchive: install apt-utils")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    with tempfile.TemporaryDirectory(prefix="bundler-debs-") as folder:
        work = Path(folder)
        for deb in debs:
            (work / deb.filename).symlink_to(deb.path)
        packages = _sorted_packages(_run(["apt-ftparchive", "packages", "."], "the bundle's Packages", work, env))
        files: Dict[str, bytes] = {PACKAGES: packages.encode()}
        files["Packages.gz"] = gzip.compress(files[PACKAGES], mtime=0)
        meta = work / "meta"
        meta.mkdir()
        for name, data in files.items():
            (meta / name).write_bytes(data)
        options = [
            "-o", f"APT::FTPArchive::Release::Label={label}", "-o", "APT::FTPArchive::Release::Origin=k8s-bundle",
            "-o", f"APT::FTPArchive::Release::Architectures={arch} all",
        ]  # fmt: skip
        release = _run(["apt-ftparchive", *options, "release", "."], "the bundle's Release", meta, env)
        date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime(epoch))
        files["Release"] = re.sub(r"(?m)^Date: .*$", f"Date: {date}", release).encode()
        files.update(_sign(files["Release"], label))
    return files


def _sign(release: bytes, label: str) -> Dict[str, bytes]:
    """InRelease and Release.gpg signed by a key made here and deleted on return, and its public key."""
    home = Path(
        tempfile.mkdtemp(prefix="bgpg-", dir="/tmp" if Path("/tmp").is_dir() else None)
    )  # short: the agent's socket
    env = dict(os.environ, GNUPGHOME=str(home), LC_ALL="C.UTF-8")
    try:
        home.chmod(0o700)
        user = f"{label} (made for one build, private half deleted) <k8s-bundle@offline-bundler.invalid>"

        def gpg(*args: str) -> bytes:
            result = subprocess.run(["gpg", "--batch", "--quiet", *args], capture_output=True, env=env)
            if result.returncode != 0:
                raise BundlerError(f"signing the bundle's apt repository: gpg failed: {result.stderr.decode()[-300:]}")
            return result.stdout

        gpg("--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", "never")
        (home / "Release").write_bytes(release)
        inrelease = gpg("--clearsign", "--digest-algo", "SHA512", "--output", "-", str(home / "Release"))
        detached = gpg("--detach-sign", "--armor", "--digest-algo", "SHA512", "--output", "-", str(home / "Release"))
        key = gpg("--export", user)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, env=env)
        shutil.rmtree(home, ignore_errors=True)
    return {"InRelease": inrelease, "Release.gpg": detached, KEY_NAME: key}


def repository_files(metadata: Dict[str, bytes], debs: Sequence[DebFile], folder: Path) -> List[Tuple[str, Path]]:
    """Write the repository into `folder` (the proof reads it there): metadata as files, .debs as symlinks."""
    written = []
    for name, data in metadata.items():
        (folder / name).write_bytes(data)
    for deb in debs:
        (folder / deb.filename).symlink_to(deb.path)
        written.append((deb.filename, deb.path))
    return written
