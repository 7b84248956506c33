"""The command line of `serve` (added to the installer's parser by main.py)."""

from __future__ import annotations

import argparse

from k8s_install.serve.layout import HTTPS_PORT, REGISTRY_PORT

ACTIONS = ("run", "plan", "status", "reset")


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value}: not a port number") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: a port is 1 to 65535")
    return number


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("action", nargs="?", choices=ACTIONS, default="run", help="default: run")
    serve.add_argument("--dry-run", action="store_true", help="the same as `serve plan`: show the changes, make none")
    serve.add_argument(
        "--address", action="append", default=[], metavar="IP|NAME",
        help="a further address or DNS name for the certificate, the first one shown in the URLs (repeatable; "
        "default: this machine's addresses and host name)",
    )  # fmt: skip
    serve.add_argument("--https-port", type=_port, default=HTTPS_PORT, help=f"nginx's port (default {HTTPS_PORT})")
    serve.add_argument(
        "--registry-port", type=_port, default=REGISTRY_PORT, help=f"the registry's port (default {REGISTRY_PORT})"
    )
    serve.add_argument(
        "--registry-binary", metavar="PATH",
        help="run this registry binary instead of installing the bundle's (e.g. /usr/bin/docker-registry)",
    )  # fmt: skip
    serve.add_argument("--nginx-binary", metavar="PATH", help="run this nginx (default /usr/sbin/nginx, installed "
                       "from the bundle's repository when missing)")  # fmt: skip
