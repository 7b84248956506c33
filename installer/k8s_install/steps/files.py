"""Files the installer manages: rendered, compared, written atomically with their mode, originals kept
(the helper every step that writes a file plans with).

A file the installer did not write is backed up once (to /var/lib/k8s-install/backups) before it is
replaced, so `reset` can restore it, and what the installer wrote over it is kept too, so `reset` can tell
the operator's later edits from the installer's; a managed file edited by hand since the last run is saved
beside the original backup before it is overwritten. Text files carry a managed-by header.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import List, Optional, Tuple

from k8s_install.engine import Change, Node
from k8s_install.node.atomic import copy_atomically, make_folders, write_atomically
from k8s_install.node.state import backup_path_for, edited_path_for, ours_path_for, written_by_installer

HEADER = "Managed by k8s-install: local edits are replaced on the next run (originals: /var/lib/k8s-install/backups)"


def with_header(text: str, comment: str = "#") -> str:
    return f"{comment} {HEADER}\n{text}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mode_of(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def plan_file(node: Node, path: str, data: bytes, mode: int = 0o644, restarts: Tuple[str, ...] = ()) -> List[Change]:
    """The change (if any) that makes `path` hold exactly `data` with `mode`."""
    target = node.host.path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        from k8s_install.errors import InstallError

        raise InstallError(f"{path} exists and is not a regular file; move it away and re-run")
    current = target.read_bytes() if target.exists() else None
    current_mode = _mode_of(target)
    if current == data and current_mode == mode:
        return []
    if current is None:
        summary = f"create {path}"
    elif current == data:
        summary = f"chmod {mode:o} {path}"
    else:
        summary = f"update {path}"
    return [Change(summary, lambda: apply_file(node, path, data, mode), restarts)]


def apply_file(node: Node, path: str, data: bytes, mode: int) -> None:
    target = node.host.path(path)
    record = node.state.file_record(path)
    backup: Optional[str] = None
    if target.exists():
        current = target.read_bytes()
        if record is None:
            backup = backup_path_for(path)  # the original, kept once for reset
            _copy(node, target, backup)
        elif not written_by_installer(record, sha256_bytes(current)) and current != data:
            edited = edited_path_for(path)
            _copy(node, target, edited)
            node.host.log(f"{path} was edited by hand; saved to {edited}")
    elif record is None:
        backup = None
    node.state.record_file(path, sha256_bytes(data), backup)
    if (node.state.file_record(path) or {}).get("backup"):
        write_atomically(_private(node, ours_path_for(path)), data, 0o600, overwrite=True)
    write_atomically(target, data, mode, overwrite=True)


def _private(node: Node, backup: str) -> Path:
    destination = node.host.path(backup)
    make_folders(destination.parent, 0o700)
    return destination


def _copy(node: Node, source: Path, backup: str) -> None:
    """Keep a copy of `source` (an original, an edited file) under the backups: complete, or not there."""
    copy_atomically(source, _private(node, backup))
