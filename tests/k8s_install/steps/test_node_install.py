"""The worker role end to end on a simulated node: the real pyz under Python 3.9, a temporary root, a
network namespace, a real containerd started from what the installer wrote."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.support.cluster_files import write_cluster
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import (
    ORIGINAL_CHRONY,
    ORIGINAL_FSTAB,
    ORIGINAL_HOSTS,
    NetNamespace,
    add_kubelet_unit,
    make_el9_root,
)
from tests.support.session_cache import shiv_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, chown)"),
]

WORKER_IP = "10.213.7.100"


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    """The worker's network: its own namespace with the node's address, so it finds itself in cluster.yaml."""
    if not shutil.which("ip"):
        pytest.skip("iproute2 is not installed")
    with NetNamespace() as created:
        created.add_address(f"{WORKER_IP}/24")
        yield created


@pytest.fixture
def cluster_file(cluster_secrets, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return write_cluster(tmp_path / "site", cluster_secrets)


@pytest.fixture
def bundle(mirror, tmp_path: Path) -> Path:
    return build_node_bundle(mirror, tmp_path / "build")


@pytest.fixture
def node_root(tmp_path: Path, cluster_file: Path) -> Path:
    root = make_el9_root(tmp_path / "node")
    add_kubelet_unit(root)
    return root


def worker_command(
    python39: str, bundle: Path, root: Path, namespace: NetNamespace, tmp_path: Path, command: str = "install"
) -> List[str]:
    """The worker's command line with the options `command` takes (any other is refused)."""
    site = tmp_path / "site"
    node = ["--role", "worker", "--config", str(site / "cluster.yaml"), "--secrets", str(site / "cluster-secrets.yaml")]
    flags = {
        "install": [*node, "--allow-incomplete", "--yes"],  # the stand-in bundle lacks kubeadm's images, packages
        "plan": [*node, "--allow-incomplete"],
        "reset": ["--yes"],
        "status": [],
    }[command]
    return namespace.prefix() + [python39, str(bundle / "k8s-install.pyz"), "--root", str(root), *flags]


