"""haproxy's log lines reach the syslog socket: the rendered haproxy.cfg runs in its own network and mount
namespace where /dev/log is a datagram socket of the test (as journald's is on EL9), and a line arrives.

Regression: with `chroot /var/lib/haproxy` haproxy looked for /dev/log inside the chroot, found nothing,
and every log line was lost (the same run with the chroot line put back receives nothing)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Iterator, List

import pytest

from installer.cluster.haproxy import render_haproxy_cfg
from installer.cluster.secrets import generate_secrets
from tests.support.cluster import load, seed_data
from tests.support.firewalld import require
from tests.support.netns import Lab, wait_for

# /dev in the namespace is a fresh tmpfs with the few devices haproxy opens; the test's socket is
# bind-mounted on /dev/log. `unshare -m` keeps every mount inside (nothing changes on the host).
START = """set -e
mount -t tmpfs -o mode=755 k8s-test-dev /dev
mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9
touch /dev/log; mount --bind "$1" /dev/log
exec haproxy -db -f "$2"
"""


SESSION = """
import socket
with socket.create_connection(("127.0.0.1", 8443), timeout=2) as session:  # logged when it ends
    session.sendall(b"hello")
    try:
        session.recv(10)
    except OSError:
        pass
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require("ip", "haproxy", "unshare", "mknod", "openssl")
    created = Lab(tmp_path, prefix="k8slog")
    try:
        created.add_host("cp", "192.168.10.11/24")
        yield created
    finally:
        created.close()


def received(lab: Lab, config_text: str, tmp_path: Path, name: str, wait: float) -> List[str]:
    """Start haproxy from `config_text`, make it log a TCP session, return the datagrams /dev/log got."""
    folder = tmp_path / name
    folder.mkdir()
    log_socket = folder / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(log_socket))
    os.chmod(log_socket, 0o666)  # haproxy writes as the haproxy user
    receiver.settimeout(wait)
    config = folder / "haproxy.cfg"
    config.write_text(config_text)
    process = lab.start("cp", ["unshare", "-m", "--propagation", "private", "sh", "-c", START, "sh",
                               str(log_socket), str(config)], f"haproxy-{name}")  # fmt: skip
    try:
        wait_for(lambda: lab.run("cp", ["python3", "-c", SESSION], 10).returncode == 0 or process.poll() is not None,
                 10, 0.2, "haproxy to listen")  # fmt: skip
        assert process.poll() is None, (tmp_path / f"haproxy-{name}.log").read_text()  # it runs, and serves
        lines: List[str] = []
        try:
            while True:  # the first line within `wait`, then whatever follows it
                lines.append(receiver.recv(4096).decode("utf-8", "replace"))
                receiver.settimeout(1)
        except socket.timeout:
            return lines
    finally:
        Lab.stop(process)
        receiver.close()


def test_haproxy_logs_reach_dev_log(lab: Lab, tmp_path: Path) -> None:
    config = load(seed_data())
    ca = tmp_path / "ca.crt"
    ca.write_text(generate_secrets(config.name).ca_cert_pem)
    rendered = render_haproxy_cfg(config, ca_file=str(ca))
    assert not re.search(r"^\s*chroot", rendered, re.M) and "log /dev/log local0" in rendered
    lines = received(lab, rendered, tmp_path, "rendered", 10)
    assert lines, (tmp_path / "haproxy-rendered.log").read_text()
    facilities = {int(line[1 : line.index(">")]) // 8 for line in lines if line.startswith("<")}
    assert facilities == {16} and all("haproxy[" in line for line in lines), lines  # local0 = facility 16

    chrooted = tmp_path / "chroot"
    chrooted.mkdir()
    regression = rendered.replace("    user haproxy", f"    chroot {chrooted}\n    user haproxy")
    assert received(lab, regression, tmp_path, "chrooted", 6) == []
