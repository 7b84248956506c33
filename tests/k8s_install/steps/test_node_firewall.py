"""The firewalld service the installer renders, loaded into a real firewalld in a network namespace: the
first control plane serves time through it (a real chronyd client in another namespace syncs), and the
ports Kubernetes lists (kube-proxy health 10256/tcp, UDP NodePorts) pass while the rest stays closed."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, cast

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.commands.cluster_settings import settings_for
from k8s_install.engine import Node
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.chrony import chrony_conf
from k8s_install.steps.firewall import NOT_RUNNING, open_service, service_name, service_to_open, service_xml
from tests.support.cluster_files import SEED_NODES, SUBNET, write_cluster
from tests.support.firewalld import Firewalld, FirewalldHost, chrony_for_test
from tests.support.netns import Lab
from tests.support.prerequisites import require

SERVER_IP = f"{SUBNET}.11"  # the first control plane: it serves time when ntp.server is empty
CLIENT_IP = f"{SUBNET}.100"


def node_for(site: Path, name: str, role: str, first: bool, tmp_path: Path) -> Node:
    args = argparse.Namespace(
        config=str(site / "cluster.yaml"), secrets=str(site / "cluster-secrets.yaml"), node=name, role=role,
        first=first, firewall="firewalld", ignore_preflight=[], containerd_address=None,
    )  # fmt: skip
    host = Host(tmp_path / name)
    bundle = Bundle(tmp_path, EMPTY_MANIFEST)
    return Node(host, State(host), bundle, settings_for(args, bundle, host))


@pytest.fixture
def site(cluster_secrets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """The seed's cluster with the defaults (no ntp.server); --node names the node, as this machine is none."""
    monkeypatch.setattr("k8s_install.commands.cluster_settings.read_local_addresses", lambda: [])
    write_cluster(tmp_path / "site", cluster_secrets, [dict(node, interface="eth0") for node in SEED_NODES])
    return tmp_path / "site"


def test_the_time_serving_node_opens_ntp_and_the_others_do_not(site: Path, tmp_path: Path) -> None:
    """Regression: with ntp.server empty the first control plane serves time, but its service lacked 123/udp."""
    first = node_for(site, "k8s-mn01", "control-plane", True, tmp_path)
    assert first.settings.serve_time_to
    assert '<port protocol="udp" port="123"/>' in service_xml(first)
    for name, role in (("k8s-mn02", "control-plane"), ("k8s-wn01", "worker")):
        other = node_for(site, name, role, False, tmp_path)
        assert '<port protocol="udp" port="123"/>' not in service_xml(other)


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_every_role_opens_kube_proxy_health_and_udp_node_ports(role: str) -> None:
    ports = NodeSettings(role=role, first=False, name="n", ip="10.0.0.1").ports()
    assert "10256/tcp" in ports and "30000-32767/udp" in ports and "30000-32767/tcp" in ports


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require("ip", "firewalld", "firewall-cmd", "dbus-daemon", "chronyd", "python3")
    created = Lab(tmp_path, prefix="k8sfw")
    try:
        created.add_host("server", f"{SERVER_IP}/24")
        created.add_host("client", f"{CLIENT_IP}/24")
        yield created
    finally:
        created.close()


def chronyd_query(lab: Lab, config: Path, seconds: int) -> subprocess.CompletedProcess:
    """`chronyd -Q`: measure the offset from the configured server once and exit; the clock is never set."""
    return lab.run("client", ["chronyd", "-Q", "-u", "root", "-t", str(seconds), "-f", str(config)], seconds + 15)


LISTENER = """
import socket, sys
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 10256)); tcp.listen(5)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 31000))
print("ready", flush=True)
while True:
    data, peer = udp.recvfrom(100); udp.sendto(data, peer)
"""

PROBE = """
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
try:
    if kind == "tcp":
        socket.create_connection((sys.argv[3], port), timeout=2).close()
    else:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.settimeout(2)
        udp.sendto(b"ping", (sys.argv[3], port)); udp.recvfrom(100)
except OSError as error:
    print(error); sys.exit(1)
"""


def reachable(lab: Lab, kind: str, port: int) -> bool:
    return lab.run("client", ["python3", "-c", PROBE, kind, str(port), SERVER_IP]).returncode == 0


