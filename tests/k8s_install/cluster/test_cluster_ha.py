"""The API VIP in network namespaces: real keepalived and haproxy from the generated configs.

Three control-plane namespaces and a client share a bridge (itself in a fourth namespace). Each control
plane runs keepalived and haproxy from the rendered files and an HTTPS stand-in for kube-apiserver on
:6443 whose certificate is signed by the cluster CA from `generate_secrets`. The test measures how long
the VIP takes to serve again after each failure and prints it; it asserts where the VIP goes, not how fast.
Design choice asserted here: preemption. The first control plane (priority 150) takes the VIP back once
its checks pass again, so the VIP is normally where the operator expects it.
"""

from __future__ import annotations

import os
import secrets as random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from k8s_install.cluster.haproxy import render_haproxy_cfg
from k8s_install.cluster.keepalived import render_check_script, render_keepalived_conf
from k8s_install.cluster.model import ClusterConfig
from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets
from tests.conftest import REPO
from tests.support.cluster import issue_server_certificate, load, seed_data
from tests.support.netns import Lab, wait_for

TOOLS = ("ip", "keepalived", "haproxy", "curl", "openssl")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"),
]
PLANES = ("cp1", "cp2", "cp3")
SETTLE = 60.0
# What a joining node does before `kubeadm join`: wait for the VIP with a countdown, CA verified.
WAITER = """
import sys
from k8s_install.cluster.api_probe import probe_api, wait_for_api
host, port, ca = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read()
say = lambda left, why: print(f"waiting for the cluster API at {host}:{port}: {left} s left ({why})")
wait_for_api(lambda: probe_api(host, port, ca, timeout=1), 120, say, interval=0.5)
print("API answers")
"""  # seconds before a wait gives up (a hang guard, not a timing assertion)


