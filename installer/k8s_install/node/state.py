"""What the installer has done on this node, kept in /var/lib/k8s-install/state.json (0600).

It lets `reset` undo exactly what was done (files created, originals backed up, units enabled, packages
installed) and lets a run that was killed re-run the service restarts it had not done yet.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from k8s_install.node.atomic import write_atomically
from k8s_install.node.host import STATE_DIR, Host

STATE_FILE = f"{STATE_DIR}/state.json"
BACKUP_DIR = f"{STATE_DIR}/backups"


class State:
    def __init__(self, host: Host, path: str = STATE_FILE) -> None:
        self.host = host
        self.path = host.path(path)  # another record than the node's: `serve` keeps its own
        self.data: Dict[str, Any] = {"files": {}, "units": [], "pending_restarts": [], "packages": []}
        if self.path.is_file():
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self.data.update(loaded)

    # -- files ---------------------------------------------------------------------------------------
    def file_record(self, path: str) -> Optional[Dict[str, Any]]:
        return self.data["files"].get(path)

    def record_file(self, path: str, sha256: str, backup: Optional[str]) -> None:
        """Noted before the file is written: until the rename lands (a cut in between), the file still holds
        what the installer wrote before, kept as `previous_sha256` so it does not pass for a hand edit."""
        record = self.data["files"].setdefault(path, {"backup": backup})
        if backup and not record.get("backup"):
            record["backup"] = backup
        if record.get("sha256") not in (None, sha256):
            record["previous_sha256"] = record["sha256"]
        record["sha256"] = sha256
        self.save()

    def drop_file(self, path: str) -> None:
        """The installer no longer manages `path` (undone)."""
        if self.data["files"].pop(path, None) is not None:
            self.save()

    def files(self) -> Dict[str, Dict[str, Any]]:
        return dict(self.data["files"])

    # -- runtime artifacts (steps/runtime.py) ------------------------------------------------------------
    def runtime_artifact(self, name: str) -> Optional[Dict[str, Any]]:
        """What the installer last wrote from the bundle artifact `name`: its sha256, the layout that placed its
        members (steps/runtime.py BinarySet) and the files it wrote."""
        return self.data.get("runtime_artifacts", {}).get(name)

    def record_runtime_artifact(self, name: str, sha256: str, layout: str, files: List[str]) -> None:
        artifacts = self.data.setdefault("runtime_artifacts", {})
        artifacts[name] = {"sha256": sha256, "layout": layout, "files": sorted(files)}
        self.save()

    # -- units, packages, restarts -------------------------------------------------------------------
    def record_unit(self, unit: str) -> None:
        if unit not in self.data["units"]:
            self.data["units"].append(unit)
            self.save()

    def units(self) -> List[str]:
        return list(self.data["units"])

    def record_packages(self, names: List[str]) -> None:
        for name in names:
            if name not in self.data["packages"]:
                self.data["packages"].append(name)
        self.save()

    def packages(self) -> List[str]:
        return list(self.data["packages"])

    def add_pending_restarts(self, services: List[str]) -> None:
        pending = self.data["pending_restarts"]
        for service in services:
            if service not in pending:
                pending.append(service)
        self.save()

    def pending_restarts(self) -> List[str]:
        return list(self.data["pending_restarts"])

    def clear_pending_restart(self, service: str) -> None:
        """Done restarting `service` (also under its unit name, as a state file of an older run has it)."""
        done = [name for name in self.data["pending_restarts"] if name in (service, f"{service}.service")]
        for name in done:
            self.data["pending_restarts"].remove(name)
        if done:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps(self.data, indent=1, sort_keys=True)
        write_atomically(self.path, text.encode(), 0o600, overwrite=True)

    def remove(self) -> None:
        if self.path.exists():
            self.path.unlink()


def written_by_installer(record: Dict[str, Any], sha256: str) -> bool:
    """The file's content is the installer's last write, or the one before it (a write cut before its rename)."""
    return sha256 in (record.get("sha256"), record.get("previous_sha256"))


def backup_path_for(path: str) -> str:
    return f"{BACKUP_DIR}{path}.orig"


def edited_path_for(path: str) -> str:
    """Where a managed file edited by hand is saved before the installer writes over it."""
    return f"{BACKUP_DIR}{path}.edited"


def ours_path_for(path: str) -> str:
    """What the installer last wrote over an original: `reset` tells the operator's later edits from it."""
    return f"{BACKUP_DIR}{path}.ours"
