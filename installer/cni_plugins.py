"""Keep the CNI plugins of the bundled cni-plugins tarball (1.4.0) in /opt/cni/bin.

The kubernetes-cni RPM (a dependency of kubelet and kubeadm) installs its own, older plugins into the
same folder. The choice here: let the RPM install as usual (rpm/dnf stay consistent), then lay the
tarball's plugins over it, and check them again on every run: a plugin whose content differs from the
tarball's is rewritten (temporary file in the same folder, then rename), an identical one is left alone,
so a re-run changes nothing and a later `dnf reinstall kubernetes-cni` is undone by the next run.
(Telling rpm to skip the folder through %_netsharedpath would need a node-wide rpm macro that silently
affects every later transaction; this way nothing outside /opt/cni/bin is touched.)
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from installer.errors import InstallError

CNI_BIN_DIR = "opt/cni/bin"
ARTIFACT_NAME = "cni-plugins"


@dataclass(frozen=True)
class PluginChange:
    name: str
    reason: str  # "missing" or "differs from the tarball"


def plugin_tarball(bundle: Path, manifest: Dict[str, Any]) -> Optional[Path]:
    for entry in manifest.get("artifacts") or []:
        if isinstance(entry, dict) and entry.get("name") == ARTIFACT_NAME:
            return Path(bundle) / str(entry["path"])
    return None


def _plugin_name(member: tarfile.TarInfo, tarball: Path) -> Optional[str]:
    """The plugin's file name, or None for the folder entry; refuses anything that is not a flat file."""
    name = member.name[2:] if member.name.startswith("./") else member.name
    if member.isdir() and name in ("", "."):
        return None
    if not member.isfile() or not name or "/" in name or name in (".", "..") or "\0" in name:
        raise InstallError(
            f"{tarball}: member {member.name!r} is not a plain file at the top; refusing to unpack it"
        )
    return name


def _read_plugins(tarball: Path) -> Dict[str, bytes]:
    try:
        with tarfile.open(tarball, "r:*") as archive:
            plugins = {}
            for member in archive.getmembers():
                name = _plugin_name(member, tarball)
                if name is None:
                    continue
                stream = archive.extractfile(member)
                assert stream is not None
                plugins[name] = stream.read()
            return plugins
    except (tarfile.TarError, OSError) as error:
        raise InstallError(
            f"{tarball}: cannot read the CNI plugins tarball ({error}); re-copy the bundle"
        ) from None


def _sha256(path: Path) -> Optional[str]:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def plan_cni_plugins(tarball: Path, root: Path = Path("/")) -> List[PluginChange]:
    target = Path(root) / CNI_BIN_DIR
    changes = []
    for name, data in sorted(_read_plugins(tarball).items()):
        present = target / name
        current = _sha256(present) if not present.is_symlink() else None
        if current == hashlib.sha256(data).hexdigest() and os.access(present, os.X_OK):
            continue
        changes.append(PluginChange(name, "missing" if current is None else "differs from the tarball"))
    return changes


def install_cni_plugins(tarball: Path, root: Path = Path("/")) -> List[PluginChange]:
    """Write the tarball's plugins where they differ; returns what changed (empty: already in place)."""
    changes = plan_cni_plugins(tarball, root)
    if not changes:
        return []
    plugins = _read_plugins(tarball)
    target = Path(root) / CNI_BIN_DIR
    target.mkdir(parents=True, exist_ok=True)
    for change in changes:
        handle, temporary = tempfile.mkstemp(prefix=f".{change.name}.", dir=target)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(plugins[change.name])
            os.chmod(temporary, 0o755)
            os.replace(temporary, target / change.name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return changes
