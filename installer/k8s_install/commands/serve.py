"""`serve`: make this machine the bundle host (nginx and the registry as systemd services); `serve status`
and `serve reset` are in k8s_install/serve/status.py and reset.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.engine import Node, NodeOptions, Step, converge
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.serve import layout
from k8s_install.serve.layout import ServeSettings
from k8s_install.settings import NodeSettings


def serve_steps(settings: ServeSettings) -> List[Step]:
    from k8s_install.serve import steps

    return [
        steps.ServeBinaries(settings),
        steps.ServeCertificate(settings),
        steps.ServeConfig(settings),
        steps.ServeFirewall(settings),
        steps.ServeImages(settings),
        steps.ServeServices(settings),
    ]


def run_serve(args: argparse.Namespace) -> int:
    action = "plan" if args.dry_run else args.action
    if action == "status":
        from k8s_install.serve.status import run_status

        return run_status(args)
    if action == "reset":
        from k8s_install.serve.reset import run_reset

        return run_reset(args)
    from k8s_install.commands.install import confirm
    from k8s_install.commands.node import node_bundle
    from k8s_install.serve.settings import refuse_taken_ports, serve_settings, warn_selinux_enforcing

    host = Host(Path(args.root or "/"), verbose=getattr(args, "verbose", False))
    bundle = node_bundle(args, host)  # verified, the signature too, before anything is served
    settings = serve_settings(args, bundle, host)
    refuse_taken_ports(host, settings)
    warn_selinux_enforcing(host)
    node = serve_node(host, bundle, dry_run=True, no_gpgcheck=args.no_gpgcheck)
    steps = serve_steps(settings)
    if action == "plan":
        report = converge(node, steps, dry_run=True)
        print(f"plan: {report.change_count} change(s) to make this machine the bundle host")
        return 0
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options.dry_run = False
    report = converge(node, steps, dry_run=False)
    web, registry = settings.urls()
    served = {"bundle": settings.bundle, "web": web, "registry": registry}
    if any(node.state.data.get(key) != value for key, value in served.items()):  # a re-run writes nothing
        node.state.data.update(served)
        node.state.save()
    restarted = ", ".join(report.restarted)
    print(f"done: {report.change_count} change(s) applied" + (f", restarted {restarted}" if restarted else ""))
    print(f"bundle host: files at {web}, images at {registry} (TLS from the cluster CA)")
    if bundle.manifest.charts:  # charts/ with the build's index.yaml: a chart repository as it is served
        names = ", ".join(f"{chart.name} {chart.version}" for chart in bundle.manifest.charts)
        print(f"charts ({names}): helm repo add bundle {web}charts --ca-file CLUSTER_CA.crt")
    return 0


def serve_node(host: Host, bundle: Bundle, dry_run: bool, no_gpgcheck: bool = False) -> Node:
    """The engine's node for serve's steps: serve's own state file, no cluster settings (serve is no node role)."""
    settings = NodeSettings(role="bundle-host", first=False, name="", ip="")
    options = NodeOptions(dry_run=dry_run, no_gpgcheck=no_gpgcheck)
    return Node(host=host, state=State(host, layout.STATE_FILE), bundle=bundle, settings=settings, options=options)
