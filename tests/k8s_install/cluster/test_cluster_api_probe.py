"""Joining nodes wait for the API at the VIP: a CA-verified probe and a countdown."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from k8s_install.cluster.api_probe import ProbeResult, probe_api, wait_for_api
from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets
from k8s_install.errors import InstallError
from tests.conftest import REPO
from tests.support.cluster import issue_server_certificate, load, seed_data
from tests.support.netns import wait_for

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make the CA")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def secrets() -> ClusterSecrets:
    return generate_secrets("seed")


@pytest.fixture
def standin(tmp_path: Path, secrets: ClusterSecrets) -> Iterator[int]:
    """The HTTPS API stand-in on a loopback port, with a certificate from the cluster CA."""
    cert, key = issue_server_certificate(tmp_path, secrets, load(seed_data()))
    port = free_port()
    argv = [sys.executable, "-m", "tests.support.api_standin", "--cert", str(cert), "--key", str(key),
            "--port", str(port), "--bind", "127.0.0.1", "--name", "k8s-mn01"]  # fmt: skip
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: probe_api("127.0.0.1", port, secrets.ca_cert_pem).ok, 30, what="the API stand-in")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_probe_succeeds_against_the_cluster_s_api(standin: int, secrets: ClusterSecrets) -> None:
    assert probe_api("127.0.0.1", standin, secrets.ca_cert_pem) == ProbeResult(True, "HTTP 200")


def test_the_probe_refuses_a_server_of_another_ca(standin: int) -> None:
    other = generate_secrets("seed")
    result = probe_api("127.0.0.1", standin, other.ca_cert_pem)
    assert not result.ok and "is not this cluster's API server" in result.detail


def test_the_probe_says_when_nothing_listens(secrets: ClusterSecrets) -> None:
    result = probe_api("127.0.0.1", free_port(), secrets.ca_cert_pem, timeout=1)
    assert not result.ok and result.detail.startswith("cannot connect to 127.0.0.1:")


class FakeTime:
    """A clock that `sleep` advances, so the countdown is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_counts_down_until_the_api_answers() -> None:
    time = FakeTime()
    answers = iter([ProbeResult(False, "cannot connect")] * 3 + [ProbeResult(True, "HTTP 200")])
    reports: List[Tuple[int, str]] = []
    wait_for_api(lambda: next(answers), 300, lambda left, why: reports.append((left, why)), time.clock, time.sleep)
    assert reports == [(300, "cannot connect"), (298, "cannot connect"), (296, "cannot connect")]


def test_waiting_gives_up_with_what_to_do() -> None:
    time = FakeTime()
    with pytest.raises(
        InstallError, match=r"did not answer within 10 s \(HTTP 503\): run `--role control-plane --first`"
    ):
        wait_for_api(lambda: ProbeResult(False, "HTTP 503"), 10, lambda left, why: None, time.clock, time.sleep)
