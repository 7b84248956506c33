"""Certificate expiry read in pure Python (compared with openssl), `certs` and `certs renew` under --root:
kubeadm is a stand-in here, so renew is checked up to the exact commands and their order."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bundler.zipapp import build_installer
from k8s_install.cert_expiry import expiry_warnings, parse_certificate, pem_certificates, read_kubeconfig, read_pem
from k8s_install.commands.status import certificate_lines, certificate_warnings
from k8s_install.node.host import Host
from tests.support.pki import make_certificate, make_control_plane_pki, openssl_enddate

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_installer(tmp_path_factory.mktemp("pyz") / "k8s-install.pyz", 1700000000)


def run_pyz(python39: str, pyz: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHIV_ROOT=str(root.parent / "shiv"))
    return subprocess.run(
        [python39, str(pyz), *args, "--root", str(root)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    "days, key", [(1, "rsa:2048"), (365, "rsa:2048"), (3650, "ec:/dev/null"), (10000, "rsa:2048")],
    ids=["1-day", "1-year", "ec-10-years", "generalized-time"],
)  # fmt: skip
def test_not_after_matches_openssl(days: int, key: str, tmp_path: Path) -> None:
    if key.startswith("ec"):
        params = tmp_path / "ec.pem"
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-out", str(params)], check=True)
        key = f"ec:{params}"
    path = make_certificate(tmp_path / "c.crt", days, "apiserver", key)
    not_after, cn = parse_certificate(pem_certificates(path.read_bytes())[0])
    assert f"{not_after:%b %e %H:%M:%S %Y} GMT".replace("  ", " ") == openssl_enddate(path).replace("  ", " ")
    assert cn == "apiserver"


def test_a_damaged_file_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "bad.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
    info = read_pem("apiserver", path, "/etc/kubernetes/pki/apiserver.crt")
    assert info is not None and info.not_after is None and info.problem.startswith("unreadable")
    conf = tmp_path / "admin.conf"
    conf.write_text("users: [{name: a, user: {}}]\n")
    info = read_kubeconfig("admin.conf", conf, "/etc/kubernetes/admin.conf")
    assert info is not None and info.problem == "no embedded client certificate"


def test_warnings_30_days_ahead_in_status_and_preflight(tmp_path: Path) -> None:
    root = tmp_path / "node"
    make_control_plane_pki(root, {"apiserver": 10, "admin.conf": 29})
    host = Host(root)
    warnings = expiry_warnings(host)
    assert len(warnings) == 2
    assert warnings[0].startswith("certificate apiserver (/etc/kubernetes/pki/apiserver.crt) expires ")
    assert "run `k8s-install.pyz certs renew` on this control plane" in warnings[0]
    assert warnings[1].startswith("certificate admin.conf (/etc/kubernetes/admin.conf) expires ")
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400)
    expired = expiry_warnings(host, now=later)
    assert any(w.startswith("certificate apiserver (/etc/kubernetes/pki/apiserver.crt) expired ") for w in expired)
    assert any("`kubeadm certs renew` does not renew CAs" in w for w in expiry_warnings(host, now=later.replace(
        year=later.year + 10)))  # fmt: skip
    assert certificate_lines(certificate_warnings(host)) == [f"warning: {w}" for w in warnings]
    empty = certificate_warnings(Host(tmp_path / "empty"))
    assert certificate_lines(empty)[0].startswith("certificates: none expires within 30 days")


def test_certs_lists_every_certificate(python39: str, pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / "node"
    make_control_plane_pki(root, {"front-proxy-client": 5})
    result = run_pyz(python39, pyz, root, "certs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    names = [line.split()[0] for line in lines if line.startswith("  ") and line.split()[0] != "CERTIFICATE"]
    assert names[:10] == [
        "ca", "apiserver", "apiserver-kubelet-client", "apiserver-etcd-client", "front-proxy-ca",
        "front-proxy-client", "etcd-ca", "etcd-server", "etcd-peer", "etcd-healthcheck-client",
    ]  # fmt: skip
    assert "installer's" in result.stdout and "admin.conf" in names
    front = next(line for line in lines if line.startswith("  front-proxy-client "))
    assert front.split()[-2:] == ["renew", "soon"]
    assert "(offline root: on the node run `kubeadm certs check-expiration`)" in result.stdout
    assert "warning: certificate front-proxy-client" in result.stdout


def renew_log(root: Path) -> list:
    log = (root / "var/log/k8s-install.log").read_text().splitlines()
    return [line.split("would run: ", 1)[1] for line in log if "would run: " in line]


def test_certs_renew_runs_kubeadm_then_restarts_the_static_pods(python39: str, pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / "node"
    make_control_plane_pki(root, {})
    result = run_pyz(python39, pyz, root, "certs", "renew", "--yes")
    assert result.returncode == 0, result.stderr
    m, h = "/etc/kubernetes/manifests", "/etc/kubernetes/tmp/k8s-install-static-pods"
    pods = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
    expected = ["kubeadm certs renew all", f"mkdir -p -m 0700 {h}"]
    expected += [f"mv --no-target-directory {m}/{p}.yaml {h}/{p}.yaml" for p in pods]
    expected += ["sleep 20 (the kubelet stops the static pods)"]
    expected += [f"mv --no-target-directory {h}/{p}.yaml {m}/{p}.yaml" for p in pods]
    expected += [
        "wait for the API server at https://127.0.0.1:6443",
        "copy the renewed /etc/kubernetes/admin.conf to /root/.kube/config",
    ]
    assert renew_log(root) == expected  # --yes: no separate plan pass, the run logs each command once


def test_certs_renew_after_a_run_killed_with_the_pods_out(python39: str, pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / "node"
    make_control_plane_pki(root, {})
    held = root / "etc/kubernetes/tmp/k8s-install-static-pods"
    held.mkdir(parents=True)
    for pod in ("kube-apiserver", "etcd"):
        os.replace(root / f"etc/kubernetes/manifests/{pod}.yaml", held / f"{pod}.yaml")
    result = run_pyz(python39, pyz, root, "certs", "renew", "--yes")
    assert result.returncode == 0, result.stderr
    m, h = "/etc/kubernetes/manifests", "/etc/kubernetes/tmp/k8s-install-static-pods"
    assert renew_log(root) == [
        f"mv --no-target-directory {h}/kube-apiserver.yaml {m}/kube-apiserver.yaml",
        f"mv --no-target-directory {h}/etcd.yaml {m}/etcd.yaml",
        "wait for the API server at https://127.0.0.1:6443",
    ]
    assert "still in /etc/kubernetes/tmp/k8s-install-static-pods: moving them back" in result.stdout


def test_certs_renew_on_a_worker_says_where_to_run_it(python39: str, pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / "worker"
    root.mkdir()
    result = run_pyz(python39, pyz, root, "certs", "renew", "--yes")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("k8s-install.pyz: error: no /etc/kubernetes/manifests/kube-apiserver.yaml")
    assert len(result.stderr.strip().splitlines()) == 1
