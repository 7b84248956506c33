"""`install` (the default), `plan` and `preflight`: converge this node to its role."""

from __future__ import annotations

import argparse
import sys

from installer.commands.node import make_node
from installer.engine import converge
from installer.errors import InstallError
from installer.roles import steps_for
from installer.steps.preflight import Preflight


def run_plan(args: argparse.Namespace) -> int:
    node = make_node(args, dry_run=True)
    report = converge(node, steps_for(node.settings.role, node.settings.first), dry_run=True)
    print(f"plan: {report.change_count} change(s) pending; nothing was changed")
    return 0


def run_preflight(args: argparse.Namespace) -> int:
    node = make_node(args, dry_run=True)
    converge(node, [Preflight()], dry_run=True)
    print("preflight: all checks passed")
    return 0


def confirm(args: argparse.Namespace, pending: int) -> None:
    if args.yes or pending == 0:
        return
    if not sys.stdin.isatty():
        raise InstallError(f"{pending} change(s) pending and no terminal to confirm them: re-run with --yes")
    answer = input(f"Apply {pending} change(s) to this node? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise InstallError("nothing changed: the changes were not confirmed")


def run_install(args: argparse.Namespace) -> int:
    if not args.role:
        raise InstallError("say which node this is: --role control-plane [--first] or --role worker")
    node = make_node(args, dry_run=True)  # verifies the bundle once
    steps = steps_for(node.settings.role, node.settings.first)
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options["dry_run"] = False
    report = converge(node, steps, dry_run=False)
    node.state.data["completed"] = True
    node.state.data["kubernetes"] = node.bundle.kubernetes  # where `upgrade` starts from
    node.state.save()
    restarted = ", ".join(report.restarted)
    node.host.log(f"=== done: {report.change_count} change(s), restarted {restarted or 'nothing'}")
    print(f"done: {report.change_count} change(s) applied" + (f", restarted {restarted}" if restarted else ""))
    return 0
