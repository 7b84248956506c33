"""Command line of `bundler`: argument parsing and dispatch only; each command's body is in bundler/commands/.

Exit codes: 0 success, 1 an error the user can fix (one line), 2 bad arguments, 3 a bug (traceback in
the log file named on screen), 130 interrupted, 141 the reader of its output left early (`| head`): quietly
(bundler/error_handler.py).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, List, Optional
from urllib.parse import urlsplit

from bundler import __version__, interrupt, paths
from bundler.cache import DEFAULT_CACHE
from bundler.error_handler import exit_code_of
from bundler.errors import BundlerError
from k8s_install.cluster.ansible_cli import add_ansible_options, ansible_settings
from k8s_install.errors import InstallError


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value}: must be more than 0")
    return number


def _kubernetes_version(value: str) -> str:
    """`--k8s`: 1.29.6, or v1.29.6 as kubeadm and the release tags write it (the same version)."""
    if re.fullmatch(r"v\d+\.\d+\.\d+", value):
        return value[1:]
    return value


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    """The parser of `bundler NAME [NAME...]`, so an error prints that command's usage, not the top one."""
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _shaped(example: str, pattern: str) -> Callable[[str], str]:
    """An argument type that accepts values looking like `example` (checked by `pattern`)."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise argparse.ArgumentTypeError(f"{value!r}: expected {example}")
        return value

    return check


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot see alone but is still a bad command line: exit 2 with the command's usage line."""
    if args.command == "cluster" and args.cluster_command == "init":
        _check_supported(_subparser(parser, "cluster", "init"), args.kubernetes)
    if args.command == "images":
        _check_images_arguments(_subparser(parser, "images", args.images_action), args)
    if args.command == "hosts" and not args.manifest:
        _check_supported(_subparser(parser, "hosts"), args.kubernetes)
        if not args.kubernetes and not args.cluster:
            _subparser(parser, "hosts").error("bundler hosts needs --k8s VERSION, --cluster FILE or --manifest FILE")
    if args.command == "build":
        _check_build_arguments(_subparser(parser, "build"), args)
    if args.command == "hosts":
        _check_workload_arguments(_subparser(parser, "hosts"), args)


def _check_supported(parser: argparse.ArgumentParser, kubernetes: Optional[str]) -> None:
    if kubernetes and kubernetes not in paths.supported_versions():
        versions = ", ".join(paths.supported_versions()) or "none"
        parser.error(f"Kubernetes {kubernetes} is not supported; supported versions: {versions}")


def _check_images_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from k8s_install.images.push_options import check_prefix

    if args.plain_http and args.ca_file:
        parser.error("--plain-http and --ca-file do not go together: plain HTTP checks no certificate")
    try:
        check_prefix(args.prefix)
    except InstallError as error:
        parser.error(str(error))


