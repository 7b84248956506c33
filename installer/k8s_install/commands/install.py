"""`install` (the default), `plan` and `preflight`: converge this node to its role."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict

from k8s_install import report
from k8s_install.commands.node import make_node
from k8s_install.engine import Node, converge
from k8s_install.errors import InstallError
from k8s_install.roles import steps_for
from k8s_install.steps.preflight import CHECKS, Preflight, preflight_failed, run_checks


def run_plan(args: argparse.Namespace) -> int:
    as_json = getattr(args, "json", False)
    with report.text_to_stderr(as_json):
        node = make_node(args, dry_run=True)
        refuse_another_release(node)
        node.options.plan_past_preflight = True  # every step is shown, failed checks marked
        echo = (lambda _line: None) if as_json else print
        try:
            result = converge(node, steps_for(node.settings.role, node.settings.first), dry_run=True, echo=echo)
        except InstallError as error:
            if node.options.preflight_failures:
                raise InstallError(f"{error} (and {preflight_failed(node)})") from None
            raise
    failed = node.options.preflight_failures or []
    if as_json:
        steps = [
            {"name": step.name, "title": step.title, "changes": step.changes, "recorded_only": step.recorded}
            for step in result.steps
        ]
        body = {**node_body(node), "change_count": result.change_count, "preflight_failures": failed}
        report.emit("plan", {**body, "steps": steps})
    else:
        recorded = sum(len(step.recorded) for step in result.steps)
        logged = f"; {recorded} action(s) on the running machine only logged (--root)" if recorded else ""
        print(f"plan: {result.change_count} change(s) pending; nothing was changed{logged}")
    if failed:
        raise InstallError(f"{preflight_failed(node)} (an install stops at that step)")
    return 0


def refuse_another_release(node: Node) -> None:
    """An installed node moves to another release only with `upgrade` (kubeadm's order): an install from the
    new bundle would put the new packages in place without `kubeadm upgrade` and record the new release."""
    installed = node.state.data.get("kubernetes")
    if installed and installed != node.bundle.kubernetes:
        raise InstallError(
            f"this node runs Kubernetes {installed} (installed by k8s-install) and the bundle holds "
            f"{node.bundle.kubernetes}: move it with `k8s-install.pyz upgrade` and the same arguments, not with "
            "an install"
        )


def node_body(node: Node) -> Dict[str, Any]:
    settings = node.settings
    return {"node": settings.name, "role": settings.role, "first": settings.first, "root": str(node.host.root),
            "incomplete": node.bundle.incomplete}  # fmt: skip


def run_preflight(args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        return preflight_json(args)
    node = make_node(args, dry_run=True)
    converge(node, [Preflight(list_checks=True)], dry_run=True)
    ignored = len(node.settings.ignore_preflight)
    print(f"preflight: all checks passed ({len(CHECKS) - ignored} run" + (f", {ignored} ignored)" if ignored else ")"))
    return 0


def preflight_json(args: argparse.Namespace) -> int:
    """Every check with its result; exit 1 when one failed (the document is printed either way)."""
    with report.text_to_stderr(True):
        node = make_node(args, dry_run=True)
        checks = [check._asdict() for check in run_checks(node)]
    ok = all(entry["result"] != "failed" for entry in checks)
    report.emit("preflight", {**node_body(node), "ok": ok, "checks": checks})
    return 0 if ok else 1


def confirm(args: argparse.Namespace, pending: int) -> None:
    if args.yes or pending == 0:
        return
    if not sys.stdin.isatty():
        raise InstallError(f"{pending} change(s) pending and no terminal to confirm them: re-run with --yes")
    answer = input(f"Apply {pending} change(s) to this node? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise InstallError("nothing changed: the changes were not confirmed")


def run_install(args: argparse.Namespace) -> int:
    if not args.role and not args.node:  # --node names a node of cluster.yaml, and so its role
        raise InstallError("say which node this is: --role control-plane [--first], --role worker, or --node NAME")
    node = make_node(args, dry_run=True)  # verifies the bundle once
    refuse_another_release(node)
    steps = steps_for(node.settings.role, node.settings.first)
    if not args.yes:
        confirm(args, converge(node, steps, dry_run=True).change_count)
    node.options.dry_run = False
    report = converge(node, steps, dry_run=False)
    node.state.data["completed"] = True
    node.state.data["kubernetes"] = node.bundle.kubernetes  # where `upgrade` starts from
    node.state.save()
    restarted = ", ".join(report.restarted)
    node.host.log(f"=== done: {report.change_count} change(s), restarted {restarted or 'nothing'}")
    print(f"done: {report.change_count} change(s) applied" + (f", restarted {restarted}" if restarted else ""))
    return 0
