"""`bundler verify BUNDLE.tar|DIR`: prove a copied bundle is intact (and, with trusted signers, signed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bundler.errors import BundlerError
from bundler.progress import human_size
from installer.errors import InstallError
from installer.signature import read_trusted_signers
from installer.verify import verify_bundle


def run_verify(target: Path, jobs: int = 0, trusted_signers: Optional[Path] = None) -> int:
    try:
        signers = read_trusted_signers(trusted_signers) if trusted_signers is not None else None
        result = verify_bundle(target, jobs, signers)
    except InstallError as error:
        raise BundlerError(str(error)) from None
    print(f"bundle OK: {result.files} files, {human_size(result.bytes)}, SHA256SUMS sha256 {result.sums_sha256}")
    print(result.signature)
    return 0
