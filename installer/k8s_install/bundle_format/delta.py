"""Complete a delta bundle from its base: `k8s-install.pyz verify --base OLD_DIR` in the unpacked delta folder.

Every file SHA256SUMS lists that the delta left out is taken from the base folder by its sha256 (a hard link
when both folders are on one file system, else a copy), checked, and put in place; DELTA.yaml is removed; then
the folder verifies as the complete new bundle. A base that is not the one the delta was built from is refused
with the name and SHA256SUMS sum of the base it needs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Dict

import yaml

from k8s_install.bundle_format.layout import DELTA_NAME, SUMS_NAME
from k8s_install.bundle_format.sums import parse_sums, sha256_file
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import InstallError, yaml_problem


def read_delta_record(bundle: Path) -> Dict[str, Any]:
    path = bundle / DELTA_NAME
    try:
        record = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise InstallError(f"{path}: cannot read it ({error}); re-copy the delta bundle") from None
    except yaml.YAMLError as error:
        raise InstallError(f"{path}: not valid YAML ({yaml_problem(error)}); re-copy the delta bundle") from None
    if not isinstance(record, dict) or not isinstance(record.get("base"), dict):
        raise InstallError(f"{path}: not a delta record; re-copy the delta bundle")
    return record


def needed_base(record: Dict[str, Any]) -> str:
    base = record["base"]
    sums = base.get("sums_sha256")
    return f"{base.get('bundle')}" + (f" ({SUMS_NAME} sha256 {sums})" if sums else "")


def complete_from_base(bundle: Path, base: Path) -> int:
    """Fill in the files the delta left out; returns how many. A complete bundle (no DELTA.yaml) is left alone."""
    bundle, base = Path(bundle), Path(base)
    if not (bundle / DELTA_NAME).is_file():
        return 0
    record = read_delta_record(bundle)
    base_sums_path = base / SUMS_NAME
    if not base_sums_path.is_file():
        raise InstallError(f"--base {base}: no {SUMS_NAME}; this delta needs the unpacked bundle {needed_base(record)}")
    base_bytes = base_sums_path.read_bytes()
    wanted_sum = record["base"].get("sums_sha256")
    if wanted_sum and hashlib.sha256(base_bytes).hexdigest() != wanted_sum:
        raise InstallError(
            f"--base {base} is not the base of this delta: it needs {needed_base(record)}, and {base} has "
            f"{SUMS_NAME} sha256 {hashlib.sha256(base_bytes).hexdigest()}"
        )
    by_digest = {digest: path for path, digest in parse_sums(base_bytes.decode("utf-8", "replace")).items()}
    sums = parse_sums((bundle / SUMS_NAME).read_text(encoding="utf-8", errors="replace"))
    missing = [path for path in sorted(sums) if not (bundle / path).exists()]
    lacking = [path for path in missing if sums[path] not in by_digest]
    if lacking:
        raise InstallError(
            f"--base {base} lacks {lacking[0]} ({len(lacking)} file(s) in all): this delta needs {needed_base(record)}"
        )
    for path in missing:
        _place(base / by_digest[sums[path]], bundle / path, sums[path])
    (bundle / DELTA_NAME).unlink()
    return len(missing)


def _place(source: Path, target: Path, digest: str) -> None:
    if sha256_file(source) != digest:
        raise InstallError(f"{source} is corrupted (sha256 differs from its {SUMS_NAME}); re-copy the base bundle")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        os.link(source, partial)
    except OSError:
        shutil.copy2(source, partial)
    os.replace(partial, target)
