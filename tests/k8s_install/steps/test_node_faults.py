"""Faults on a node (issue 24), each injected against real parts with its end state asserted: two installer
runs at once, a clock far from the cluster's, a full disk. Each case prints one `FAULT ...` line
(tests/support/faults.py); docs/reliability.md lists the matrix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

from tests.support.cluster_files import write_cluster
from tests.support.faults import half_applied_files, report_fault
from tests.support.node_bundle import build_node_bundle
from tests.support.prerequisites import require
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root
from tests.support.session_cache import shiv_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, mounts)"),
]

WORKER_IP = "10.213.7.100"
OPERATOR_LINE = "10.1.1.1 nas\n"  # an edit the operator made before the fault: it must survive


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.support.http_server import MirrorServer

    server = MirrorServer().start()
    try:
        yield build_node_bundle(server, tmp_path_factory.mktemp("faults") / "build")
    finally:
        server.stop()


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    with NetNamespace() as created:
        created.add_address(f"{WORKER_IP}/24")
        yield created


@pytest.fixture
def node_root(tmp_path: Path, cluster_secrets) -> Path:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    root = make_el9_root(tmp_path / "node")
    add_kubelet_unit(root)
    with open(root / "etc/hosts", "a") as hosts:
        hosts.write(OPERATOR_LINE)
    return root


def worker_command(
    python39: str, bundle: Path, root: Path, namespace: NetNamespace, tmp_path: Path, wrapper: Sequence[str] = ()
) -> List[str]:
    """The worker's install; `wrapper` runs the installer through another command (faketime)."""
    site = tmp_path / "site"
    return namespace.prefix() + [*wrapper,
        python39, str(bundle / "k8s-install.pyz"), "--root", str(root), "--role", "worker",
        "--config", str(site / "cluster.yaml"), "--secrets", str(site / "cluster-secrets.yaml"),
        "--allow-incomplete", "--yes",
    ]  # fmt: skip


def environment(tmp_path: Path) -> dict:
    return dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"), PYTHONUNBUFFERED="1")


def run(command: List[str], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command + list(extra), capture_output=True, text=True, env=environment(tmp_path), timeout=300)


def edits_lost(root: Path) -> int:
    return 0 if OPERATOR_LINE in (root / "etc/hosts").read_text() else 1


def wait_for_line(path: Path, marker: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if marker in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {marker!r}: {path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"no {marker!r} within {seconds} s: {path.read_text()}")


# -- two runs at once ------------------------------------------------------------------------------------------


def test_a_second_run_refuses_while_one_holds_the_node_and_waits_with_wait(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path, record_property
) -> None:
    """Run A is frozen (SIGSTOP) half-way through writing the runtime binaries, holding the lock. Run B refuses
    at once naming A's PID; run C with --wait waits; A resumes and finishes, then C finds nothing to do."""
    command = worker_command(python39, bundle, node_root, namespace, tmp_path)
    output_a = tmp_path / "a.out"
    with open(output_a, "w") as stream:
        first = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=environment(tmp_path))
    waiting = None
    try:
        wait_for_line(output_a, "create /usr/local/bin/ctr", first)
        first.send_signal(signal.SIGSTOP)
        second = run(command, tmp_path)
        assert second.returncode == 1, second.stdout + second.stderr
        refusal = second.stderr.strip().splitlines()
        assert len(refusal) == 1, second.stderr
        assert f"another k8s-install run is changing this node (PID {first.pid}, `install`, since" in refusal[0]
        assert "add --wait to wait for it; nothing was changed" in refusal[0]
        assert "[preflight]" not in second.stdout  # refused before anything was read or planned

        output_c = tmp_path / "c.out"
        with open(output_c, "w") as stream:
            waiting = subprocess.Popen(
                command + ["--wait"], stdout=stream, stderr=subprocess.STDOUT, env=environment(tmp_path)
            )
        wait_for_line(output_c, f"waiting for the other k8s-install run (PID {first.pid}", waiting)
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, output_a.read_text()
        assert waiting.wait(timeout=300) == 0, output_c.read_text()
    finally:
        for process in (first, waiting):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    assert "done: 0 change(s) applied" in output_c.read_text(), output_c.read_text()
    state = json.loads((node_root / "var/lib/k8s-install/state.json").read_text())
    assert state["completed"] is True and state["pending_restarts"] == []
    torn = half_applied_files(node_root)
    lost = edits_lost(node_root)
    report_fault(record_property, "two installer runs at once", True, lost, len(torn))
    assert torn == [] and lost == 0


