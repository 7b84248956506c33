"""keepalived.conf, check_apiserver.sh and haproxy.cfg: checked by the real tools for every control plane."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from k8s_install.cluster.haproxy import render_haproxy_cfg
from k8s_install.cluster.keepalived import (
    render_check_script,
    render_keepalived_conf,
    vrrp_priority,
    vrrp_state,
)
from k8s_install.cluster.model import ClusterConfig
from tests.support.cluster import load, seed_data

PASSWORD = "Ab3dE6gH"


def needs(tool: str):
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


def local_interface() -> str:
    """keepalived -t wants the interface to exist: take one of this machine's."""
    names = sorted(path.name for path in Path("/sys/class/net").iterdir() if path.name != "lo")
    if not names:
        pytest.skip("this machine has no network interface besides lo")
    return names[0]


def configs() -> list:
    return [load(seed_data()), load(seed_data(api={"vip": "192.168.10.240", "vrrp_unicast": True}))]


@pytest.fixture
def check_script(tmp_path: Path) -> Path:
    path = tmp_path / "check_apiserver.sh"
    path.write_text(render_check_script(load(seed_data())))
    path.chmod(0o755)
    return path


@needs("keepalived")
@pytest.mark.parametrize("config", configs(), ids=["multicast", "unicast"])
def test_keepalived_accepts_every_control_plane_config(config: ClusterConfig, check_script: Path, tmp_path: Path):
    interface = local_interface()
    for node in config.control_planes:
        conf = tmp_path / f"keepalived-{node.name}.conf"
        conf.write_text(render_keepalived_conf(config, node, interface, PASSWORD, check_script=str(check_script)))
        result = subprocess.run(["keepalived", "-t", "-l", "-f", str(conf)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_first_control_plane_is_master_the_others_back_it_up_in_order() -> None:
    config = load(seed_data())
    planes = config.control_planes
    assert [vrrp_state(config, node) for node in planes] == ["MASTER", "BACKUP", "BACKUP"]
    assert [vrrp_priority(config, node) for node in planes] == [150, 140, 130]
    text = render_keepalived_conf(config, planes[1], "ens33", PASSWORD)
    assert re.search(r"^\s+state BACKUP$", text, re.M) and re.search(r"^\s+priority 140$", text, re.M)
    assert f"virtual_router_id {config.virtual_router_id}\n" in text
    assert "192.168.10.240/24 dev ens33" in text and f"auth_pass {PASSWORD}" in text and "1111" not in text
    assert "script_user root" in text and "enable_script_security" in text
    assert "weight" not in text  # a failing check means FAULT: the VIP leaves at once
    assert "unicast_peer" not in text


def test_unicast_lists_the_other_control_planes() -> None:
    config = configs()[1]
    text = render_keepalived_conf(config, config.control_planes[0], "ens33", PASSWORD)
    assert "unicast_src_ip 192.168.10.11" in text
    peers = re.search(r"unicast_peer \{([^}]*)\}", text).group(1).split()  # type: ignore[union-attr]
    assert peers == ["192.168.10.22", "192.168.10.33"]


def test_workers_get_no_keepalived() -> None:
    config = load(seed_data())
    with pytest.raises(ValueError):
        render_keepalived_conf(config, config.workers[0], "ens33", PASSWORD)


def test_check_script_passes_sh_n(check_script: Path) -> None:
    for shell in ("sh", "bash", "dash"):
        if shutil.which(shell):
            result = subprocess.run([shell, "-n", str(check_script)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr


@needs("shellcheck")
def test_check_script_passes_shellcheck(check_script: Path) -> None:
    result = subprocess.run(["shellcheck", "--shell=sh", str(check_script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@needs("curl")
def test_check_script_fails_when_nothing_answers(check_script: Path) -> None:
    """Nothing listens on this machine's 127.0.0.1:8404 in the test: the script must say so and exit 1."""
    probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8404/"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("something on this machine answers on 127.0.0.1:8404")
    result = subprocess.run([str(check_script)], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == "check_apiserver: haproxy does not answer on 127.0.0.1:8404"


@needs("haproxy")
@pytest.mark.parametrize("config", configs(), ids=["seed", "unicast"])
def test_haproxy_accepts_the_config(config: ClusterConfig, tmp_path: Path) -> None:
    from k8s_install.cluster.secrets import generate_secrets

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed for the CA file haproxy loads")
    ca = tmp_path / "ca.crt"
    ca.write_text(generate_secrets(config.name).ca_cert_pem)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render_haproxy_cfg(config, ca_file=str(ca)))
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout + result.stderr


def test_haproxy_forwards_the_vip_port_to_every_control_plane() -> None:
    text = render_haproxy_cfg(load(seed_data()))
    assert "bind *:8443" in text and "mode tcp" in text
    servers = re.findall(r"^\s+server (\S+) (\S+)$", text, re.M)
    assert servers == [
        ("k8s-mn01", "192.168.10.11:6443"),
        ("k8s-mn02", "192.168.10.22:6443"),
        ("k8s-mn03", "192.168.10.33:6443"),
    ]
    assert "check check-ssl verify required ca-file /etc/k8s-install/kubernetes-ca.crt" in text
    assert "http-check send meth GET uri /healthz" in text
    assert "k8s-wn01" not in text
