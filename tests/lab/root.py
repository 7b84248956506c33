"""The lab's node root: Debian 12 with systemd, made once and cached, then dressed as an EL9 node.

Two cache levels under LAB_CACHE (default /var/cache/k8s-bundler-lab, or $K8S_LAB_CACHE):
- `base-<hash of the package lists>`: mmdebstrap's bookworm minbase with every node package, installed by apt
  inside it in one run (the slow part, about a minute; made once per machine and package list);
- `root-<base hash>-<hash of the lab recipe>`: a copy of the base with the EL9 identity, EL9's original
  files and the stand-ins of tests/lab/standins.py (seconds; remade when the recipe changes).
Each is built in a temporary folder and renamed into place under a file lock: never half-made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from tests.lab import standins
from tests.support.rpm_repo import FakeRpm, build_rpms
from tests.support.sandbox import ORIGINAL_CHRONY, ORIGINAL_FSTAB, ORIGINAL_HOSTS, ROCKY_OS_RELEASE

LAB_CACHE = Path(os.environ.get("K8S_LAB_CACHE", "/var/cache/k8s-bundler-lab"))
DEBIAN_MIRROR = os.environ.get("K8S_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# What a booted node needs, then the node's own packages; mmdebstrap installs both in one apt run inside the root
# (its own dpkg and maintainer scripts).
BOOTSTRAP_PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "python3", "kmod", "procps", "netbase")
NODE_PACKAGES = (
    "firewalld", "chrony", "keepalived", "haproxy", "nftables", "iptables", "ebtables", "ipset", "ipvsadm",
    "ethtool", "conntrack", "socat", "rpm", "dnf", "curl", "openssl", "ca-certificates", "tar", "iputils-ping",
    "openssh-server",  # the Ansible tests reach the nodes over SSH (sshd as the node's ssh.service)
)  # fmt: skip
# Debian enables these at install; on a fresh EL9 node they come from the bundle, disabled until the installer
# enables them.
NOT_ENABLED_ON_EL9 = ("keepalived.service", "haproxy.service", "nftables.service")
# Packages a minimal EL9 install has, recorded in the node's RPM database as stand-ins owning no files.
EL9_PRESENT_RPMS = (
    FakeRpm("rocky-release", "9.3", provides=("system-release = 9.3", "system-release(releasever) = 9"),
            files={"/usr/share/k8s-lab/rocky-release": "stand-in"}),
)  # fmt: skip
BUILDER = "mmdebstrap, apt lists kept"  # part of the base's key: a base another builder made is remade
MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/merged-usr"
LAB_RPM_MACROS = "%_dbpath /var/lib/rpm\n"  # EL9's RPM database path (Debian's rpm defaults to ~/.rpmdb)


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def base_key() -> str:
    return _digest(SUITE, DEBIAN_MIRROR, BOOTSTRAP_PACKAGES, NODE_PACKAGES, BUILDER)


def base_folder() -> Path:
    """Where the cached base (mmdebstrap's root with the node packages) of this recipe is."""
    return LAB_CACHE / f"base-{base_key()}"


def recipe_key() -> str:
    recipe = (Path(__file__).read_text(), Path(standins.__file__).read_text())
    return _digest(base_key(), recipe)


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    LAB_CACHE.mkdir(parents=True, exist_ok=True)
    with open(LAB_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_checked(
    command: List[str], what: str, timeout: float, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    """Run `command`; when it fails, raise naming `what` with the end of its output."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{what}: {(result.stdout + result.stderr)[-3000:]}")
    return result


def nspawn_run(root: Path, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command in the (not booted) root; it shares the host's network, so apt can fetch."""
    command = ["systemd-nspawn", "-q", "-D", str(root), "--register=no", "--keep-unit", *argv]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", SYSTEMD_LOG_LEVEL="err")
    return run_checked(command, f"{' '.join(argv)} in {root}", timeout, env=env)


def build_base(target: Path) -> None:
    """mmdebstrap rather than debootstrap then apt: apt downloads in parallel and dpkg runs once, 55 s instead of
    93 s on a fresh two-core machine (the same packages: merged /usr by its hook, as debootstrap does). dpkg
    skips fsync while it builds (a half-made base is never renamed into place); the node's dpkg keeps it. apt's
    lists stay (real Debian 12 metadata: tests/lab/test_debian_metadata.py reads them)."""
    run_checked(
        ["mmdebstrap", "-q", "--variant=minbase", f"--hook-dir={MERGED_USR_HOOKS}",
         f"--include={','.join(BOOTSTRAP_PACKAGES + NODE_PACKAGES)}", "--dpkgopt=force-unsafe-io",
         "--skip=cleanup/apt/lists",
         '--customize-hook=rm "$1"/etc/dpkg/dpkg.cfg.d/99mmdebstrap', SUITE, str(target), DEBIAN_MIRROR],
        f"mmdebstrap {SUITE} {target}", 1200,
    )  # fmt: skip


def dress_as_el9(root: Path, work: Path) -> None:
    """The EL9 identity and original files, the lab's stand-ins, and the services EL9 would not enable."""
    etc = root / "etc"
    (etc / "os-release").unlink(missing_ok=True)
    (etc / "os-release").write_text(ROCKY_OS_RELEASE)
    (etc / "chrony.conf").write_text(ORIGINAL_CHRONY)
    (etc / "fstab").write_text(ORIGINAL_FSTAB)
    (etc / "hosts").write_text(ORIGINAL_HOSTS)
    (etc / "selinux").mkdir(exist_ok=True)
    (etc / "selinux/config").write_text("SELINUX=enforcing\nSELINUXTYPE=targeted\n")
    # EL9's /etc/protocols (the setup package, IANA names) calls protocol 4 "ipv4", firewalld's name for
    # IP-in-IP (Calico); Debian's netbase calls it "ipencap".
    protocols = (etc / "protocols").read_text()
    if not any(line.split()[:1] == ["ipv4"] for line in protocols.splitlines()):
        (etc / "protocols").write_text(protocols + "ipv4\t4\tIPv4\t\t# IPv4 encapsulation (EL9's name)\n")
    (etc / "machine-id").write_text("")  # each node gets its own
    (etc / "hostname").write_text("localhost\n")
    (etc / "rpm").mkdir(exist_ok=True)
    (etc / "rpm/macros.k8s-lab").write_text(LAB_RPM_MACROS)
    program = root / standins.STANDIN_PATH.lstrip("/")
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(standins.PROGRAM)
    program.chmod(0o755)
    modprobe = root / "usr/local/sbin/modprobe"
    modprobe.write_text(standins.MODPROBE)
    modprobe.chmod(0o755)
    dropin = etc / "systemd/system/chrony.service.d/k8s-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(standins.CHRONY_DROPIN)
    subprocess.run(["systemctl", f"--root={root}", "disable", "--quiet", *NOT_ENABLED_ON_EL9], check=True)
    subprocess.run(["systemctl", f"--root={root}", "mask", "--quiet", "getty@tty1.service"], check=True)
    rpms = build_rpms(EL9_PRESENT_RPMS, work / "el9-present")
    inside = root / "var/tmp/el9-present"
    inside.mkdir(parents=True, exist_ok=True)
    for path in rpms.values():
        shutil.copy2(path, inside / path.name)
    nspawn_run(
        root, "sh", "-c", "rpm -i --nodeps --nosignature /var/tmp/el9-present/*.rpm && rm -r /var/tmp/el9-present"
    )


def _build_into_place(final: Path, build: Callable[[Path], None]) -> Path:
    if (final / ".lab-ready").exists():
        return final
    partial = final.with_name(final.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        build(partial)
        (partial / ".lab-ready").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def lab_root(timings: Dict[str, float]) -> Path:
    """The dressed root for this recipe, built if needed; `timings` gets what building took, in seconds."""

    def dress(target: Path) -> None:
        dressed_work = LAB_CACHE / f"work-{os.getpid()}"
        try:
            dress_as_el9(target, dressed_work)
        finally:
            shutil.rmtree(dressed_work, ignore_errors=True)

    return dressed_root("root", dress, (), timings, "dressed root")


def built_base(timings: Dict[str, float]) -> Path:
    """The base of this recipe, built first if this machine has none: what reads the base goes through here (another
    pytest-xdist worker may be building it)."""
    with cache_lock():
        return _built_base(timings)


def _built_base(timings: Dict[str, float]) -> Path:
    base = base_folder()
    if not (base / ".lab-ready").exists():
        started = time.monotonic()
        _build_into_place(base, build_base)
        timings["base root build"] = time.monotonic() - started
    return base


def dressed_root(
    kind: str, dress: Callable[[Path], None], recipe: Sequence[Path], timings: Dict[str, float], label: str
) -> Path:
    """The base copied and dressed by `dress`, cached as `kind` for this recipe (root.py, the stand-ins and the
    `recipe` files that dress it); the base built first if needed, `timings[label]` what dressing took."""
    with cache_lock():
        base = _built_base(timings)
        key = _digest(recipe_key(), [path.read_text() for path in recipe])
        root = LAB_CACHE / f"{kind}-{base_key()}-{key}"
        if not (root / ".lab-ready").exists():
            started = time.monotonic()

            def dressed(target: Path) -> None:
                subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(target)], check=True)
                (target / ".lab-ready").unlink()
                dress(target)

            _build_into_place(root, dressed)
            timings[label] = time.monotonic() - started
            _prune(kind, keep=[base, root])
        return root


def _prune(kind: str, keep: List[Path], older_than: float = 24 * 3600) -> None:
    """Dressed roots of other recipes made more than a day ago (another checkout may be running on a newer
    one); the bases stay: they are the slow part."""
    for old in LAB_CACHE.glob(f"{kind}-*"):
        ready = old / ".lab-ready"
        if old in keep or not ready.exists() or time.time() - ready.stat().st_mtime < older_than:
            continue
        shutil.rmtree(old, ignore_errors=True)
