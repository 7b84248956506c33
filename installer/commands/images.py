"""`images`: import the bundled images into containerd and prove every one is there."""

from __future__ import annotations

import argparse

from installer.commands.node import make_node
from installer.engine import converge
from installer.images import NAMESPACE
from installer.steps.images import Images


def run_images(args: argparse.Namespace) -> int:
    node = make_node(args, dry_run=False, settings=None, need_cluster=False)
    node.options["ctr"] = getattr(args, "ctr", None)
    node.options["snapshotter"] = getattr(args, "snapshotter", None)
    converge(node, [Images()], dry_run=False)
    total = len(node.bundle.images())
    result = node.options.get("images_result")
    imported = len(result.imported) if result else 0
    print(
        f"images: {imported} imported, {total - imported} already present; "
        f"all {total} bundled images are in containerd namespace {NAMESPACE}"
    )
    return 0
