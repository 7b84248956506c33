"""`bundler cluster init|check`, `bundler build --cluster`, `k8s-install.pyz config init|check`."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from bundler import paths
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.http_server import MirrorServer
from tests.support.session_cache import shiv_root
from tests.support.tiny_bundle import write_tiny_bundle

TOP = "k8s-bundle-1.29.6-rocky9-amd64-k8s-cluster"  # built with --cluster: its name is in the bundle name
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make the CA")


def run_installer(*args: str, cwd: Path = REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "k8s_install", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def test_cluster_init_writes_a_valid_config_and_0600_secrets_once(tmp_path: Path) -> None:
    result = run_bundler("cluster", "init", "--dir", str(tmp_path), "--name", "prod", "--k8s", "1.29.6")
    assert result.returncode == 0, result.stderr
    config, secrets = tmp_path / "cluster.yaml", tmp_path / "cluster-secrets.yaml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert yaml.safe_load(config.read_text())["name"] == "prod"
    assert "never inside the bundle" in result.stdout
    before = secrets.read_bytes()
    again = run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6")
    assert again.returncode == 1
    assert again.stderr.strip().endswith("already exists; nothing was written (a cluster's secrets are made once)")
    assert secrets.read_bytes() == before
    check = run_bundler("cluster", "check", str(config), "--k8s", "1.29.6", "--secrets", str(secrets))
    assert check.returncode == 0, check.stderr
    assert "cluster prod, Kubernetes 1.29.6, API 192.168.10.240:8443" in check.stdout


def test_cluster_check_reports_one_line_and_exit_1(tmp_path: Path) -> None:
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    config = tmp_path / "cluster.yaml"
    config.write_text(config.read_text().replace("pods: 10.244.0.0/16", "pods: 10.96.0.0/8"))
    result = run_bundler("cluster", "check", str(config))
    assert result.returncode == 1
    assert result.stderr == (
        f"bundler: error: {config}: networks.pods: 10.96.0.0/8 is not a network address "
        "(host bits are set): use 10.0.0.0/8\n"
    )
    other = run_bundler("cluster", "check", str(tmp_path / "cluster.yaml"), "--k8s", "1.30.2")
    assert "differs from this bundle's Kubernetes 1.30.2" in other.stderr


def test_cluster_check_refuses_the_seeds_vrrp_password(tmp_path: Path) -> None:
    """Regression: a secrets file with keepalived's `1111` passed `cluster check`."""
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    secrets = tmp_path / "cluster-secrets.yaml"
    data = yaml.safe_load(secrets.read_text())
    secrets.write_text(yaml.safe_dump(dict(data, keepalived_password="1111")))
    result = run_bundler("cluster", "check", str(tmp_path / "cluster.yaml"), "--secrets", str(secrets))
    assert result.returncode == 1
    assert f"{secrets}: keepalived_password: only 4 character(s): use 8 random letters and digits" in result.stderr
    assert "uses only the first 8 characters" in result.stderr and "Traceback" not in result.stderr


def build(release: StandInRelease, tmp_path: Path, *extra: str):
    return run_bundler(
        "build",
        "--allow-incomplete",
        "--manifest",
        str(release.path),
        "--mirror",
        release.mirror.url,
        "--cache",
        str(tmp_path / "cache"),
        "--output",
        str(tmp_path / "out"),
        "--retries",
        "2",
        "--timeout",
        "2",
        *extra,
    )


