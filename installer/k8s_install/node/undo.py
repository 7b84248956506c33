"""Undo what the installer did to one file: the original back, or the file removed, keeping later edits.

Used by `reset` for every file, and by the runtime step for binaries an earlier runtime release installed
that the bundle's release no longer has.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict

from k8s_install.node.atomic import copy_atomically, write_atomically
from k8s_install.node.host import Host
from k8s_install.node.revert import revert_installer_changes
from k8s_install.node.state import ours_path_for, written_by_installer


def undo_file(host: Host, path: str, record: Dict[str, Any]) -> str:
    """Restore the original only where the file is as the installer left it; where the operator edited it
    since, take out only the installer's lines and keep theirs. Returns what was done."""
    target = host.path(path)
    backup = host.path(record["backup"]) if record.get("backup") else None
    original = backup if backup is not None and backup.is_file() else None
    current = target.read_bytes() if target.is_file() else None
    if current is None or written_by_installer(record, hashlib.sha256(current).hexdigest()):
        if original is not None:
            copy_atomically(original, target)  # a cut leaves the installer's file or the original, never half
            return f"restored {path}"
        if current is not None:
            target.unlink()
            return f"removed {path}"
        return f"{path} is already gone"
    if original is not None and current == original.read_bytes():
        return f"{path} is already the original"  # restored by a reset that was cut before it noted so
    if original is None:
        return f"kept {path}: it was edited after the installer wrote it; remove it if it is not needed"
    ours = host.path(ours_path_for(path))
    if not ours.is_file():  # written by an installer that kept no copy: the edits cannot be told apart
        kept = f"{path}.k8s-install-orig"
        copy_atomically(original, host.path(kept))
        return f"kept {path} as edited after the install; its original is in {kept}"
    reverted = revert_installer_changes(*(_text(data) for data in (ours.read_bytes(), current, original.read_bytes())))
    write_atomically(target, reverted.text.encode("utf-8", "surrogateescape"), target.stat().st_mode & 0o7777, True)
    done = f"took the installer's lines out of {path} and kept your later edits"
    if reverted.conflicts:
        done += f" ({reverted.conflicts} place(s) you changed over the installer's lines were kept as you left them)"
    return done


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
