"""Preflight: refuse a node that cannot work, before anything changes. Each failure says how to fix it."""

from __future__ import annotations

import datetime
import json
import os
import stat
from typing import Callable, List, NamedTuple, Optional, Tuple

from k8s_install.bundle_format.layout import SBOM_NAME
from k8s_install.cert_expiry import CertificateError, expiry_warnings, parse_validity, pem_certificates
from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.node import facts
from k8s_install.node.clock import NOT_AFTER, NOT_BEFORE, NOW, ClockReference, clock_problem
from k8s_install.node.distro import for_target, known_distro, target_of
from k8s_install.packages.assumed_rpms import unmet_requirements
from k8s_install.steps.disk_space import check_disk
from k8s_install.steps.kernel import SYSCTL_FILE, sysctl_overrides

MIN_CPUS = 2
MIN_MEMORY = 2 * 1024**3
ARCH_BY_MACHINE = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

Check = Callable[[Node], Optional[str]]


def check_root(node: Node) -> Optional[str]:
    if facts.effective_uid() != 0:
        return "not running as root: run it with sudo (or as root)"
    return None


def check_os(node: Node) -> Optional[str]:
    """The bundle's target against the node's os-release (k8s_install/node/distro.py names each release's)."""
    if "linux" in node.bundle.os_ids:
        return None  # a generic Linux bundle
    release = facts.read_os_release(node.host)
    found = target_of(release)
    if found in node.bundle.os_ids:
        return None
    wanted = "/".join(node.bundle.os_ids)
    values = ", ".join(node.bundle.os_ids)
    if not found:  # no /etc/os-release, or one without ID
        running = "an OS that /etc/os-release does not name (no ID)"
        return f"this node runs {running} but the bundle is for {wanted}: install on one of those ({values})"
    running = release.get("PRETTY_NAME", found)
    built_for = for_target(node.bundle.manifest.os)
    if node.bundle.manifest.deb_repository is not None or known_distro(release) is not None:
        on = f"{built_for.name} nodes" if built_for is not None else "nodes of that OS"
        return (
            f"this node runs {running} but the bundle is for {wanted}: install it on {on}, or build one for this "
            f"node with bundler build --os {found}"
        )
    return (
        f"this node runs {running} but the bundle is for {wanted}: {found} is not a target of this release "
        f"(bundler build --os takes {values}); install on one of those"
    )


def check_arch(node: Node) -> Optional[str]:
    machine_name = facts.machine()
    arch = ARCH_BY_MACHINE.get(machine_name, machine_name)
    if arch != node.bundle.arch:
        return f"this node is {arch} but the bundle is for {node.bundle.arch}: build one with --arch {arch}"
    return None


def check_cpus(node: Node) -> Optional[str]:
    count = facts.cpu_count()
    if count < MIN_CPUS:
        return f"{count} CPU(s), Kubernetes needs at least {MIN_CPUS}: give the machine more CPUs"
    return None


def check_memory(node: Node) -> Optional[str]:
    total = facts.memory_bytes()
    if total < MIN_MEMORY:
        return f"{total / 1024**3:.1f} GiB of memory, Kubernetes needs at least 2 GiB: add memory"
    return None


NO_BUILD_TIME = datetime.datetime(1980, 1, 2, tzinfo=datetime.timezone.utc)  # the builder's default epoch: unknown


def bundle_build_time(node: Node) -> Optional[datetime.datetime]:
    """When the bundle was built (its SBOM's `created`, SOURCE_DATE_EPOCH), if the builder recorded it."""
    try:
        created = json.loads((node.bundle.root / SBOM_NAME).read_bytes())["creationInfo"]["created"]
        moment = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return moment if moment > NO_BUILD_TIME else None


def clock_references(node: Node) -> List[ClockReference]:
    """What the cluster itself says about the time (k8s_install/node/clock.py): the CA's validity, the
    bundle's build time and, on a live node that joins, the cluster API's clock."""
    found: List[ClockReference] = []
    secrets = node.settings.secrets
    if secrets is not None:
        try:
            not_before, not_after, _ = parse_validity(pem_certificates(secrets.ca_cert_pem.encode())[0])
        except (CertificateError, ValueError, IndexError):
            pass  # the secrets' loader checked the CA already; its hash pins it
        else:
            ca = "the cluster CA certificate (cluster secrets)"
            found.append(ClockReference(f"the start of {ca}", not_before, NOT_BEFORE))
            found.append(ClockReference(f"the end of {ca}", not_after, NOT_AFTER))
    built = bundle_build_time(node)
    if built is not None:
        found.append(ClockReference(f"the bundle's build time ({SBOM_NAME})", built, NOT_BEFORE))
    settings = node.settings
    if node.host.live and not settings.first and settings.cluster is not None and secrets is not None:
        from k8s_install.cluster.api_probe import api_time

        config = settings.cluster
        answered = api_time(str(config.vip), config.api_port, secrets.ca_cert_pem, timeout=3.0)
        if answered is not None:
            found.append(ClockReference(f"the cluster API at {config.api_endpoint}", answered, NOW))
    return found


def check_clock(node: Node) -> Optional[str]:
    return clock_problem(facts.utc_now(), clock_references(node))


# What a node of ours runs on the required ports: after a run that failed half-way (say in kubeadm init,
# after haproxy started), these are not conflicts, and the re-run must go on.
OUR_LISTENERS = frozenset(
    {"haproxy", "kube-apiserver", "etcd", "kubelet", "kube-controller", "kube-scheduler", "kube-proxy"}
)


def required_ports(node: Node) -> List[int]:
    ports = [10250]
    if node.settings.is_control_plane:
        ports += [6443, 2379, 2380, 10257, 10259, node.settings.api_vip_port]
    return ports