@pytest.fixture(scope="module")
def built_with_cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bundler cluster init` into c/, then `bundler build --cluster c/cluster.yaml` into out/: once for the module."""
    work = tmp_path_factory.mktemp("built-with-cluster")
    mirror = MirrorServer().start()
    try:
        release = StandInRelease(mirror, work)
        assert run_bundler("cluster", "init", "--dir", str(work / "c"), "--k8s", "1.29.6").returncode == 0
        result = build(release, work, "--cluster", str(work / "c" / "cluster.yaml"))
    finally:
        mirror.stop()
    assert result.returncode == 0, result.stderr
    return work


@pytest.fixture
def with_cluster(built_with_cluster: Path, tmp_path: Path) -> Path:
    """This test's copy of c/ and out/ from `built_with_cluster`."""
    for name in ("c", "out"):
        shutil.copytree(built_with_cluster / name, tmp_path / name)
    return tmp_path


def test_build_puts_the_validated_config_in_the_bundle_and_never_the_secrets(with_cluster: Path) -> None:
    tmp_path = with_cluster
    tarball = tmp_path / "out" / f"{TOP}.tar"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        bundled = archive.extractfile(f"{TOP}/cluster.yaml").read()  # type: ignore[union-attr]
        manifest = yaml.safe_load(archive.extractfile(f"{TOP}/bundle.yaml").read())  # type: ignore[union-attr]
    assert bundled == (tmp_path / "c" / "cluster.yaml").read_bytes()
    assert not any("secret" in name for name in names)
    entry = next(e for e in manifest["extras"] if e["name"] == "cluster-config")
    assert entry["path"] == "cluster.yaml" and entry["cluster"] == "k8s-cluster" and entry["size"] == len(bundled)
    verify = run_bundler("verify", str(tarball))
    assert verify.returncode == 0, verify.stderr
    # and the installer inside reads it: config check on the unpacked bundle names this machine's problem
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    check = run_installer("--bundle", str(tmp_path / TOP), "config", "check")
    assert check.returncode == 1
    assert "match no node IP in cluster.yaml: add this node there or pass --node NAME" in check.stderr
    named = run_installer("--bundle", str(tmp_path / TOP), "config", "check", "--node", "k8s-mn01")
    assert "is not on this machine, so its interface is unknown" in named.stderr


def test_build_refuses_an_invalid_config_before_downloading(release: StandInRelease, tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    config.write_text(config.read_text().replace("vip: 192.168.10.240", "vip: 192.168.10.22"))
    result = build(release, tmp_path, "--cluster", str(config))
    assert result.returncode == 1
    assert "api.vip: 192.168.10.22 is also the IP of node k8s-mn02" in result.stderr
    assert release.mirror.requests == []  # nothing was downloaded
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_build_refuses_the_secrets_file_as_cluster_config(release: StandInRelease, tmp_path: Path) -> None:
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    result = build(release, tmp_path, "--cluster", str(tmp_path / "cluster-secrets.yaml"))
    assert result.returncode == 1
    assert "unknown field" in result.stderr or "bundles never carry secrets" in result.stderr


def test_installer_config_init_takes_the_version_from_the_bundle(tmp_path: Path) -> None:
    bundle = write_tiny_bundle(tmp_path / "bundle")
    result = run_installer("--bundle", str(bundle), "config", "init", "--dir", str(tmp_path / "out"), "--name", "lab")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load((tmp_path / "out" / "cluster.yaml").read_text())["kubernetes_version"] == "1.29.6"
    assert stat.S_IMODE((tmp_path / "out" / "cluster-secrets.yaml").stat().st_mode) == 0o600
    missing = run_installer("--bundle", str(tmp_path), "config", "init", "--dir", str(tmp_path / "x"))
    assert missing.returncode == 1 and "no bundle.yaml to take the Kubernetes version from" in missing.stderr


def test_the_zipapp_renders_its_templates_under_python39(with_cluster: Path, python39: str) -> None:
    """Templates load from the unpacked shiv archive, with the pure-Python yaml/jinja2 of the nodes."""
    tmp_path = with_cluster
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    pyz = tmp_path / TOP / "k8s-install.pyz"
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    run = lambda *args: subprocess.run([python39, str(pyz), *args], env=env, capture_output=True, text=True)  # noqa: E731
    init = run("config", "init", "--dir", str(tmp_path / "fresh"))
    assert init.returncode == 0, init.stderr
    assert "# cluster.yaml: the cluster k8s-install builds." in (tmp_path / "fresh" / "cluster.yaml").read_text()
    check = run("config", "check", "--secrets", str(tmp_path / "fresh" / "cluster-secrets.yaml"), "--node", "k8s-mn01")
    assert check.returncode == 1 and "k8s-mn01's IP 192.168.10.11 is not on this machine" in check.stderr


@pytest.mark.parametrize("before", [True, False], ids=["options-before-the-command", "options-after-it"])
def test_installer_config_check_takes_config_and_node_on_either_side(tmp_path: Path, before: bool) -> None:
    """`k8s-install.pyz --config X config check` used to drop X (the subcommand's own default replaced it)."""
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    bundle = write_tiny_bundle(tmp_path / "bundle")
    options = ["--config", str(tmp_path / "cluster.yaml"), "--node", "k8s-wn01"]
    args = [*options, "config", "check"] if before else ["config", "check", *options]
    result = run_installer("--bundle", str(bundle), *args)
    assert result.returncode == 1 and "no such file" not in result.stderr, result.stderr
    assert "k8s-wn01's IP 192.168.10.100 is not on this machine" in result.stderr


def test_both_checks_list_every_error_then_a_count_and_exit_1(tmp_path: Path) -> None:
    """Four mistakes, one run: each line names the file and the field, the last counts them."""
    assert run_bundler("cluster", "init", "--dir", str(tmp_path), "--k8s", "1.29.6").returncode == 0
    config = tmp_path / "cluster.yaml"
    text = config.read_text()
    for old, new in (
        ("kubernetes_version: 1.29.6", "kubernetes_version: 1.29.60"),
        ("ip: 192.168.10.22,", "ip: 192.168.10.300,"),
        ("ip: 192.168.10.100, role: worker", "ip: 192.168.10.100, role: wrker"),
        ("encapsulation: IPIP", "encapsulation: vxlan"),
    ):
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    errors = [
        f"{config}: nodes[1].ip: '192.168.10.300' is not an IP address (write it like 192.168.10.11)",
        f"{config}: nodes[3].role: unknown role 'wrker': did you mean worker? use control-plane or worker",
        f"{config}: calico.encapsulation: unknown encapsulation 'vxlan': did you mean VXLAN? use IPIP, VXLAN, None",
    ]
    bundler = run_bundler("cluster", "check", str(config))  # without --k8s: the version is one of the releases
    known = ", ".join(paths.supported_versions())
    version = f"{config}: kubernetes_version: 1.29.60 is not a release this bundler knows: did you mean 1.29.6? "
    assert bundler.returncode == 1 and bundler.stdout == ""
    assert bundler.stderr.splitlines() == [
        f"bundler: error: {line}"
        for line in [f"{version}known: {known}", *errors, f"{config}: 4 errors; fix them all and run again"]
    ]
    bundle = write_tiny_bundle(tmp_path / "bundle")
    node = run_installer("--bundle", str(bundle), "config", "check", "--config", str(config))
    differs = f"{config}: kubernetes_version: 1.29.60 differs from this bundle's Kubernetes 1.29.6: set 1.29.6 or use"
    assert node.returncode == 1 and node.stderr.splitlines()[0].startswith(f"k8s-install.pyz: error: {differs}")
    assert node.stderr.splitlines()[1:] == [
        f"k8s-install.pyz: error: {line}" for line in [*errors, f"{config}: 4 errors; fix them all and run again"]
    ]


def test_cluster_init_needs_the_release_named(tmp_path: Path) -> None:
    """No silent default: the release goes into cluster.yaml and every bundle must match it."""
    result = run_bundler("cluster", "init", "--dir", str(tmp_path))
    assert result.returncode == 2 and "the following arguments are required: --k8s" in result.stderr
    assert not any(tmp_path.iterdir())
    helped = run_bundler("cluster", "init", "--help")
    assert all(version in " ".join(helped.stdout.split()) for version in paths.supported_versions())
