"""Options of `cluster ansible` shared by `bundler` and `k8s-install.pyz config` (no jinja2 import here: the
parsers are built on every run)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from k8s_install.bundle_format.layout import SECRETS_NAME, WORKER_SECRETS_NAME

DEFAULT_OUTPUT = Path("ansible")
DEFAULT_REMOTE_DIR = "/var/lib/k8s-bundle"  # where a node keeps the unpacked bundle and its secrets
DEFAULT_WORKER_BATCH = 5
DEFAULT_NODE_PYTHON = "/usr/bin/python3"  # EL9's platform Python 3.9: runs the pyz and Ansible's modules


def _batch(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def add_ansible_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where the inventory and playbook go (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--secrets", type=Path, metavar="FILE", help=f"{SECRETS_NAME} for control planes (default: beside cluster.yaml)"
    )
    parser.add_argument(
        "--worker-secrets", type=Path, metavar="FILE",
        help=f"{WORKER_SECRETS_NAME} for workers (default: beside cluster.yaml)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-batch", type=_batch, default=DEFAULT_WORKER_BATCH, metavar="N",
        help=f"workers installed at once (default {DEFAULT_WORKER_BATCH}); a failure stops before the next batch",
    )  # fmt: skip
    parser.add_argument(
        "--remote-dir", default=DEFAULT_REMOTE_DIR, metavar="DIR",
        help=f"where nodes keep the bundle and secrets (default {DEFAULT_REMOTE_DIR})",
    )  # fmt: skip
    parser.add_argument(
        "--node-python", default=DEFAULT_NODE_PYTHON, metavar="PATH",
        help=f"the nodes' Python for the installer and Ansible's modules (default {DEFAULT_NODE_PYTHON})",
    )  # fmt: skip
    parser.add_argument("--ssh-user", default="root", metavar="USER", help="Ansible's SSH user (default root)")
    parser.add_argument(
        "--bundle-url", dest="host_url", default="", metavar="URL",
        help="nodes fetch what their role needs from this bundle host (https://HOST:8443, `k8s-install.pyz serve`) "
        "instead of each receiving the tarball: only the installer and SHA256SUMS are copied to them",
    )  # fmt: skip
    parser.add_argument(
        "--serve", dest="serve_host", action="store_true",
        help="with --bundle-url: also make the URL's machine the bundle host (group k8s_bundle_host): the playbook "
        "copies the tarball there once, unpacks it and runs `k8s-install.pyz serve` before any node installs",
    )  # fmt: skip


def ansible_settings(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "worker_batch": args.worker_batch,
        "remote_dir": args.remote_dir,
        "node_python": args.node_python,
        "ssh_user": args.ssh_user,
        "bundle_url": args.host_url,  # dest apart from the node option --bundle-url (which `config` refuses)
        "serve_host": args.serve_host,
    }