class Cluster:
    """The lab plus the processes of each control plane, restartable one by one."""

    def __init__(self, lab: Lab, config: ClusterConfig, secrets: ClusterSecrets, work: Path) -> None:
        self.lab, self.config, self.secrets, self.work = lab, config, secrets, work
        self.processes: Dict[str, subprocess.Popen] = {}
        self.ca = work / "ca.crt"
        self.ca.write_text(secrets.ca_cert_pem)
        self.cert, self.key = issue_server_certificate(work, secrets, config)
        for short, node in zip(PLANES, config.control_planes):
            folder = work / short
            folder.mkdir(mode=0o700)
            check = folder / "check_apiserver.sh"
            check.write_text(render_check_script(config, ca_file=str(self.ca)))
            check.chmod(0o755)
            conf = render_keepalived_conf(config, node, "eth0", secrets.keepalived_password, check_script=str(check))
            (folder / "keepalived.conf").write_text(conf)
            (folder / "haproxy.cfg").write_text(render_haproxy_cfg(config, ca_file=str(self.ca)))
            lab.add_host(short, f"{node.ip}/{config.node_network.prefixlen}")
        lab.add_host("client", f"{config.node_network.network_address + 100}/{config.node_network.prefixlen}")

    def start(self, short: str, what: str) -> None:
        folder = self.work / short
        node = self.config.control_planes[PLANES.index(short)]
        if what == "api":
            argv = [
                sys.executable,
                "-m",
                "tests.support.api_standin",
                "--cert",
                str(self.cert),
                "--key",
                str(self.key),
                "--name",
                node.name,
            ]
        elif what == "haproxy":
            argv = ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")]
        else:
            argv = [
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                str(folder / "keepalived.conf"),
                "-p",
                str(folder / "keepalived.pid"),
                "-r",
                str(folder / "vrrp.pid"),
                "-c",
                str(folder / "checkers.pid"),
            ]
        self.processes[f"{short}/{what}"] = self.lab.start(short, argv, f"{short}-{what}", cwd=REPO)
        if what == "api":
            wait_for(
                lambda: self.lab.run(short, self.curl(6443, "127.0.0.1")).returncode == 0,
                SETTLE,
                what=f"the API stand-in on {short}",
            )

    def stop(self, short: str, what: str) -> None:
        Lab.stop(self.processes.pop(f"{short}/{what}"))

    def curl(self, port: int, address: str) -> List[str]:
        return [
            "curl",
            "--silent",
            "--fail",
            "--max-time",
            "1",
            "--cacert",
            str(self.ca),
            "--resolve",
            f"kubernetes:{port}:{address}",
            f"https://kubernetes:{port}/healthz",
        ]

    def vip_holders(self) -> List[str]:
        return [short for short in PLANES if str(self.config.vip) in self.lab.addresses(short)]

    def client_request(self) -> Optional[str]:
        result = self.lab.run("client", self.curl(self.config.api_port, str(self.config.vip)))
        return result.stdout.strip() if result.returncode == 0 else None

    def serving_from(self, short: str, ignoring: str = "") -> bool:
        """The VIP is on `short` alone (apart from a cut-off node) and a client gets an answer through it."""
        holders = [holder for holder in self.vip_holders() if holder != ignoring]
        return holders == [short] and self.client_request() is not None

    def set_link(self, short: str, state: str) -> None:
        self.lab.run(short, ["ip", "link", "set", "eth0", state]).check_returncode()


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three control planes and a client; `indirect` parameter True makes VRRP unicast."""
    unicast = bool(getattr(request, "param", False))
    third = random.randbelow(256)
    data = seed_data(
        name=f"ha-{random.token_hex(3)}",
        api={"vip": f"10.213.{third}.240", "port": 8443},
        networks={"nodes": f"10.213.{third}.0/24", "pods": "10.244.0.0/16", "services": "10.96.0.0/12"},
    )
    data["nodes"] = [
        {"name": f"k8s-mn0{i}", "ip": f"10.213.{third}.{10 + i}", "role": "control-plane"} for i in (1, 2, 3)
    ]
    data["api"]["vrrp_unicast"] = unicast
    config = load(data)
    lab = Lab(tmp_path)
    try:
        built = Cluster(lab, config, generate_secrets(config.name), tmp_path)
        yield built
    finally:
        lab.close()
        leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.suffix not in leftover


def measure(cluster: Cluster, short: str, label: str, ignoring: str = "") -> float:
    started = time.monotonic()
    wait_for(lambda: cluster.serving_from(short, ignoring), SETTLE, what=f"the VIP to serve from {short} ({label})")
    seconds = time.monotonic() - started
    print(f"\n{label}: VIP served again from {short} after {seconds:.1f} s", flush=True)
    return seconds


def test_the_vip_moves_when_haproxy_or_the_api_server_fails_and_comes_back(cluster: Cluster, capsys) -> None:
    for short in PLANES:
        cluster.start(short, "api")
        cluster.start(short, "haproxy")
    endpoint = [str(cluster.config.vip), str(cluster.config.api_port), str(cluster.ca)]
    waiter = cluster.lab.start("client", [sys.executable, "-u", "-c", WAITER, *endpoint], "client-waiter", cwd=REPO)
    for short in PLANES:
        cluster.start(short, "keepalived")
    with capsys.disabled():
        measure(cluster, "cp1", "start-up")
        answer = cluster.client_request()
        assert answer is not None and answer.startswith("ok k8s-mn0")
        assert waiter.wait(timeout=SETTLE) == 0  # a joining node waited for the VIP, verifying the CA
        waited = (cluster.work / "client-waiter.log").read_text()
        assert "waiting for the cluster API at" in waited and waited.rstrip().endswith("API answers")

        cluster.stop("cp1", "haproxy")
        measure(cluster, "cp2", "haproxy stopped on the VIP holder cp1")
        cluster.start("cp1", "haproxy")
        measure(cluster, "cp1", "haproxy back on cp1 (preempts)")

        cluster.stop("cp1", "api")
        measure(cluster, "cp2", "API server stopped on the VIP holder cp1")
        for _ in range(5):  # haproxy on cp2 never sends the client to the dead backend for long
            assert cluster.client_request() is not None or wait_for(cluster.client_request, SETTLE)
        cluster.start("cp1", "api")
        measure(cluster, "cp1", "API server back on cp1 (preempts)")

        cluster.stop("cp1", "keepalived")
        measure(cluster, "cp2", "keepalived stopped on cp1 (it says goodbye)")
        cluster.stop("cp2", "haproxy")
        measure(cluster, "cp3", "then haproxy stopped on cp2")
        cluster.start("cp1", "keepalived")
        cluster.start("cp2", "haproxy")
        measure(cluster, "cp1", "keepalived back on cp1 (preempts)")

        cluster.set_link("cp1", "down")  # the node vanishes without a word: backups wait ~3 adverts
        measure(cluster, "cp2", "cp1 cut off the network", ignoring="cp1")
        cluster.set_link("cp1", "up")
        measure(cluster, "cp1", "cp1 back on the network (preempts)")
    for log in sorted(cluster.work.glob("*-keepalived.log")):
        assert "Disabling track script" not in log.read_text(errors="replace"), log.name


@pytest.mark.parametrize("cluster", [True], indirect=True, ids=["unicast"])
def test_unicast_vrrp_fails_over_too(cluster: Cluster, capsys) -> None:
    assert cluster.config.vrrp_unicast
    for short in PLANES:
        cluster.start(short, "api")
        cluster.start(short, "haproxy")
        cluster.start(short, "keepalived")
    with capsys.disabled():
        measure(cluster, "cp1", "unicast start-up")
        cluster.stop("cp1", "haproxy")
        measure(cluster, "cp2", "unicast: haproxy stopped on cp1")
        cluster.start("cp1", "haproxy")
        measure(cluster, "cp1", "unicast: haproxy back on cp1 (preempts)")
