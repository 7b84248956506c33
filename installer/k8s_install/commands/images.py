"""`images`: import the bundled images into containerd and prove every one is there."""

from __future__ import annotations

import argparse

from k8s_install.commands.node import make_node
from k8s_install.engine import converge
from k8s_install.images.containerd_import import NAMESPACE
from k8s_install.steps.image_import import Images


def run_images(args: argparse.Namespace) -> int:
    if getattr(args, "images_action", None) == "push":
        return run_push(args)
    # an incomplete bundle too: the images step imports what is there
    node = make_node(args, dry_run=False, settings=None, need_cluster=False, need_complete=False)
    step = Images(ctr=getattr(args, "ctr", None), snapshotter=getattr(args, "snapshotter", None))
    converge(node, [step], dry_run=False)
    total = len(node.bundle.images())
    imported = len(step.imported.imported) if step.imported else 0
    print(
        f"images: {imported} imported, {total - imported} already present; "
        f"all {total} bundled images are in containerd namespace {NAMESPACE}"
    )
    return 0


def run_push(args: argparse.Namespace) -> int:
    """`images push REGISTRY`: the verified bundle's images into a registry (no containerd, no root needed)."""
    from pathlib import Path

    from k8s_install.commands.node import bundle_dir, verify_bundle_dir
    from k8s_install.images.push import PushOptions, push_bundle, summary
    from k8s_install.node.host import Host

    root = bundle_dir(args)
    options = PushOptions(args.registry, args.prefix, args.ca_file, args.auth_file, args.plain_http)
    with verify_bundle_dir(args, Host(Path(args.root or "/"))) as opened:  # the signature too, as every command
        print(f"pushing the images of {root} to {args.registry}")
        report = push_bundle(opened, options)
    print(summary(report, args.registry))
    return 0
