"""Command line of k8s-install.pyz: parse arguments, dispatch, map errors to exit codes.

Exit codes: 0 success, 1 an error the operator can fix (one line on stderr), 2 bad command line,
3 a bug (traceback written to the log, not the screen), 130 interrupted, 141 the reader of the output left
early (`... --json | head`): no message, as other Unix tools do.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from k8s_install import __version__
from k8s_install.cluster.commands import add_config_parser, run_config
from k8s_install.errors import InstallError, UserError, error_lines, stdout_closed, stdout_reader_left
from k8s_install.node.atomic import NO_SPACE
from k8s_install.settings import FIREWALL_MODES, ROLES

PROG = "k8s-install.pyz"
CRASH_LOG = "/var/log/k8s-install.crash.log"

DESCRIPTION = """\
Install one node of an offline Kubernetes cluster from this bundle, with no network beyond the cluster.

  first control plane:   ./k8s-install.pyz --role control-plane --first
  other control planes:  ./k8s-install.pyz --role control-plane
  workers:               ./k8s-install.pyz --role worker

Every run shows what it will change and changes only that: run it again at any time, a finished node
reports 0 changes and a failed run continues where it stopped. Everything is logged to
/var/log/k8s-install.log.
"""

EPILOG = (
    "The options above are the install's; `COMMAND --help` lists the ones each command takes (it refuses others).\n"
    "Exit codes: 0 done, 1 an error to fix (the message says what), 2 bad arguments, 3 bug, 130 interrupted."
)


IDENTITY = ("role", "first", "node", "config", "secrets")  # which node this is (cluster.yaml, its secrets)
BUNDLE = ("bundle", "trusted_signers")  # which bundle, and who must have signed it
REMOTE = ("bundle_url", "bundle_ca")  # fill the bundle folder from a bundle host first (docs/bundle-url.md)
CONVERGE = ("firewall", "ignore_preflight", "containerd_address", "no_gpgcheck", "allow_incomplete")
INSTALL = IDENTITY + BUNDLE + REMOTE + CONVERGE + ("root", "yes", "verbose", "wait")
# The node options each command takes (by dest); any other is refused (exit 2) instead of ignored. `upgrade`
# takes the install's: it is run with the same arguments as the install was.
COMMAND_OPTIONS: Dict[str, Tuple[str, ...]] = {
    "install": INSTALL,
    "upgrade": INSTALL,
    "plan": tuple(name for name in INSTALL if name not in ("yes", "wait")),
    "preflight": IDENTITY + BUNDLE + REMOTE + ("root", "ignore_preflight", "allow_incomplete", "verbose"),
    "verify": BUNDLE + REMOTE + ("root", "role", "secrets"),  # role and secrets: where the recorded signers are
    "images": BUNDLE + REMOTE + ("root", "role", "secrets", "containerd_address", "verbose", "wait"),
    "images push": BUNDLE + ("root", "role", "secrets"),
    "status": ("bundle", "root", "containerd_address"),
    "join-info": IDENTITY + BUNDLE + ("root", "verbose", "wait"),
    "reset": ("root", "yes", "verbose", "wait"),
    "certs": ("root", "yes", "verbose", "wait"),
    "config": ("config", "secrets", "node", "bundle", "root", "trusted_signers"),
    "serve": BUNDLE + ("secrets", "root", "yes", "no_gpgcheck", "verbose"),
}
OPTION_DEFAULTS: Dict[str, object] = {"first": False, "yes": False, "no_gpgcheck": False, "verbose": False,
                                      "allow_incomplete": False, "firewall": "firewalld", "wait": False}  # fmt: skip


def node_options(shown: Sequence[str] = INSTALL) -> argparse.ArgumentParser:
    """The node options, accepted before or after the command name. Defaults are suppressed (filled in by
    `fill_defaults` after parsing), so what was given can be told from what was not; options a command does
    not take are hidden from its help, and refused by `refuse_foreign_options` when given."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)

    def option(*names: str, **kwargs: Any) -> None:
        dest = names[0].lstrip("-").replace("-", "_")
        if dest not in shown:
            kwargs["help"] = argparse.SUPPRESS
        common.add_argument(*names, **kwargs)

    def switch(*names: str, help: str) -> None:
        option(*names, action="store_true", help=help)

    option("--role", choices=ROLES, help="what this node is")
    switch("--first", help="this is the first control plane: it creates the cluster")
    option("--node", metavar="NAME", help="this node's name in cluster.yaml (default: found by its IPs)")
    option("--config", metavar="FILE", help="cluster config (default: cluster.yaml in the bundle)")
    option(
        "--secrets", metavar="FILE", help="cluster-secrets.yaml (default: the installed copy, else beside the bundle)"
    )
    option("--bundle", metavar="DIR", help="the unpacked bundle (default: the folder of this file)")
    option(
        "--bundle-url", metavar="URL",
        help="fetch what this role needs from the bundle host (https://HOST:8443) into the bundle folder first",
    )  # fmt: skip
    option(
        "--bundle-ca", metavar="FILE",
        help="CA certificate the bundle host's TLS certificate must be signed by (default: the cluster CA)",
    )  # fmt: skip
    option("--root", metavar="DIR", help="apply to a mounted system image instead of / (no live changes)")
    switch("--yes", "-y", help="apply without asking")
    option(
        "--firewall", choices=FIREWALL_MODES,
        help="open the role's ports in firewalld (default), or stop and disable firewalld altogether",
    )  # fmt: skip
    option(
        "--ignore-preflight", action="append", metavar="NAME", help="go on despite this preflight check (repeatable)"
    )
    option("--containerd-address", metavar="SOCKET", help="containerd to import images into (default: the node's own)")
    option(
        "--trusted-signers", metavar="FILE",
        help="OpenSSH allowed_signers: the bundle must be signed by one (default: those in the cluster secrets)",
    )  # fmt: skip
    switch("--no-gpgcheck", help="install unsigned RPMs (only for bundles built from unsigned repositories)")
    switch(
        "--allow-incomplete",
        help="go on with a bundle built with --allow-incomplete (refused by default: it lacks parts of a node)",
    )
    switch("--verbose", "-v", help="print every command as it runs")
    switch("--wait", help="if another k8s-install run is changing this node, wait for it (default: refuse at once)")
    return common


