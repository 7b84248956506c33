"""Control planes end to end on simulated nodes (the real pyz under Python 3.9, a temporary root, the node's
address in its own network namespace). kubeadm and kubectl cannot run here: the tests stop at the exact
commands the installer would run, and check every file it writes for them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.cluster_files import SUBNET, write_cluster
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root
from tests.support.session_cache import shiv_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2"),
]


@pytest.fixture
def bundle(mirror, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return build_node_bundle(mirror, tmp_path / "build")


def control_plane(
    python39: str, bundle: Path, tmp_path: Path, name: str, ip: str, *flags: str, secrets: str = "cluster-secrets.yaml"
):
    root = tmp_path / name
    if not root.exists():
        make_el9_root(root)
        add_kubelet_unit(root)
    site = tmp_path / "site"
    # the stand-in bundle lacks kubeadm's images and packages; join-info changes nothing and takes neither flag
    installs = [] if "join-info" in flags else ["--yes", "--allow-incomplete"]
    with NetNamespace() as namespace:
        namespace.add_address(f"{ip}/24")
        command = namespace.prefix() + [
            python39, str(bundle / "k8s-install.pyz"), "--root", str(root), "--role", "control-plane", *flags,
            "--config", str(site / "cluster.yaml"), "--secrets", str(site / secrets), *installs,
        ]  # fmt: skip
        env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    return root, result


def test_first_control_plane_writes_vip_kubeadm_and_calico_then_changes_nothing(
    python39: str,
    bundle: Path,
    cluster_secrets,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    write_cluster(tmp_path / "site", cluster_secrets)
    root, first = control_plane(python39, bundle, tmp_path, "mn01", f"{SUBNET}.11", "--first")
    assert first.returncode == 0, first.stdout + first.stderr
    etc = root / "etc"
    keepalived = (etc / "keepalived/keepalived.conf").read_text()
    assert os.stat(etc / "keepalived/keepalived.conf").st_mode & 0o777 == 0o600
    assert "state MASTER" in keepalived and f"{SUBNET}.240" in keepalived and "interface eth-node" in keepalived
    assert cluster_secrets.keepalived_password in keepalived and "1111" not in keepalived
    assert os.stat(etc / "keepalived/check_apiserver.sh").st_mode & 0o777 == 0o755
    haproxy = (etc / "haproxy/haproxy.cfg").read_text()
    for ip in (".11", ".22", ".33"):
        assert f"{SUBNET}{ip}:6443" in haproxy
    assert (etc / "kubernetes/pki/ca.crt").read_text() == cluster_secrets.ca_cert_pem
    assert os.stat(etc / "kubernetes/pki/ca.key").st_mode & 0o777 == 0o600
    init = yaml.safe_load_all((etc / "k8s-install/kubeadm-init.yaml").read_text())
    kinds = {doc["kind"]: doc for doc in init}
    assert kinds["ClusterConfiguration"]["controlPlaneEndpoint"] == f"{SUBNET}.240:8443"
    assert kinds["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert os.stat(etc / "k8s-install/kubeadm-init.yaml").st_mode & 0o777 == 0o600
    assert os.stat(etc / "k8s-install/cluster-secrets.yaml").st_mode & 0o777 == 0o600
    calico = list(yaml.safe_load_all((etc / "k8s-install/calico.yaml").read_text()))
    node = next(d for d in calico if d and d["kind"] == "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "CALICO_IPV4POOL_CIDR", "value": "10.244.0.0/16"} in node["env"]
    chrony = (etc / "chrony.conf").read_text()
    assert f"allow {SUBNET}.0/24" in chrony and "local stratum 10" in chrony and "server " not in chrony
    log = (root / "var/log/k8s-install.log").read_text()
    assert "would run: kubeadm init --config /etc/k8s-install/kubeadm-init.yaml --upload-certs" in log
    for secret in (
        cluster_secrets.bootstrap_token,
        cluster_secrets.certificate_key,
        cluster_secrets.keepalived_password,
    ):
        assert secret not in log and secret not in first.stdout
    assert "would run: kubectl --kubeconfig=/etc/kubernetes/admin.conf apply -f /etc/k8s-install/calico.yaml" in log
    # each service restarted once, dependencies first, and all of them before kubeadm (the VIP stays up)
    restarts = [line.rsplit("systemctl restart ", 1)[1] for line in log.splitlines() if "systemctl restart " in line]
    assert {"chronyd", "containerd", "buildkitd", "haproxy", "keepalived"} <= set(restarts)
    assert len(restarts) == len(set(restarts)), restarts
    for before, after in (("containerd", "buildkitd"), ("haproxy", "keepalived")):
        assert restarts.index(before) < restarts.index(after), restarts
    assert "systemctl restart" not in log[log.index("would run: kubeadm init") :]

    _, again = control_plane(python39, bundle, tmp_path, "mn01", f"{SUBNET}.11", "--first")
    assert "done: 0 change(s) applied" in again.stdout, again.stdout + again.stderr


def test_other_control_plane_joins_as_backup(python39: str, bundle: Path, cluster_secrets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    root, result = control_plane(python39, bundle, tmp_path, "mn02", f"{SUBNET}.22")
    assert result.returncode == 0, result.stdout + result.stderr
    keepalived = (root / "etc/keepalived/keepalived.conf").read_text()
    assert "state BACKUP" in keepalived and "priority 140" in keepalived
    join = list(yaml.safe_load_all((root / "etc/k8s-install/kubeadm-join.yaml").read_text()))[0]
    assert join["controlPlane"]["certificateKey"] == cluster_secrets.certificate_key
    assert join["discovery"]["bootstrapToken"]["caCertHashes"] == [cluster_secrets.ca_cert_hash]
    assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == f"{SUBNET}.240:8443"
    assert "server 10.213.7.11 iburst" in (root / "etc/chrony.conf").read_text()
    log = (root / "var/log/k8s-install.log").read_text()
    assert "would run: kubeadm join --config /etc/k8s-install/kubeadm-join.yaml" in log
    assert "kubeadm init" not in log and not (root / "etc/kubernetes/pki/ca.key").exists()


@pytest.mark.parametrize("flags,message", [
    ((), "k8s-mn01 is the first control plane in cluster.yaml: run it with --first"),
])  # fmt: skip
def test_first_flag_must_match_the_config(
    python39: str, bundle: Path, cluster_secrets, tmp_path: Path, flags: tuple, message: str
) -> None:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    _, result = control_plane(python39, bundle, tmp_path, "mn01", f"{SUBNET}.11", *flags)
    assert result.returncode == 1
    assert result.stderr.strip() == f"k8s-install.pyz: error: {message}"


def test_first_on_another_node_is_refused(python39: str, bundle: Path, cluster_secrets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    _, result = control_plane(python39, bundle, tmp_path, "mn02", f"{SUBNET}.22", "--first")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "k8s-install.pyz: error: --first: the first control plane in cluster.yaml is k8s-mn01, not k8s-mn02"
    )


def test_join_info_renews_the_same_token_and_prints_the_join(
    python39: str,
    bundle: Path,
    cluster_secrets,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    write_cluster(tmp_path / "site", cluster_secrets)
    root, result = control_plane(python39, bundle, tmp_path, "mn01", f"{SUBNET}.11", "--first", "join-info")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"kubeadm join {SUBNET}.240:8443 --token {cluster_secrets.bootstrap_token}" in result.stdout
    assert f"--discovery-token-ca-cert-hash {cluster_secrets.ca_cert_hash}" in result.stdout
    assert f"--control-plane --certificate-key {cluster_secrets.certificate_key}" in result.stdout
    log = (root / "var/log/k8s-install.log").read_text()
    assert "would run: kubeadm token create *** --ttl 24h0m0s" in log  # the token never lands in the log
    assert cluster_secrets.bootstrap_token not in log
    assert (
        "would run: kubeadm init phase upload-certs --upload-certs --config /etc/k8s-install/kubeadm-upload-certs.yaml"
        in log
    )


def test_join_info_works_on_a_control_plane_that_joined(
    python39: str, bundle: Path, cluster_secrets, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A second control plane has no kubeadm-init.yaml (kubeadm init ran on the first): join-info renders the
    upload's config for itself instead of naming a file that is not there."""
    write_cluster(tmp_path / "site", cluster_secrets)
    root, installed = control_plane(python39, bundle, tmp_path, "mn02", f"{SUBNET}.22")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert not (root / "etc/k8s-install/kubeadm-init.yaml").exists()
    _, result = control_plane(python39, bundle, tmp_path, "mn02", f"{SUBNET}.22", "join-info")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"--control-plane --certificate-key {cluster_secrets.certificate_key}" in result.stdout
    log = (root / "var/log/k8s-install.log").read_text()
    wanted = [
        "would write: /etc/k8s-install/kubeadm-upload-certs.yaml (0600, removed after the command)",
        "would run: kubeadm token list --kubeconfig /etc/kubernetes/admin.conf",
        "would run: kubeadm token create *** --ttl 24h0m0s --kubeconfig /etc/kubernetes/admin.conf",
        "would run: kubeadm init phase upload-certs --upload-certs --config /etc/k8s-install/kubeadm-upload-certs.yaml",
    ]
    recorded = [line.split("): ", 1)[1] for line in log.splitlines() if "): would " in line]
    assert recorded[-4:] == wanted
    assert "kubeadm-init.yaml" not in log and not (root / "etc/k8s-install/kubeadm-upload-certs.yaml").exists()


def test_control_plane_refuses_the_worker_only_secrets(
    python39: str, bundle: Path, cluster_secrets, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write_cluster(tmp_path / "site", cluster_secrets)
    _, result = control_plane(python39, bundle, tmp_path, "mn02", f"{SUBNET}.22", secrets="cluster-secrets-worker.yaml")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "cluster-secrets-worker.yaml: a worker-only secrets file; control plane k8s-mn02 needs cluster-secrets.yaml"
    )
