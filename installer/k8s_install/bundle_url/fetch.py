"""Fill a node's bundle folder from a bundle host with what its role needs, every file checked before use.

The trust comes first: SHA256SUMS (the node's own copy when it carries one, else the host's, which must then
equal it) and its signature, checked against the trusted signers as for a tarball. Then bundle.yaml, the
image manifests, and every other file the role needs (role_files.py), each downloaded beside the folder,
hashed, and renamed into it only when its sha256 is the one SHA256SUMS lists. A file already in the folder
with the right sha256 is not fetched again, so a re-run after the host stopped resumes where it was. The
folder is then a partial bundle that `open_bundle(..., needed=...)` verifies like any other.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Dict, FrozenSet, NamedTuple, Optional, Set, Tuple

from k8s_install.bundle_format.layout import MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.signature import TrustedSigners, VerifiedSums, check_signature
from k8s_install.bundle_format.sums import parse_sums, sha256_file
from k8s_install.bundle_url.client import BundleHost, NotServed, remove_stale_parts
from k8s_install.bundle_url.role_files import needed_files
from k8s_install.errors import InstallError
from k8s_install.node.atomic import write_atomically
from k8s_install.units import human_size

JOBS = 4  # parallel downloads per node


class FetchReport(NamedTuple):
    needed: FrozenSet[str]  # what the role needs: the files the folder must hold
    fetched_files: int
    fetched_bytes: int
    present_files: int  # already in the folder with the right sha256
    verified: Optional[VerifiedSums] = None  # the signature proof, for the folder's verification (checked once)


class Fetcher:
    """One node's fetch into `root` from `host`, counting what it downloads."""

    def __init__(self, host: BundleHost, root: Path, sums: Dict[str, str]) -> None:
        self.host, self.root, self.sums = host, root, sums
        self.fetched_files = self.fetched_bytes = self.present_files = 0
        self.done: Set[str] = set()
        self.lock = threading.Lock()

    def ensure(self, relative: str) -> Path:
        """`relative` in the folder with its listed sha256: kept when already so, else fetched."""
        target = self.root / relative
        expected = self.sums[relative]
        if relative in self.done:
            return target
        if target.is_file() and sha256_file(target) == expected:
            with self.lock:
                self.present_files += 1
                self.done.add(relative)
            return target
        make_folders(self.root, target.parent)
        size = self.host.download(relative, target, expected, self.root.parent)
        with self.lock:
            self.fetched_files += 1
            self.fetched_bytes += size
            self.done.add(relative)
        return target

    def read(self, relative: str) -> bytes:
        return self.ensure(relative).read_bytes()


def make_folders(root: Path, folder: Path) -> None:
    """The folders of a bundle path, mode 0755 whatever the umask (preflight refuses group-writable ones)."""
    missing = []
    while folder != root and not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o755)
        except FileExistsError:
            continue  # another download made it meanwhile
        created.chmod(0o755)


def trusted_sums(
    host: BundleHost, root: Path, signers: Optional[TrustedSigners]
) -> Tuple[bytes, Optional[VerifiedSums]]:
    """SHA256SUMS as the node trusts it, written into the folder with its signature, and the proof of that
    signature when signers are given (None without)."""
    local, local_signature = root / SUMS_NAME, root / SIGNATURE_NAME
    served = host.get(SUMS_NAME)
    if local.is_file():
        sums = local.read_bytes()
        if served != sums:
            raise InstallError(
                f"{host.url} serves another bundle: its {SUMS_NAME} differs from {local}; point --bundle-url at "
                f"the host serving this bundle, or remove {local} to take the host's (checked by its signature)"
            )
    else:
        sums = served
    if local_signature.is_file():
        signature: Optional[bytes] = local_signature.read_bytes()
    else:
        try:
            signature = host.get(SIGNATURE_NAME)
        except NotServed:
            signature = None
    verified = None
    if signers is not None:
        check = check_signature(sums, signature, signers, host.url)
        assert signature is not None  # check_signature refuses a missing one
        verified = VerifiedSums(sums, signature, signers, check)
    if not local.is_file():
        write_atomically(local, sums, overwrite=True)
    if signature is not None and not local_signature.is_file():
        write_atomically(local_signature, signature, overwrite=True)
    return sums, verified


def fetch_bundle(
    host: BundleHost,
    root: Path,
    signers: Optional[TrustedSigners],
    role: Optional[str],
    echo: Callable[[str], None] = print,
    jobs: int = JOBS,
) -> FetchReport:
    """Fill `root` with what `role` needs from `host` (role None: every file); see the module docstring."""
    root = Path(root)
    if not root.is_dir():
        root.mkdir(parents=True, mode=0o755)
        root.chmod(0o755)
    remove_stale_parts(root.parent)
    sums_bytes, verified = trusted_sums(host, root, signers)
    sums = parse_sums(sums_bytes.decode("utf-8", "replace"), f"{host.url}{SUMS_NAME}")
    if MANIFEST_NAME not in sums:
        raise InstallError(f"{host.url}{SUMS_NAME} does not list {MANIFEST_NAME}: not a bundle's {SUMS_NAME}")
    fetcher = Fetcher(host, root, sums)
    manifest = BundleManifest.from_yaml(fetcher.read(MANIFEST_NAME), host.url)
    needed = needed_files(manifest, sums, role, fetcher.read)
    echo(f"bundle host {host.name}: {len(needed)} of {len(sums)} file(s) needed for the {role or 'full'} bundle")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(fetcher.ensure, relative) for relative in sorted(needed)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((future for future in done if future.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            error = failed.exception()
            assert error is not None
            raise error
    report = FetchReport(needed, fetcher.fetched_files, fetcher.fetched_bytes, fetcher.present_files, verified)
    echo(
        f"bundle host {host.name}: fetched {report.fetched_files} file(s), {human_size(report.fetched_bytes)}, "
        f"each checked against {SUMS_NAME}; {report.present_files} already in {root}"
    )
    return report
