"""The options of `images push`, the same in both tools (the builder adds the bundle argument), and the check
of --prefix: argparse only, so building either tool's parser imports no registry client."""

from __future__ import annotations

import argparse
import re

from k8s_install.errors import InstallError

_PREFIX = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def check_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if prefix and not _PREFIX.match(prefix):
        raise InstallError(f"--prefix {prefix!r}: use lowercase letters, digits, . _ - and / (e.g. mirror/k8s)")
    return prefix


def add_push_options(push: argparse.ArgumentParser) -> None:
    """The options of `images push`, the same in both tools (bundler adds the bundle argument)."""
    push.add_argument("registry", metavar="REGISTRY", help="HOST[:PORT] of the registry (https)")
    push.add_argument("--prefix", default="", help="put every repository under this path, e.g. mirror/k8s")
    push.add_argument("--ca-file", metavar="FILE", help="CA bundle the registry's certificate is checked with")
    push.add_argument(
        "--auth-file", metavar="FILE", help="credentials as podman/docker login write them (auths.HOST.auth)"
    )
    push.add_argument("--plain-http", action="store_true", help="plain HTTP (loopback test registries only)")