def snapshot(root: Path) -> Dict[str, bytes]:
    """Every file of the node but the installer's log and its run lock (both written by any run)."""
    skipped = ("var/log/k8s-install.log", "var/lib/k8s-install/run.lock")
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and str(path.relative_to(root)) not in skipped
    }


# -- a clock far from the cluster's ----------------------------------------------------------------------------


def test_a_clock_far_behind_stops_the_install_in_preflight_and_a_set_clock_converges(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path, record_property
) -> None:
    """The installer runs under libfaketime 400 days in the past (only that process tree sees it): preflight
    names the clock against the cluster CA's start, before any change; with the clock right, the run converges."""
    require("faketime")
    before = snapshot(node_root)
    shifted = run(
        worker_command(python39, bundle, node_root, namespace, tmp_path, ("faketime", "-f", "-400d")), tmp_path
    )
    assert shifted.returncode == 1, shifted.stdout + shifted.stderr
    assert shifted.stderr.strip().splitlines() == [
        "k8s-install.pyz: error: preflight failed (clock): fix the above, or pass --ignore-preflight NAME to "
        "override one"
    ]
    clock_line = next(line.strip() for line in shifted.stdout.splitlines() if "preflight clock:" in line)
    assert "is before the start of the cluster CA certificate (cluster secrets)" in clock_line
    assert (
        "so certificates would not be valid yet: the clock is at least 399 days behind; set it (date -u -s"
        in clock_line
    )
    assert snapshot(node_root) == before  # nothing changed
    fixed = run(worker_command(python39, bundle, node_root, namespace, tmp_path), tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    torn, lost = half_applied_files(node_root), edits_lost(node_root)
    report_fault(record_property, "clock 400 days behind (faketime), then set", True, lost, len(torn))
    assert torn == [] and lost == 0


@pytest.fixture
def api_standin(tmp_path: Path, cluster_secrets):  # type: ignore[no-untyped-def]
    """The HTTPS API stand-in on loopback, its clock 3 hours ahead (libfaketime), certificate from the cluster CA."""
    require("faketime", "openssl")
    import socket
    import sys

    from k8s_install.cluster.api_probe import probe_api
    from tests.conftest import REPO
    from tests.support.cluster import issue_server_certificate, load, seed_data
    from tests.support.netns import wait_for

    cert, key = issue_server_certificate(tmp_path, cluster_secrets, load(seed_data()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["faketime", "-f", "+3h", sys.executable, "-m", "tests.support.api_standin", "--cert", str(cert),
            "--key", str(key), "--port", str(port), "--bind", "127.0.0.1", "--name", "k8s-mn01"]  # fmt: skip
    # a session of its own: faketime runs the stand-in as its child, and both must stop with the test
    process = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: probe_api("127.0.0.1", port, cluster_secrets.ca_cert_pem).ok, 30, what="the API stand-in")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def test_a_joining_node_compares_its_clock_with_the_api_through_the_vip(
    api_standin: int,
    cluster_secrets,
    tmp_path: Path,
    record_property,  # type: ignore[no-untyped-def]
) -> None:
    """A live joining node reads the first control plane's time from the API's Date header (verified against
    the cluster CA): 3 hours apart is refused with the API's time to set."""
    import dataclasses
    import ipaddress

    from k8s_install.bundle_format.bundle import Bundle
    from k8s_install.bundle_format.model import BundleManifest
    from k8s_install.engine import Node
    from k8s_install.node.host import Host
    from k8s_install.node.state import State
    from k8s_install.settings import NodeSettings
    from k8s_install.steps.preflight import check_clock
    from tests.support.cluster import load, seed_data

    config = dataclasses.replace(load(seed_data()), vip=ipaddress.IPv4Address("127.0.0.1"), api_port=api_standin)
    settings = NodeSettings("worker", False, "k8s-wn01", WORKER_IP, cluster=config, secrets=cluster_secrets)
    (tmp_path / "bundle").mkdir()
    host = Host(Path("/"))  # live: only a live node asks the API (nothing is written: the check only reads)
    node = Node(host, State(host), Bundle(tmp_path / "bundle", BundleManifest("", "rocky9", "amd64")), settings)
    problem = check_clock(node) or ""
    assert f"is 3 h 0 min behind the cluster API at 127.0.0.1:{api_standin}" in problem, problem
    assert "more than the 5 min the cluster tolerates: set it (date -u -s '" in problem
    report_fault(record_property, "clock 3 h behind the API at the VIP (faketime)", True, 0, 0)


def test_the_api_s_time_is_read_even_when_this_clock_makes_every_certificate_look_invalid(
    cluster_secrets,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Under a clock 400 days back the API's certificate is "not yet valid"; the probe still checks it chains
    to the cluster CA, and reads the Date header."""
    require("faketime", "openssl")
    import datetime
    import sys

    from tests.conftest import REPO
    from tests.support.cluster import issue_server_certificate, load, seed_data
    from tests.support.netns import wait_for

    cert, key = issue_server_certificate(tmp_path, cluster_secrets, load(seed_data()))
    port = 20000 + os.getpid() % 20000
    argv = [sys.executable, "-m", "tests.support.api_standin", "--cert", str(cert), "--key", str(key),
            "--port", str(port), "--bind", "127.0.0.1", "--name", "k8s-mn01"]  # fmt: skip
    server = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (tmp_path / "ca.pem").write_text(cluster_secrets.ca_cert_pem)
    code = (
        "import sys; from pathlib import Path; from k8s_install.cluster.api_probe import api_time, probe_api; "
        f"ca = Path({str(tmp_path / 'ca.pem')!r}).read_text(); "
        f"print(probe_api('127.0.0.1', {port}, ca).detail); print(api_time('127.0.0.1', {port}, ca))"
    )
    try:
        from k8s_install.cluster.api_probe import probe_api

        wait_for(lambda: probe_api("127.0.0.1", port, cluster_secrets.ca_cert_pem).ok, 30, what="the API stand-in")
        probed = subprocess.run(
            ["faketime", "-f", "-400d", sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert probed.returncode == 0, probed.stderr
    checked, answered = probed.stdout.splitlines()
    assert "certificate is not yet valid" in checked  # the ordinary probe: TLS refuses under this clock
    their = datetime.datetime.fromisoformat(answered)
    assert abs(their - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=5)


# -- a full disk -----------------------------------------------------------------------------------------------


class Tmpfs:
    """Small tmpfs filesystems the test mounts under its temp folder, unmounted at the end."""

    def __init__(self) -> None:
        self.mounted: List[Path] = []

    def mount(self, path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
        self.mounted.append(path)
        return path

    def fill(self, path: Path, leave: int) -> Path:
        """Take all the space of path's filesystem but `leave` bytes, in one file (the operator's to delete)."""
        filler = path / "filler.bin"
        free = shutil.disk_usage(str(path)).free
        with open(filler, "wb") as stream:
            stream.write(b"\0" * max(free - leave, 0))
        return filler

    def unmount_all(self) -> None:
        for path in reversed(self.mounted):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def tmpfs() -> Iterator[Tmpfs]:
    require("mount", "umount")
    mounts = Tmpfs()
    try:
        yield mounts
    finally:
        mounts.unmount_all()


CONTAINERD_CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
"""


@pytest.fixture
def image_bundle(mirror, registry, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    image = f"{registry.host}/test/busybox:1.0"
    return build_node_bundle(mirror, tmp_path / "build", ("--insecure-registry", registry.host), {"images": [image]})


def start_containerd(root: Path, work: Path) -> subprocess.Popen:
    """Debian's real containerd with its root on `root` (the node's /var/lib/containerd)."""
    require("containerd", "ctr")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.toml"
    config.write_text(CONTAINERD_CONFIG.format(root=root, state=work / "state", socket=work / "containerd.sock"))
    with open(work / "containerd.log", "wb") as log:
        process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while subprocess.run(
        ["ctr", "--address", str(work / "containerd.sock"), "version"], capture_output=True
    ).returncode:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"containerd did not start: {(work / 'containerd.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def containerd_images(socket: Path) -> List[str]:
    """`ctr images check` of k8s.io: one line per image with its status (complete, unpacked or not)."""
    listed = subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", "images", "check"], capture_output=True, text=True
    )
    return listed.stdout.splitlines()[1:]


def test_a_full_containerd_filesystem_is_refused_in_preflight_stops_the_import_and_converges_once_freed(
    python39: str,
    image_bundle: Path,
    node_root: Path,
    namespace: NetNamespace,
    tmp_path: Path,
    tmpfs: Tmpfs,
    record_property,  # type: ignore[no-untyped-def]
) -> None:
    """containerd's root on a 64 MiB tmpfs, filled to less than the image needs: preflight names
    /var/lib/containerd with the space needed and available; with the check ignored the import stops with one
    line and containerd holds no half-imported image; once the filler is deleted a re-run imports, and the
    next one changes nothing."""
    command = worker_command(python39, image_bundle, node_root, namespace, tmp_path)
    installed = run(command, tmp_path)  # a --root run: everything but the images
    assert installed.returncode == 0, installed.stdout + installed.stderr
    containerd_root = tmpfs.mount(node_root / "var/lib/containerd", "64M")
    daemon = start_containerd(containerd_root, tmp_path / "ctrd")
    socket = tmp_path / "ctrd" / "containerd.sock"
    try:
        blobs = sum(path.stat().st_size for path in (image_bundle / "images/blobs/sha256").iterdir())
        filler = tmpfs.fill(containerd_root, leave=blobs // 3)
        with_address = command + ["--containerd-address", str(socket)]

        refused = run(with_address, tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        disk_line = next(line.strip() for line in refused.stdout.splitlines() if "preflight disk:" in line)
        assert "preflight disk: /var/lib/containerd: needs " in disk_line and "(the images " in disk_line
        assert "available: free space there or grow the filesystem, then run again" in disk_line
        assert containerd_images(socket) == []

        stopped = run(with_address, tmp_path, "--ignore-preflight", "disk")
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        lines = stopped.stderr.strip().splitlines()
        assert len(lines) == 1 and "/var/lib/containerd: no space left on its filesystem while importing" in lines[0]
        assert "free space there, then run again" in lines[0], lines
        print(disk_line, lines[0], sep="\n")  # the two lines the operator sees
        half_imported = [line for line in containerd_images(socket) if "complete" not in line or "true" not in line]

        filler.unlink()  # the operator frees space
        rerun = run(with_address, tmp_path)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "import 1 image(s) into containerd k8s.io" in rerun.stdout
        final = run(with_address, tmp_path)
        assert "done: 0 change(s) applied" in final.stdout, final.stdout + final.stderr
        present = containerd_images(socket)
        assert len(present) == 1 and "complete" in present[0] and "true" in present[0], present
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    torn = half_applied_files(node_root) + half_imported
    lost = edits_lost(node_root)
    report_fault(record_property, "full disk: containerd's root during image import", True, lost, len(torn))
    assert torn == [] and lost == 0


def test_a_full_etc_stops_a_file_write_with_one_line_and_nothing_half_written(
    python39: str,
    bundle: Path,
    node_root: Path,
    namespace: NetNamespace,
    tmp_path: Path,
    tmpfs: Tmpfs,
    record_property,  # type: ignore[no-untyped-def]
) -> None:
    """/etc on a 32 MiB tmpfs filled to a few pages: preflight names /etc; with the check ignored the run stops
    at the first write that does not fit, with one line naming that file and the space; no file is torn, no
    temporary is left, the operator's edit is there; once the filler is deleted a re-run converges."""
    original = tmp_path / "etc-copy"
    shutil.copytree(node_root / "etc", original, symlinks=True)
    etc = tmpfs.mount(node_root / "etc", "32M")
    shutil.copytree(original, etc, symlinks=True, dirs_exist_ok=True)
    filler = tmpfs.fill(etc, leave=3 * 4096)
    command = worker_command(python39, bundle, node_root, namespace, tmp_path)

    refused = run(command, tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    disk_line = next(line.strip() for line in refused.stdout.splitlines() if "preflight disk:" in line)
    assert disk_line.startswith("preflight disk: /etc: needs 16.0 MiB free (the configuration 16.0 MiB), "), disk_line

    stopped = run(command, tmp_path, "--ignore-preflight", "disk")
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    print(disk_line, *lines, sep="\n")  # what the operator sees
    assert len(lines) == 1 and f"{etc}/" in lines[0], lines
    assert "no space left on its filesystem (needs " in lines[0] and "free space there, then run again" in lines[0]
    torn = half_applied_files(node_root)
    lost = edits_lost(node_root)
    json.loads((node_root / "var/lib/k8s-install/state.json").read_text())  # the state is readable

    filler.unlink()
    rerun = run(command, tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = run(command, tmp_path)
    assert "done: 0 change(s) applied" in final.stdout, final.stdout + final.stderr
    torn += half_applied_files(node_root)
    lost += edits_lost(node_root)
    report_fault(record_property, "full disk: /etc during file writes", True, lost, len(torn))
    assert torn == [] and lost == 0


@pytest.fixture
def rpm_bundle(release, rpm_graph, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    require("dnf", "rpm", "unshare")
    from tests.support.rpm_node import build_and_unpack
    from tests.support.rpm_release import add_rpm_section

    add_rpm_section(release, rpm_graph, name="install")
    return build_and_unpack(release, tmp_path / "rpm-build")


def test_a_full_root_stops_the_package_install_with_one_line_and_a_rerun_converges(
    rpm_bundle: Path,
    rpm_graph,
    tmp_path: Path,
    tmpfs: Tmpfs,
    record_property,  # type: ignore[no-untyped-def]
) -> None:
    """The node's root (dnf --installroot) on a 64 MiB tmpfs filled to a few pages: the real dnf stops, the
    error is one line naming the filesystem and the space dnf asked for, no package is half-installed; once
    the filler is deleted the same install converges."""
    from k8s_install.bundle_format.bundle import load_bundle
    from k8s_install.errors import InstallError
    from k8s_install.packages.dnf import install_packages, plan_packages
    from tests.support.rpm_node import OfflineRunner, installed, minimal_node

    disk = tmpfs.mount(tmp_path / "disk", "64M")
    root = minimal_node(disk / "root", rpm_graph)
    before = installed(root)
    filler = tmpfs.fill(disk, leave=2 * 4096)
    bundle = load_bundle(rpm_bundle)
    with pytest.raises(InstallError) as raised:
        install_packages(bundle, root, gpgcheck=False, releasever="9", run=OfflineRunner())
    message = str(raised.value)
    print(message)
    assert "\n" not in message and "space" in message, message
    half_installed = sorted(installed(root) - before)  # rpm's transaction: all of it or none
    filler.unlink()
    changes = install_packages(bundle, root, gpgcheck=False, releasever="9", run=OfflineRunner())
    assert changes and plan_packages(bundle, root) == []
    report_fault(record_property, "full disk: the node's root during the package install", True, 0, len(half_installed))
    assert half_installed == []