def check_ports(node: Node) -> Optional[str]:
    listening = facts.listening_ports()
    busy = [port for port in required_ports(node) if port in listening and listening[port] not in OUR_LISTENERS]
    if busy:
        held = ", ".join(f"{port} ({listening[port] or 'unknown'})" for port in sorted(busy))
        return f"port(s) {held} already in use: stop what listens there (ss -ltnp shows it)"
    return None


def check_runtime(node: Node) -> Optional[str]:
    if facts.docker_running(node.host):
        return "docker is running and would fight containerd: systemctl disable --now docker docker.socket"
    return None


def check_assumed_rpms(node: Node) -> Optional[str]:
    """A minimal-closure bundle leaves out what a minimal install has: the node's own versions must do."""
    repository = node.bundle.manifest.rpm_repository
    assumed = repository.assumed_installed if repository is not None else ()
    if not any(entry.required for entry in assumed):
        return None  # no RPMs, the full closure, or a bundle from before requirements were recorded
    if node.host.which("rpm") is None:
        return "rpm is not installed, but the bundle's RPMs need an EL9 node's rpm database"
    root_args = [] if node.host.live else ["--root", str(node.host.root)]

    def run(argv: List[str]) -> Tuple[int, str]:
        result = node.host.run(argv, check=False)
        return result.returncode, result.stdout.decode(errors="replace")

    unmet = unmet_requirements(assumed, run, root_args)
    if not unmet:
        return None
    names = sorted({item.package for item in unmet})
    shown = "; ".join(str(item) for item in unmet[:4]) + (f"; and {len(unmet) - 4} more" if len(unmet) > 4 else "")
    return (
        f"this node's packages do not meet what the bundle's RPMs require: {shown}: update the node "
        f"(dnf update {' '.join(names)}) or use a bundle built with --rpm-closure full"
    )


def check_bundle_permissions(node: Node) -> Optional[str]:
    """The bundle's files and folders must not be writable by group or others: whoever can write them could
    swap a binary or an RPM between `verify` and the moment the installer uses it (as root)."""
    root = node.bundle.root
    writable: List[str] = []
    for folder, _, files in os.walk(root):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # gone meanwhile: verify names missing files
            if mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(mode):
                writable.append(os.path.relpath(path, root))
    if not writable:
        return None
    shown = ", ".join(writable[:3]) + (f" and {len(writable) - 3} more" if len(writable) > 3 else "")
    return (
        f"{len(writable)} path(s) in the bundle folder {root} can be written by other users ({shown}), so they "
        f"could be swapped after verify: chmod -R go-w {root}, then run ./k8s-install.pyz verify again"
    )


CHECKS: Tuple[Tuple[str, Check], ...] = (
    ("root", check_root),
    ("os", check_os),
    ("arch", check_arch),
    ("cpus", check_cpus),
    ("memory", check_memory),
    ("clock", check_clock),
    ("disk", check_disk),
    ("ports", check_ports),
    ("runtime", check_runtime),
    ("assumed-rpms", check_assumed_rpms),
    ("bundle-permissions", check_bundle_permissions),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)


class CheckResult(NamedTuple):
    name: str
    result: str  # ok, failed or ignored
    problem: Optional[str]


def run_checks(node: Node) -> List[CheckResult]:
    """Every check in order, with its result: the one loop behind install, `preflight` and `preflight --json`."""
    results = []
    for name, check in CHECKS:
        if name in node.settings.ignore_preflight:
            node.host.log(f"preflight {name}: ignored (--ignore-preflight {name})")
            results.append(CheckResult(name, "ignored", None))
            continue
        problem = check(node)
        results.append(CheckResult(name, "failed" if problem else "ok", problem or None))
    return results


def failures(node: Node) -> List[Tuple[str, str]]:
    return [(r.name, r.problem) for r in run_checks(node) if r.problem]


def sysctl_warnings(node: Node) -> List[str]:
    """Settings of ours that a sysctl file read after ours at boot changes back (it does so silently)."""
    return [
        f"{found.path} sets {found.key} = {found.value}, and is read after {SYSCTL_FILE} (= {found.ours}): "
        f"at boot its value wins; remove the line there, or set {found.ours}"
        for found in sysctl_overrides(node.host)
    ]


class Preflight(Step):
    name = "preflight"
    title = "node can run Kubernetes"

    def __init__(self, list_checks: bool = False) -> None:
        self.list_checks = list_checks  # the `preflight` command names every check; install only failures

    def plan(self, node: Node) -> List[Change]:
        for warning in sysctl_warnings(node):
            print(f"  preflight sysctl: warning: {warning}")
            node.host.log(f"preflight sysctl: warning: {warning}")
        results = run_checks(node)
        for warning in expiry_warnings(node.host):  # a warning only: renewing needs a running node
            print(f"  preflight warning: {warning}")
        for check in results:
            if check.problem:
                print(f"  preflight {check.name}: {check.problem}")
            elif self.list_checks:
                shown = f"ignored (--ignore-preflight {check.name})" if check.result == "ignored" else "ok"
                print(f"  preflight {check.name}: {shown}")
        found = [check for check in results if check.problem]
        node.options.preflight_failures = [check.name for check in found]
        if found and not node.options.plan_past_preflight:
            raise InstallError(preflight_failed(node))
        return []

    def outcome(self, node: Node) -> Optional[str]:
        """`plan` goes on past failed checks to show every step: the step's line says they failed."""
        failed = node.options.preflight_failures
        return f"FAILED ({', '.join(failed)}): an install stops here" if failed else None


def preflight_failed(node: Node) -> str:
    names = ", ".join(node.options.preflight_failures or [])
    return f"preflight failed ({names}): fix the above, or pass --ignore-preflight NAME to override one"