@pytest.mark.daemons
@pytest.mark.root
def test_a_node_syncs_time_through_the_first_control_planes_real_firewalld(
    site: Path, lab: Lab, tmp_path: Path
) -> None:
    first = node_for(site, "k8s-mn01", "control-plane", True, tmp_path)
    worker = node_for(site, "k8s-wn01", "worker", False, tmp_path)
    firewall = Firewalld(lab, "server", tmp_path / "fw")
    server_conf = tmp_path / "server-chrony.conf"
    server_conf.write_text(chrony_for_test(chrony_conf(first), tmp_path / "server-chrony"))
    client_conf = tmp_path / "client-chrony.conf"
    client_conf.write_text(chrony_for_test(chrony_conf(worker), tmp_path / "client-chrony"))
    assert f"server {SERVER_IP} iburst" in client_conf.read_text()
    lab.start("server", ["chronyd", "-x", "-d", "-u", "root", "-f", str(server_conf)], "chronyd-server")
    lab.start("server", ["python3", "-c", LISTENER], "listener")

    # before the service is loaded the default zone drops NTP: the lab really filters
    blocked = chronyd_query(lab, client_conf, 6)
    assert blocked.returncode != 0 and "System clock wrong by" not in blocked.stderr
    assert not reachable(lab, "tcp", 10256)

    firewall.install_service(service_name(first), service_xml(first))
    synced = chronyd_query(lab, client_conf, 20)
    assert synced.returncode == 0 and "System clock wrong by" in synced.stderr + synced.stdout, synced.stderr
    assert reachable(lab, "tcp", 10256)  # kube-proxy health
    assert reachable(lab, "udp", 31000)  # a UDP NodePort
    listed = firewall.cmd("--info-service", service_name(first)).stdout
    assert "123/udp" in listed and "10256/tcp" in listed


@pytest.mark.daemons
@pytest.mark.root
def test_a_re_run_asks_a_real_firewalld_once_and_a_stopped_one_is_left_alone(lab: Lab, tmp_path: Path) -> None:
    """The step's questions to firewalld: before a change the query and `--state`; opening loads the service and
    adds it to both configurations with one reload; a re-run with the file unchanged asks one query; a stopped
    firewalld (firewall-cmd exits NOT_RUNNING) is logged and left alone."""
    firewall = Firewalld(lab, "server", tmp_path / "fw")
    host = FirewalldHost(firewall)
    node = cast(Node, SimpleNamespace(host=host))
    (firewall.config_dir / "services").mkdir()
    (firewall.config_dir / "services" / "k8s-worker.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<service>\n  <port protocol="tcp" port="10250"/>\n</service>\n'
    )
    assert service_to_open(node, "k8s-worker", file_changed=True)
    assert [command[1:] for command in host.commands] == [["--permanent", "--query-service=k8s-worker"], ["--state"]]

    host.commands.clear()
    open_service(node, "k8s-worker")
    assert [command[1:] for command in host.commands] == [
        ["--reload"], ["--permanent", "--add-service=k8s-worker"], ["--add-service=k8s-worker"]
    ]  # fmt: skip
    assert firewall.cmd("--query-service=k8s-worker").returncode == 0  # the running configuration
    assert firewall.cmd("--permanent", "--query-service=k8s-worker").returncode == 0
    assert firewall.cmd("--reload").returncode == 0 and firewall.cmd("--query-service=k8s-worker").returncode == 0

    host.commands.clear()
    assert not service_to_open(node, "k8s-worker", file_changed=False)
    assert [command[1:] for command in host.commands] == [["--permanent", "--query-service=k8s-worker"]]
    assert service_to_open(node, "k8s-worker", file_changed=True)  # a changed file is loaded again

    firewall.process.terminate()
    firewall.process.wait(timeout=60)
    host.commands.clear()
    assert firewall.cmd("--permanent", "--query-service=k8s-worker").returncode == NOT_RUNNING
    assert not service_to_open(node, "k8s-worker", file_changed=True)
    assert len(host.commands) == 1
    assert host.lines == ["firewalld is not running: the service file is in place for when it starts"]
