"""The smallest folder the one reader opens: bundle.yaml of the given shape, optional files, SHA256SUMS."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Optional

import yaml


def write_tiny_bundle(folder: Path, kubernetes: str = "1.29.6", files: Optional[Dict[str, bytes]] = None) -> Path:
    """A valid, unsigned bundle folder holding bundle.yaml and `files` (each named in artifacts)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = dict(files or {})
    artifacts = [
        {"name": Path(path).name, "path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for path, data in sorted(files.items())
    ]
    manifest = {"format": 1, "kubernetes": kubernetes, "os": "rocky9", "arch": "amd64", "artifacts": artifacts}
    files["bundle.yaml"] = yaml.safe_dump(manifest, sort_keys=False).encode()
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in sorted(files.items()))
    (folder / "SHA256SUMS").write_text(sums)
    return folder
