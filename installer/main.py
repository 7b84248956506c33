"""Command line of k8s-install.pyz: parse arguments, dispatch, map errors to exit codes.

Exit codes: 0 success, 1 an error the operator can fix (one line on stderr), 2 bad command line,
3 a bug (traceback written to the log, not the screen), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from installer import __version__
from installer.cluster.commands import add_config_parser, run_config
from installer.errors import InstallError
from installer.verify import verify_directory

PROG = "k8s-install.pyz"
CRASH_LOG = "/var/log/k8s-install.crash.log"


def default_bundle_dir() -> Path:
    """The folder holding the running pyz (shiv sets argv[0] to the archive)."""
    return Path(os.path.abspath(sys.argv[0])).parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Install a node of an offline Kubernetes cluster from this bundle.",
        epilog="Exit codes: 0 done, 1 error to fix (message says what), 2 bad arguments, 3 bug, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--bundle", type=Path, help="the unpacked bundle folder (default: the folder of this file)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    verify = commands.add_parser("verify", help="check every file of the bundle against SHA256SUMS")
    verify.add_argument("--jobs", type=int, default=0, help="hashing threads (default: automatic)")
    add_config_parser(commands)
    return parser


def run_verify(bundle: Path, jobs: int) -> int:
    result = verify_directory(bundle, jobs)
    print(f"bundle OK: {result.files} files, {result.bytes} bytes, SHA256SUMS sha256 {result.sums_sha256}")
    return 0


def dispatch(args: argparse.Namespace) -> int:
    bundle = args.bundle or default_bundle_dir()
    if args.command == "verify":
        return run_verify(bundle, args.jobs)
    if args.command == "config":
        return run_config(args, bundle)
    build_parser().print_help()
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except InstallError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    except Exception:  # a bug: keep the screen clean, keep the details
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
