"""`bundler verify BUNDLE.tar|DIR`: prove a copied bundle is intact (and, with trusted signers, signed).

Like `sha256sum -c`, a failed run lists every problem (each mismatching, missing or extra file), then one
summary line, exit 1; with --json the document says `ok: false` and lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import k8s_install.report as report
from bundler.progress import human_size
from k8s_install.bundle_format.opened import open_bundle
from k8s_install.bundle_format.shape import incomplete_line
from k8s_install.bundle_format.signature import read_trusted_signers
from k8s_install.errors import InstallError


def run_verify(target: Path, jobs: int = 0, trusted_signers: Optional[Path] = None, as_json: bool = False) -> int:
    signers = read_trusted_signers(trusted_signers) if trusted_signers is not None else None
    try:
        with open_bundle(target, signers, jobs) as bundle:
            result = bundle.result()
    except InstallError as error:
        raise report.verify_failed(str(target), error, as_json) from None
    if as_json:
        report.emit("verify", report.verify_body(str(target), result))
        return 0
    print(f"bundle OK: {result.files} files, {human_size(result.bytes)}, SHA256SUMS sha256 {result.sums_sha256}")
    print(result.signature)
    if result.incomplete:
        print(f"warning: {incomplete_line(list(result.incomplete))}")
    return 0