def fill_defaults(args: argparse.Namespace) -> None:
    for action in node_options()._actions:
        if not hasattr(args, action.dest):
            setattr(args, action.dest, OPTION_DEFAULTS.get(action.dest))


def command_key(args: argparse.Namespace) -> str:
    command = getattr(args, "command", None) or "install"
    return "images push" if command == "images" and getattr(args, "images_action", None) == "push" else command


def foreign_options(args: argparse.Namespace) -> List[str]:
    """The node options given that the command does not take, as typed (`--firewall`)."""
    allowed = COMMAND_OPTIONS.get(command_key(args), INSTALL)
    found = []
    for action in node_options()._actions:
        if action.dest not in allowed and hasattr(args, action.dest):
            found.append(next(name for name in action.option_strings if name.startswith("--")))
    return found


COMMAND_HELP: Dict[str, str] = {
    "install": "converge this node to its role (the default command)",
    "plan": "print every step with the changes it would make; change nothing",
    "preflight": "only check that this node can run Kubernetes",
    "verify": "check every file of the bundle against SHA256SUMS",
    "images": "import the bundled images into containerd (namespace k8s.io) and check every one is there",
    "status": "show services, images and, where kubectl works, nodes and pods",
    "join-info": "on a control plane: renew the join token and certificates, print the join commands",
    "reset": "undo what the installer did: stop services, remove what it installed, restore backups",
    "certs": "show every certificate's expiry; `certs renew` renews kubeadm's on a control plane",
    "upgrade": "move this node to the bundle's release in kubeadm's order; `upgrade plan` only shows the steps",
    "serve": "make this machine the bundle host: nginx serves the bundle, a registry its images (status, reset)",
}


