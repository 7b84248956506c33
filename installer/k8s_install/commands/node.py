"""Build the Node every command works on: host, state, verified bundle, this node's settings."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.opened import OpenedBundle, open_bundle
from k8s_install.bundle_format.shape import incomplete_line
from k8s_install.bundle_format.signature import TrustedSigners, read_trusted_signers
from k8s_install.engine import Node, NodeOptions
from k8s_install.errors import InstallError
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings


def default_bundle_dir() -> Path:
    """The folder holding the running pyz (shiv sets argv[0] to the archive)."""
    return Path(os.path.abspath(sys.argv[0])).parent


def bundle_dir(args: argparse.Namespace) -> Path:
    return Path(args.bundle) if getattr(args, "bundle", None) else default_bundle_dir()


def trusted_signers(args: argparse.Namespace, host: Host) -> Optional[TrustedSigners]:
    """--trusted-signers FILE, else the trusted_signers recorded in the cluster secrets (found as every
    command finds them), else none."""
    if getattr(args, "trusted_signers", None):
        return read_trusted_signers(Path(args.trusted_signers))
    from k8s_install.cluster.secrets import recorded_signers
    from k8s_install.commands.secrets_file import find_secrets

    found = find_secrets(args, bundle_dir(args), host, getattr(args, "role", None) or "worker")
    return recorded_signers(found) if found is not None else None


def verify_bundle_dir(args: argparse.Namespace, host: Host, jobs: int = 0) -> OpenedBundle:
    """Open the unpacked bundle folder through the one reader: signature first (when signers are configured),
    then every file; says what it found about the signature. A delta is refused until completed from its base."""
    root = bundle_dir(args)
    signers = trusted_signers(args, host)
    needed, verified = None, None
    if getattr(args, "bundle_url", None):  # first fill the folder from the bundle host, for this node's role
        from k8s_install.commands.bundle_host import fetch_for_node

        fetched = fetch_for_node(args, host, root, signers)
        needed, verified = fetched.needed, fetched.verified  # the signature was checked by the fetch: once
    if root.is_file():
        raise InstallError(f"{root}: a file, not the unpacked bundle folder: unpack it with `tar -xf`, use the folder")
    if not root.exists():
        raise InstallError(f"{root}: no such bundle folder")
    opened = open_bundle(root, signers, jobs, needed=needed, verified=verified)
    print(opened.signature.status())
    return opened


def node_bundle(args: argparse.Namespace, host: Optional[Host] = None) -> Bundle:
    """The bundle a node command works from: verified (a node never installs from a bundle that does not
    check out), its manifest read once by the verification."""
    with verify_bundle_dir(args, host or Host(Path(args.root or "/"))) as opened:
        if getattr(args, "bundle_url", None):  # fetched for the role: a worker imports only the images it runs
            from k8s_install.bundle_url.role_files import role_manifest

            return Bundle(bundle_dir(args), role_manifest(opened.manifest, getattr(args, "role", None)))
        return Bundle(bundle_dir(args), opened.manifest)


def refuse_incomplete(bundle: Bundle, allowed: bool) -> None:
    """A bundle built with --allow-incomplete lacks parts of a node: refused before anything is planned or
    changed, unless the operator says --allow-incomplete here too (then every run says what is missing)."""
    if not bundle.incomplete:
        return
    if not allowed:
        raise InstallError(
            f"{bundle.root}: {incomplete_line(bundle.incomplete, 3)}; nothing was changed: use a complete bundle "
            "(bundler build without --allow-incomplete), or pass --allow-incomplete to go on with what it holds"
        )
    print(f"warning: {incomplete_line(bundle.incomplete, 3)} (--allow-incomplete: going on with what it holds)")


def make_node(
    args: argparse.Namespace,
    dry_run: bool,
    settings: Optional[NodeSettings] = None,
    need_cluster: bool = True,
    need_complete: bool = True,
) -> Node:
    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    bundle = node_bundle(args, host=host)
    if need_complete:
        refuse_incomplete(bundle, getattr(args, "allow_incomplete", False))
    if settings is None and not need_cluster:
        settings = NodeSettings(
            role=args.role or "worker", first=False, name="", ip="", containerd_address=args.containerd_address
        )
    if settings is None:
        from k8s_install.commands.cluster_settings import settings_for

        settings = settings_for(args, bundle, host)
    options = NodeOptions(dry_run=dry_run, no_gpgcheck=getattr(args, "no_gpgcheck", False))
    return Node(host=host, state=State(host), bundle=bundle, settings=settings, options=options)