def install(python39: str, bundle: Path, root: Path, namespace: NetNamespace, tmp_path: Path, *extra: str):
    if not (tmp_path / "site" / "cluster.yaml").exists():
        raise AssertionError("use the cluster_file fixture")
    command = extra[0] if extra and not extra[0].startswith("-") else "install"
    command = worker_command(python39, bundle, root, namespace, tmp_path, command) + list(extra)
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_worker_role_converges_and_second_run_changes_nothing(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    first = install(python39, bundle, node_root, namespace, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "[runtime-binaries]" in first.stdout
    # what a node needs is in place
    assert (node_root / "usr/local/bin/containerd").read_bytes() == Path("/usr/bin/containerd").read_bytes()
    assert os.stat(node_root / "usr/local/sbin/runc").st_mode & 0o777 == 0o755
    assert (node_root / "opt/cni/bin/bridge").read_text().endswith("v1.4.0'\n")
    assert (node_root / "etc/hostname").read_text() == "k8s-wn01\n"
    hosts = (node_root / "etc/hosts").read_text()
    assert hosts.startswith(ORIGINAL_HOSTS) and "10.213.7.100 k8s-wn01" in hosts
    assert "#k8s-install# /dev/mapper/rl-swap" in (node_root / "etc/fstab").read_text()
    assert "SELINUX=permissive" in (node_root / "etc/selinux/config").read_text()
    chrony = (node_root / "etc/chrony.conf").read_text()
    assert "server 10.213.7.11 iburst" in chrony and "allow" not in chrony
    join = node_root / "etc/k8s-install/kubeadm-join.yaml"
    assert os.stat(join).st_mode & 0o777 == 0o600 and "caCertHashes" in join.read_text()
    assert not (node_root / "etc/k8s-install/cluster-secrets.yaml").exists()  # workers never keep the CA key
    assert (
        "would run: kubeadm join --config /etc/k8s-install/kubeadm-join.yaml"
        in (node_root / "var/log/k8s-install.log").read_text()
    )
    config = (node_root / "etc/containerd/config.toml").read_text()
    assert "SystemdCgroup = true" in config and 'sandbox_image = "registry.k8s.io/pause:3.9"' in config
    assert (node_root / "etc/systemd/system/multi-user.target.wants/containerd.service").is_symlink()
    assert "Managed by k8s-install" in (node_root / "etc/sysctl.d/90-k8s.conf").read_text()
    log = (node_root / "var/log/k8s-install.log").read_text()
    assert "skipped (offline root" in log and "run: systemctl --root=" in log
    # the original, hand-edited chrony.conf was kept once
    assert (node_root / "var/lib/k8s-install/backups/etc/chrony.conf.orig").read_text() == ORIGINAL_CHRONY
    assert os.stat(node_root / "var/lib/k8s-install/state.json").st_mode & 0o777 == 0o600

    second = install(python39, bundle, node_root, namespace, tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "done: 0 change(s) applied" in second.stdout


def test_install_then_plan_agree_on_a_unit_the_package_does_not_bring(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    """The demo's setup: the bundle's chrony (a stand-in RPM) brings no chronyd unit into the --root image. The
    plan says enabling it depends on the packages, the install reports it skipped, and the installed node
    plans nothing (no change pending forever, so Ansible's check mode says "ok")."""
    before = install(python39, bundle, node_root, namespace, tmp_path, "plan")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "would enable chronyd (once an earlier step has installed it; if none does, skipped)" in before.stdout
    first = install(python39, bundle, node_root, namespace, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    skipped = "--root: only logged, not run: enable chronyd: not done, this root has no unit file for it"
    assert skipped in first.stdout
    after = install(python39, bundle, node_root, namespace, tmp_path, "plan")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "plan: 0 change(s) pending" in after.stdout, after.stdout
    assert skipped in after.stdout and "would enable" not in after.stdout


def test_plan_changes_nothing(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    def snapshot() -> dict:
        return {
            str(p.relative_to(node_root)): p.read_bytes()
            for p in node_root.rglob("*")
            if p.is_file() and "var/log" not in str(p)
        }

    (node_root / "etc/sysctl.conf").write_text("net.ipv4.tcp_keepalive_time = 7200\n")  # EL9: read after ours
    before = snapshot()
    result = install(python39, bundle, node_root, namespace, tmp_path, "plan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/etc/sysctl.conf sets net.ipv4.tcp_keepalive_time = 7200, and is read after" in result.stdout
    assert "would create /usr/local/bin/containerd" in result.stdout
    assert "would update /etc/chrony.conf" in result.stdout
    assert "change(s) pending; nothing was changed" in result.stdout
    assert snapshot() == before  # only the log was written


def test_reset_restores_the_hand_edited_file_and_removes_the_rest(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    assert install(python39, bundle, node_root, namespace, tmp_path).returncode == 0
    result = install(python39, bundle, node_root, namespace, tmp_path, "reset")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node_root / "etc/chrony.conf").read_text() == ORIGINAL_CHRONY
    assert (node_root / "etc/hosts").read_text() == ORIGINAL_HOSTS
    assert not (node_root / "usr/local/bin/containerd").exists()
    assert not (node_root / "etc/containerd/config.toml").exists()
    assert not (node_root / "etc/systemd/system/multi-user.target.wants/containerd.service").exists()
    assert not (node_root / "var/lib/k8s-install/state.json").exists()


def test_reset_keeps_lines_the_operator_added_after_the_install(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    """Regression: reset copied the whole originals back, and an fstab line and a hosts entry were lost."""
    assert install(python39, bundle, node_root, namespace, tmp_path).returncode == 0
    nfs, nas = "nas:/data /data nfs defaults 0 0\n", "10.1.1.1 nas\n"
    with open(node_root / "etc/fstab", "a") as fstab:
        fstab.write(nfs)
    with open(node_root / "etc/hosts", "a") as hosts:
        hosts.write(nas)  # after the managed block
    again = install(python39, bundle, node_root, namespace, tmp_path)
    assert "done: 0 change(s) applied" in again.stdout, again.stdout  # the block is not moved below the line
    result = install(python39, bundle, node_root, namespace, tmp_path, "reset")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node_root / "etc/fstab").read_text() == ORIGINAL_FSTAB + nfs
    assert (node_root / "etc/hosts").read_text() == ORIGINAL_HOSTS + nas
    assert (node_root / "etc/chrony.conf").read_text() == ORIGINAL_CHRONY  # untouched since: the original
    assert "took the installer's lines out of /etc/hosts and kept your later edits" in result.stdout
    assert "restored /etc/chrony.conf" in result.stdout


def test_killed_run_is_completed_by_a_rerun(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    command = worker_command(python39, bundle, node_root, namespace, tmp_path)
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert process.stdout is not None
    for line in process.stdout:  # kill it in the middle: while the runtime binaries are being written
        if b"create /usr/local/bin/ctr" in line:
            process.kill()
            break
    process.wait()
    assert process.returncode != 0
    import json

    state = json.loads((node_root / "var/lib/k8s-install/state.json").read_text())
    assert "containerd" in state["pending_restarts"]  # remembered, so the re-run still restarts it
    rerun = install(python39, bundle, node_root, namespace, tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    log = (node_root / "var/log/k8s-install.log").read_text()
    assert "systemctl restart containerd" in log.rsplit("=== run", 1)[1]
    assert json.loads((node_root / "var/lib/k8s-install/state.json").read_text())["pending_restarts"] == []
    final = install(python39, bundle, node_root, namespace, tmp_path)
    assert "done: 0 change(s) applied" in final.stdout


def test_generated_files_pass_the_real_tools(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    assert install(python39, bundle, node_root, namespace, tmp_path).returncode == 0
    units = [node_root / "usr/local/lib/systemd/system" / name for name in ("containerd.service", "buildkitd.service")]
    if shutil.which("systemd-analyze"):
        check = subprocess.run(
            ["systemd-analyze", "verify", f"--root={node_root}", "--man=no", *[str(u) for u in units]],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
    if shutil.which("chronyd"):
        chrony = subprocess.run(
            ["chronyd", "-p", "-f", str(node_root / "etc/chrony.conf")], capture_output=True, text=True
        )
        assert chrony.returncode == 0, chrony.stderr
        assert "server 10.213.7.11 iburst" in chrony.stdout
    # the net.* settings apply in the test's own network namespace
    net_only = tmp_path / "net.conf"
    lines = (node_root / "etc/sysctl.d/90-k8s.conf").read_text().splitlines()
    net_only.write_text("\n".join(line for line in lines if line.startswith(("net.ipv4.", "net.core.somaxconn"))))
    applied = subprocess.run(namespace.prefix() + ["sysctl", "-e", "-p", str(net_only)], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    read = subprocess.run(
        namespace.prefix()
        + ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_keepalive_time"],
        capture_output=True,
        text=True,
    )
    assert read.stdout.split() == ["1", "45001", "65000", "600"]


def start_containerd_from_unit(node_root: Path, tmp_path: Path) -> subprocess.Popen:
    """Start containerd as the installed unit says, with root, state and socket moved under tmp_path."""
    import tomllib

    unit = (node_root / "usr/local/lib/systemd/system/containerd.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    binary, _flag, config_path = exec_start.split()
    config = tomllib.loads((node_root / config_path.lstrip("/")).read_text())
    assert config["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"]
    text = (node_root / config_path.lstrip("/")).read_text()
    sandbox = tmp_path / "ctrd"
    text = text.replace(config["grpc"]["address"], str(sandbox / "containerd.sock"))
    text = text.replace(config["root"], str(sandbox / "root")).replace(config["state"], str(sandbox / "state"))
    redirected = tmp_path / "containerd-test.toml"
    redirected.write_text(text)
    with open(tmp_path / "containerd.log", "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [str(node_root / binary.lstrip("/")), "--config", str(redirected)], stdout=log, stderr=subprocess.STDOUT
        )
    for _ in range(100):
        if (sandbox / "containerd.sock").exists():
            break
        time.sleep(0.1)
    return process


def test_installed_containerd_starts_from_its_unit_and_config(
    python39: str, bundle: Path, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    assert install(python39, bundle, node_root, namespace, tmp_path).returncode == 0
    process = start_containerd_from_unit(node_root, tmp_path)
    try:
        socket = tmp_path / "ctrd" / "containerd.sock"
        version = subprocess.run(
            [str(node_root / "usr/local/bin/ctr"), "--address", str(socket), "version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert version.returncode == 0, version.stderr + (tmp_path / "containerd.log").read_text()[-2000:]
        assert "Server:" in version.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


def preflight_lines(result: subprocess.CompletedProcess) -> List[str]:
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("preflight ")]


def test_images_are_loaded_into_the_containerd_the_installer_set_up(
    mirror, registry, python39: str, node_root: Path, namespace: NetNamespace, tmp_path: Path
) -> None:
    """Install (a --root run cannot import), boot containerd from the installed unit, then a full run with
    --containerd-address imports every image; the run after that changes nothing."""
    images = [f"{registry.host}/test/busybox:1.0", "registry.k8s.io/pause:3.9"]
    bundle = build_node_bundle(
        mirror,
        tmp_path / "build",
        ("--insecure-registry", registry.host, "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored"),
        {"images": images},
    )
    first = install(python39, bundle, node_root, namespace, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "skipped (offline root" in (node_root / "var/log/k8s-install.log").read_text()
    process = start_containerd_from_unit(node_root, tmp_path)
    try:
        socket = str(tmp_path / "ctrd" / "containerd.sock")
        loaded = install(python39, bundle, node_root, namespace, tmp_path, "--containerd-address", socket)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert "import 2 image(s) into containerd k8s.io" in loaded.stdout
        listed = subprocess.run(
            [str(node_root / "usr/local/bin/ctr"), "--address", socket, "-n", "k8s.io", "images", "ls", "-q"],
            capture_output=True,
            text=True,
        )
        assert set(images) <= set(listed.stdout.split())
        again = install(python39, bundle, node_root, namespace, tmp_path, "--containerd-address", socket)
        assert "done: 0 change(s) applied" in again.stdout, again.stdout + again.stderr
        status = install(python39, bundle, node_root, namespace, tmp_path, "status", "--containerd-address", socket)
        assert status.returncode == 0, status.stderr
        assert "images: 2 of 2 bundled images present in k8s.io" in status.stdout
        assert "containerd  enabled: enabled" in status.stdout
        assert "installer: last run completed: yes" in status.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