JSON_COMMANDS = ("plan", "preflight", "verify", "status")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, parents=[node_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMAND_HELP.items():
        sub = commands.add_parser(name, help=text, description=text, parents=[node_options(COMMAND_OPTIONS[name])])
        if name in JSON_COMMANDS:
            sub.add_argument("--json", action="store_true", help="print the result as JSON (docs/json-output.md)")
        if name == "verify":
            sub.add_argument("--jobs", type=_count, default=0, help="hashing threads (default: automatic)")
            sub.add_argument("--base", metavar="DIR", help="a delta bundle: first take what it left out from DIR")
        if name == "images":
            sub.add_argument("--ctr", help="the ctr binary (default: /usr/local/bin/ctr, else ctr on PATH)")
            sub.add_argument("--snapshotter", help="containerd snapshotter to unpack into (default: containerd's)")
            add_push_parser(sub)
        if name == "certs":
            sub.add_argument("action", nargs="?", choices=("show", "renew"), default="show", help="default: show")
        if name == "upgrade":
            sub.add_argument("action", nargs="?", choices=("run", "plan"), default="run", help="default: run")
            sub.add_argument("--from", dest="from_", metavar="VERSION", help="the release this node runs now")
            sub.add_argument(
                "--no-delete-emptydir-data", action="store_true",
                help="drain without kubectl's --delete-emptydir-data (default: with it; a pod with an emptyDir "
                "volume then stops the drain)",
            )  # fmt: skip
        if name == "serve":
            from k8s_install.serve.options import add_serve_options

            add_serve_options(sub)
    add_config_parser(commands)
    return parser


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return number


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot see alone but is still a bad command line: exit 2 with its usage line."""
    if args.first and args.role == "worker":
        parser.error("--first names the first control plane: it does not go with --role worker")
    if getattr(args, "bundle_ca", None) and not getattr(args, "bundle_url", None):
        parser.error("--bundle-ca FILE checks the bundle host of --bundle-url: give --bundle-url too")
    try:
        if getattr(args, "bundle_url", None):
            from k8s_install.bundle_url.client import normalise_url

            normalise_url(args.bundle_url)
        if args.ignore_preflight:
            from k8s_install.commands.cluster_settings import ignored_checks

            ignored_checks(args.ignore_preflight)
        if getattr(args, "images_action", None) == "push":
            from k8s_install.images.push_options import check_prefix

            if args.plain_http and args.ca_file:
                parser.error("--plain-http and --ca-file do not go together: plain HTTP checks no certificate")
            check_prefix(args.prefix)
    except InstallError as error:
        parser.error(str(error))


def add_push_parser(images: argparse.ArgumentParser) -> None:
    actions = images.add_subparsers(dest="images_action", metavar="ACTION")
    text = "copy every bundled image into a registry (repository names kept, under --prefix)"
    push = actions.add_parser(
        "push", help=text, description=text, parents=[node_options(COMMAND_OPTIONS["images push"])]
    )
    from k8s_install.images.push_options import add_push_options

    add_push_options(push)


def run_verify(args: argparse.Namespace) -> int:
    from k8s_install.commands.node import bundle_dir, verify_bundle_dir
    from k8s_install.node.host import Host

    if getattr(args, "base", None):
        from k8s_install.bundle_format.delta import complete_from_base

        filled = complete_from_base(bundle_dir(args), Path(args.base))
        print(f"delta completed from {args.base}: {filled} file(s) taken from the base")
    from k8s_install import report
    from k8s_install.errors import InstallError

    as_json = bool(getattr(args, "json", False))
    try:
        host = Host(Path(args.root or "/"))
        with report.text_to_stderr(as_json), verify_bundle_dir(args, host, getattr(args, "jobs", 0)) as opened:
            result = opened.result()
    except InstallError as error:
        raise report.verify_failed(str(bundle_dir(args)), error, as_json) from None
    if as_json:
        report.emit("verify", report.verify_body(str(bundle_dir(args)), result))
        return 0
    from k8s_install.units import human_size

    print(f"bundle OK: {result.files} files, {human_size(result.bytes)}, SHA256SUMS sha256 {result.sums_sha256}")
    if result.incomplete:
        from k8s_install.bundle_format.shape import incomplete_line

        print(f"warning: {incomplete_line(list(result.incomplete))}")
    return 0


# command -> (module, function). Only the module of the command that runs is imported: each pulls its own steps,
# templates or registry client, and a node runs the installer many times (verify, plan, install, status).
HANDLERS: Dict[str, Tuple[str, str]] = {
    "install": ("k8s_install.commands.install", "run_install"),
    "plan": ("k8s_install.commands.install", "run_plan"),
    "preflight": ("k8s_install.commands.install", "run_preflight"),
    "images": ("k8s_install.commands.images", "run_images"),
    "reset": ("k8s_install.commands.reset", "run_reset"),
    "status": ("k8s_install.commands.status", "run_status"),
    "join-info": ("k8s_install.commands.join_info", "run_join_info"),
    "certs": ("k8s_install.commands.certs", "run_certs"),
    "upgrade": ("k8s_install.commands.upgrade", "run_upgrade"),
    "serve": ("k8s_install.commands.serve", "run_serve"),
}


def handler_for(command: str) -> Optional[Callable[[argparse.Namespace], int]]:
    """The function that runs `command`, its module imported now; None for a command this version lacks."""
    if command == "verify":
        return run_verify
    if command == "config":
        from k8s_install.commands.node import bundle_dir

        return lambda args: run_config(args, bundle_dir(args))
    if command not in HANDLERS:
        return None
    module, function = HANDLERS[command]
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), function)
    return handler


def takes_run_lock(args: argparse.Namespace) -> bool:
    """The commands that change the node run one at a time (k8s_install/node/lock.py)."""
    key = command_key(args)
    if key == "upgrade":
        return getattr(args, "action", "run") != "plan"
    if key == "certs":
        return getattr(args, "action", "show") == "renew"
    return key in ("install", "reset", "images", "join-info")


def dispatch(args: argparse.Namespace) -> int:
    command = args.command or "install"
    handler = handler_for(command)
    if handler is None:
        raise InstallError(f"{command} is not available in this version")
    root = Path(args.root or "/")
    if not takes_run_lock(args) or not root.is_dir():  # a --root that is not there: the command says so
        return handler(args)
    from k8s_install.node.host import Host
    from k8s_install.node.lock import run_lock

    with run_lock(Host(root), command_key(args), wait=bool(args.wait)):
        return handler(args)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    foreign = foreign_options(args)
    if foreign:
        command = command_key(args)
        parser.exit(2, f"{PROG}: error: {command} does not take {', '.join(foreign)} (see {PROG} {command} --help)\n")
    fill_defaults(args)
    check_arguments(parser, args)
    try:
        code = dispatch(args)
        sys.stdout.flush()  # a reader that left early (`| head`) shows here, not in the interpreter's exit
        return code
    except UserError as error:
        for line in error_lines(error):
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: keep the screen clean, keep the details
        if stdout_reader_left(error):
            return stdout_closed()
        if isinstance(error, OSError) and error.errno in NO_SPACE:  # a full disk where no step expected it
            where = error.filename or "a file of this run"
            print(f"{PROG}: error: {where}: no space left on its filesystem: free space there, then run again",
                  file=sys.stderr)  # fmt: skip
            return 1
        where = _write_crash_log()
        print(f"{PROG}: internal error; details in {where}; please report it", file=sys.stderr)
        return 3


def _write_crash_log() -> str:
    for candidate in (CRASH_LOG, os.path.join(os.path.expanduser("~"), ".k8s-install.crash.log")):
        try:
            with open(candidate, "a", encoding="utf-8") as log:
                traceback.print_exc(file=log)
            return candidate
        except OSError:
            continue
    traceback.print_exc()
    return "stderr"
