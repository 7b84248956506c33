"""Build the Node every command works on: host, state, verified bundle, this node's settings."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from installer.bundle import Bundle, load_bundle
from installer.delta import refuse_incomplete_delta
from installer.engine import Node
from installer.host import Host
from installer.settings import NodeSettings
from installer.state import State
from installer.verify import verify_directory


def default_bundle_dir() -> Path:
    """The folder holding the running pyz (shiv sets argv[0] to the archive)."""
    return Path(os.path.abspath(sys.argv[0])).parent


def bundle_dir(args: argparse.Namespace) -> Path:
    return Path(args.bundle) if getattr(args, "bundle", None) else default_bundle_dir()


def open_bundle(args: argparse.Namespace, verify: bool = True) -> Bundle:
    root = bundle_dir(args)
    if verify:
        refuse_incomplete_delta(root)
        verify_directory(root)  # a node never installs from a bundle that does not check out
    return load_bundle(root)


def make_node(
    args: argparse.Namespace, dry_run: bool, settings: Optional[NodeSettings] = None, need_cluster: bool = True
) -> Node:
    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    bundle = open_bundle(args)
    if settings is None and not need_cluster:
        settings = NodeSettings(
            role=args.role or "worker", first=False, name="", ip="", containerd_address=args.containerd_address
        )
    if settings is None:
        from installer.commands.cluster_settings import settings_for

        settings = settings_for(args, bundle, host)
    options = {"dry_run": dry_run, "no_gpgcheck": getattr(args, "no_gpgcheck", False)}
    return Node(host=host, state=State(host), bundle=bundle, settings=settings, options=options)
