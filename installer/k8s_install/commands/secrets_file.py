"""Where a command finds the cluster secrets: light on purpose, as `verify` asks it before every install (for
the signers the secrets record) and must not load the steps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from k8s_install.bundle_format.layout import SECRETS_NAME, WORKER_SECRETS_NAME
from k8s_install.cluster.paths import INSTALLED_SECRETS
from k8s_install.node.host import Host


def find_secrets(args: argparse.Namespace, bundle_root: Path, host: Host, role: str) -> Optional[Path]:
    """--secrets, else the copy a control plane keeps, else the file beside the bundle folder (a worker
    takes the worker-only file when it is there)."""
    if getattr(args, "secrets", None):
        return Path(args.secrets)
    names = [WORKER_SECRETS_NAME, SECRETS_NAME] if role == "worker" else [SECRETS_NAME]
    candidates = [host.path(INSTALLED_SECRETS)] + [bundle_root.parent / name for name in names]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None