def _check_build_arguments(build: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.manifest:
        _check_supported(build, args.kubernetes)
    if not args.kubernetes and not args.manifest and not args.cluster:
        build.error(
            "bundler build needs --k8s VERSION (or --cluster FILE naming kubernetes_version, or --manifest FILE)"
        )
    for flag, path in (("--manifest", args.manifest), ("--lock", args.lock)):
        if path is not None and not path.is_file():
            build.error(f"{flag} {path}: no such file")
    if args.json and not args.dry_run:
        build.error("--json prints the plan: give it with --dry-run")
    for value in args.registry_mirror:
        host = urlsplit(value.partition("=")[2])
        if host.scheme == "http" and host.netloc not in args.insecure_registry:
            build.error(f"--registry-mirror {value}: plain http needs --insecure-registry {host.netloc} as well")
    _check_workload_arguments(build, args)
    _check_os(build, args)


def _check_os(build: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--os` must be a target (or an alias of one) of the release; a release that cannot be read here is
    reported with its own error once the build starts."""
    from bundler.manifest import load_release
    from bundler.sources.cluster import cluster_kubernetes

    try:
        kubernetes = args.kubernetes or (None if args.manifest else cluster_kubernetes(args.cluster))
        release = load_release(kubernetes, args.manifest)
    except BundlerError:
        return
    known = sorted(n for target in release.os_targets.values() for n in (target.id, *target.aliases))
    if args.os not in known:
        build.error(
            f"--os {args.os}: not a target of Kubernetes {release.kubernetes}; choose one of {', '.join(known)}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bundler", description="Build verified offline Kubernetes bundles.")
    parser.add_argument("--version", action="version", version=f"bundler {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    build = commands.add_parser("build", help="download, verify and pack every artifact of a release")
    build.add_argument(
        "--k8s", dest="kubernetes", metavar="VERSION", type=_kubernetes_version,
        help="Kubernetes version, e.g. 1.29.6 (default: kubernetes_version of --cluster)",
    )  # fmt: skip
    build.add_argument("--manifest", type=Path, metavar="FILE", help="a release manifest file instead of --k8s")
    build.add_argument("--arch", choices=("amd64", "arm64"), default="amd64", help="target arch (default amd64)")
    build.add_argument(
        "--os",
        default="rocky9",
        help="target OS id (default rocky9; alma9, rhel9 are aliases; debian12, ubuntu2204 and ubuntu2404 are built "
        "on a Debian or Ubuntu machine)",
    )
    build.add_argument("--output", type=Path, default=Path("."), metavar="DIR", help="where the tarball goes")
    build.add_argument("--cache", type=Path, metavar="DIR", help=f"download cache (default {DEFAULT_CACHE})")
    build.add_argument("--jobs", type=_positive, default=4, metavar="N", help="parallel downloads (default 4)")
    build.add_argument("--mirror", metavar="URL", help="fetch https://HOST/PATH from URL/HOST/PATH instead")
    build.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="network timeout (30)")
    build.add_argument("--retries", type=_count, default=4, metavar="N", help="retries on 5xx/connection errors (4)")
    build.add_argument("--ca-file", metavar="FILE", help="extra CA bundle for TLS (verification stays on)")
    build.add_argument(
        "--lock", type=Path, metavar="FILE", help="a bundle.yaml whose resolved image digests/RPMs must be reproduced"
    )
    build.add_argument(
        "--rpm-closure", choices=("minimal", "full"), default="minimal",
        help="RPMs: leave out what a minimal EL install has (default), or bundle every dependency",
    )  # fmt: skip
    build.add_argument(
        "--rpm-mirror", metavar="NAME", help="RPMs: take repositories from the manifest's named mirror (aliyun)"
    )
    build.add_argument(
        "--allow-unpinned", action="store_true", help="accept artifacts without a pinned sha256 (recorded as unpinned)"
    )
    _add_image_flags(build)
    _add_workload_flags(build)
    _add_plan_flags(build)
    build.add_argument("--cluster", type=Path, metavar="FILE", help="a cluster.yaml to validate and put in the bundle")
    build.add_argument(
        "--sign-key", type=Path, metavar="FILE",
        help="sign SHA256SUMS into SHA256SUMS.sig with this OpenSSH key (ed25519; a .pub file: the ssh-agent signs)",
    )  # fmt: skip
    build.add_argument(
        "--from", dest="delta_from", type=Path, metavar="OLD",
        help="write a delta: leave out what this earlier bundle (tarball, folder or bundle.yaml) already holds",
    )  # fmt: skip

    verify = commands.add_parser("verify", help="check a bundle tarball or folder against its SHA256SUMS")
    verify.add_argument("bundle", type=Path, metavar="BUNDLE.tar|DIR")
    verify.add_argument("--jobs", type=_count, default=0, metavar="N", help="hashing threads (default: automatic)")
    verify.add_argument(
        "--trusted-signers", type=Path, metavar="FILE",
        help="OpenSSH allowed_signers file: require a good signature by one of them",
    )  # fmt: skip
    verify.add_argument("--json", action="store_true", help="print the result as JSON (schema in docs/json-output.md)")

    releases = commands.add_parser("releases", help="list the Kubernetes releases and their components (offline)")
    releases.add_argument("--json", action="store_true", help="print them as JSON")

    hosts = commands.add_parser(
        "hosts", help="list every host a build contacts, from the manifest alone (offline): for a firewall request"
    )
    hosts.add_argument("--k8s", dest="kubernetes", metavar="VERSION", type=_kubernetes_version, help="e.g. 1.29.6")
    hosts.add_argument("--manifest", type=Path, metavar="FILE", help="a release manifest file instead of --k8s")
    hosts.add_argument("--cluster", type=Path, metavar="FILE", help="take the version from this cluster.yaml")
    hosts.add_argument("--arch", choices=("amd64", "arm64"), default="amd64", help="target arch (default amd64)")
    hosts.add_argument("--os", default="rocky9", help="target OS id (default rocky9)")
    hosts.add_argument("--mirror", metavar="URL", help="as for build: files and RPMs come from URL/HOST/PATH")
    hosts.add_argument("--rpm-mirror", metavar="NAME", help="as for build: the manifest's named RPM mirror")
    hosts.add_argument("--cache", type=Path, metavar="DIR", help="read images_from_files artifacts from this cache")
    hosts.add_argument("--json", action="store_true", help="print the list as JSON")
    _add_image_flags(hosts)
    _add_workload_flags(hosts)

    inspect = commands.add_parser("inspect", help="verify a bundle, then list its images, packages and files")
    inspect.add_argument("bundle", type=Path, metavar="BUNDLE.tar|DIR")
    inspect.add_argument("--json", action="store_true", help="print it as JSON (schema in docs/json-output.md)")
    inspect.add_argument("--jobs", type=_count, default=0, metavar="N", help="hashing threads (default: automatic)")

    images = commands.add_parser("images", help="work with a bundle's container images")
    image_actions = images.add_subparsers(dest="images_action", metavar="ACTION", required=True)
    text = "copy every image of a bundle (tarball or folder) into a registry, keeping repository names"
    push = image_actions.add_parser("push", help=text, description=text)
    push.add_argument("bundle", type=Path, metavar="BUNDLE.tar|DIR")
    from k8s_install.images.push_options import add_push_options

    add_push_options(push)
    push.add_argument("--chunk-size", type=_positive, metavar="BYTES", help="upload blobs bigger than this in chunks")

    cluster = commands.add_parser(
        "cluster", help="write or check a cluster.yaml and its secrets; write the Ansible playbook for it"
    )
    cluster_commands = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    init = cluster_commands.add_parser("init", help="write a commented cluster.yaml and its secrets files (0600)")
    init.add_argument("--dir", type=Path, default=Path("."), help="where to write them (default: .)")
    init.add_argument(
        "--k8s", dest="kubernetes", metavar="VERSION", required=True, type=_kubernetes_version,
        help="the Kubernetes release cluster.yaml pins "
        f"(known: {', '.join(paths.supported_versions()) or 'none'})",
    )  # fmt: skip
    init.add_argument("--name", help="cluster name (default k8s-cluster)")
    init.add_argument(
        "--trusted-signers", type=Path, metavar="FILE",
        help="OpenSSH allowed_signers file: record who signs bundles; nodes then refuse unsigned ones",
    )  # fmt: skip
    check = cluster_commands.add_parser("check", help="validate a cluster.yaml (and its secrets file)")
    check.add_argument("config", type=Path, metavar="cluster.yaml")
    check.add_argument(
        "--k8s", dest="kubernetes", metavar="VERSION", type=_kubernetes_version, help="the bundle's Kubernetes version"
    )
    check.add_argument("--secrets", type=Path, metavar="FILE", help="also check this cluster-secrets.yaml")
    ansible = cluster_commands.add_parser("ansible", help="write an Ansible inventory and playbook for every node")
    ansible.add_argument("config", type=Path, metavar="cluster.yaml")
    ansible.add_argument("--bundle", type=Path, required=True, metavar="FILE.tar", help="the bundle tarball to carry")
    add_ansible_options(ansible)
    return parser


def _add_image_flags(build: argparse.ArgumentParser) -> None:
    images = build.add_argument_group("container images")
    images.add_argument("--image", action="append", default=[], metavar="REF", help="also bundle this image")
    images.add_argument(
        "--image-file", action="append", default=[], metavar="FILE", help="more images, one per line (# comments)"
    )
    images.add_argument(
        "--registry-auth", action="append", default=[], metavar="HOST=USER:PASSWORD_FILE",
        type=_shaped("HOST=USER:PASSWORD_FILE", r"[^=]+=[^:]+:.+"),
        help="log in to HOST as USER with the password in PASSWORD_FILE (else ~/.docker/config.json)",
    )  # fmt: skip
    images.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST",
        help="reach HOST over plain HTTP (loopback test registries; never implied)",
    )  # fmt: skip
    images.add_argument(
        "--registry-mirror", action="append", default=[], metavar="HOST=URL",
        type=_shaped("HOST=https://MIRROR[/PREFIX]", r"[^=]+=https?://[^/]+.*"),
        help="pull HOST's images from URL (its path is a repository prefix); names stay HOST's",
    )  # fmt: skip


def _add_workload_flags(build: argparse.ArgumentParser) -> None:
    workloads = build.add_argument_group("workloads: Helm charts and plain files")
    workloads.add_argument(
        "--chart", action="append", default=[], metavar="REF",
        help="also bundle this Helm chart and its images: https://REPO/NAME@VERSION@sha256:HEX (the .tgz's sha256) "
        "or oci://HOST/PATH/NAME:VERSION@sha256:HEX (its manifest digest)",
    )  # fmt: skip
    workloads.add_argument(
        "--chart-values", action="append", default=[], metavar="[NAME=]FILE",
        help="values for `helm template` when finding a chart's images (NAME=: only that chart)",
    )  # fmt: skip
    workloads.add_argument(
        "--file", dest="plain_file", action="append", default=[], metavar="SRC[=NAME]",
        help="also carry this file in files/plain/: a local PATH, or https://HOST/PATH@sha256:HEX",
    )  # fmt: skip


def _check_workload_arguments(build: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from bundler.helm.reference import parse_chart_reference
    from bundler.sources.plain_files import parse_file_request

    try:
        for text in args.chart:
            parse_chart_reference(text)
        for text in args.plain_file:
            parse_file_request(text)
    except BundlerError as error:
        build.error(str(error))
    if args.chart_values and not args.chart:
        build.error("--chart-values is for --chart: give the charts it renders")


def _add_plan_flags(build: argparse.ArgumentParser) -> None:
    plan = build.add_argument_group("plan and fetch")
    plan.add_argument("--dry-run", action="store_true", help="resolve every source, print the plan, fetch nothing")
    plan.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON on stdout")
    plan.add_argument(
        "--offline", action="store_true", help="make no network request: every item must be in the cache (use --lock)"
    )
    plan.add_argument(
        "--allow-incomplete", action="store_true",
        help="build even when the bundle lacks parts a node needs (they are listed and recorded)",
    )  # fmt: skip


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "build":
        from bundler.commands.build import run_build
        from bundler.commands.build_options import options_from_arguments

        return run_build(options_from_arguments(args))
    if args.command == "releases":
        from bundler.commands.releases import run_releases

        return run_releases(args.json)
    if args.command == "hosts":
        from bundler.commands.hosts import request_from_arguments, run_hosts

        return run_hosts(request_from_arguments(args), args.json)
    if args.command == "verify":
        from bundler.commands.verify import run_verify

        return run_verify(args.bundle, args.jobs, args.trusted_signers, args.json)
    if args.command == "inspect":
        from bundler.commands.inspect import run_inspect

        return run_inspect(args.bundle, args.json, args.jobs)
    if args.command == "images":
        from bundler.commands.images import run_push

        return run_push(args)
    if args.command == "cluster":
        from bundler.commands.cluster import run_cluster_check, run_cluster_init

        if args.cluster_command == "init":
            return run_cluster_init(args.dir, args.kubernetes, args.name, args.trusted_signers)
        if args.cluster_command == "ansible":
            from bundler.commands.cluster import run_cluster_ansible

            return run_cluster_ansible(
                args.config, args.bundle, args.dir, args.secrets, args.worker_secrets, **ansible_settings(args)
            )
        return run_cluster_check(args.config, args.kubernetes, args.secrets)
    raise AssertionError(args.command)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    interrupt.install_handler()
    return exit_code_of(lambda: dispatch(args))
