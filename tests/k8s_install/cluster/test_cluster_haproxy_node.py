"""haproxy on a control plane, run from the rendered files in its own network and mount namespace.

Its log lines reach /dev/log, here a datagram socket of the test (as journald's is on EL9).
Regression: with `chroot /var/lib/haproxy` haproxy looked for /dev/log inside the chroot, found nothing,
and every log line was lost (the same run with the chroot line put back receives nothing). The keepalived
check script tells haproxy answering 503 (no healthy API server) from haproxy not answering."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path
from typing import Iterator, List

import pytest

from k8s_install.cluster.haproxy import render_haproxy_cfg
from k8s_install.cluster.keepalived import render_check_script
from k8s_install.cluster.secrets import generate_secrets
from tests.support.cluster import load, seed_data
from tests.support.netns import Lab, wait_for
from tests.support.prerequisites import require

pytestmark = [pytest.mark.daemons, pytest.mark.root]

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


@contextlib.contextmanager
def haproxy_running(lab: Lab, config_text: str, tmp_path: Path, name: str) -> Iterator[socket.socket]:
    """haproxy from `config_text`, listening; yields the datagram socket that is its /dev/log."""
    folder = tmp_path / name
    folder.mkdir()
    log_socket = folder / "log.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(log_socket))
    os.chmod(log_socket, 0o666)  # haproxy writes as the haproxy user
    config = folder / "haproxy.cfg"
    config.write_text(config_text)
    process = lab.start("cp", ["unshare", "-m", "--propagation", "private", "sh", "-c", START, "sh",
                               str(log_socket), str(config)], f"haproxy-{name}")  # fmt: skip
    try:
        wait_for(lambda: lab.run("cp", ["python3", "-c", SESSION], 10).returncode == 0 or process.poll() is not None,
                 10, 0.2, "haproxy to listen")  # fmt: skip
        assert process.poll() is None, (tmp_path / f"haproxy-{name}.log").read_text()  # it runs, and serves
        yield receiver
    finally:
        Lab.stop(process)
        receiver.close()


def received(receiver: socket.socket, wait: float) -> List[str]:
    """The datagrams that arrive: the first within `wait`, then whatever follows it."""
    lines: List[str] = []
    receiver.settimeout(wait)
    try:
        while True:
            lines.append(receiver.recv(4096).decode("utf-8", "replace"))
            receiver.settimeout(1)
    except socket.timeout:
        return lines


def rendered_config(tmp_path: Path) -> str:
    config = load(seed_data())
    ca = tmp_path / "ca.crt"
    ca.write_text(generate_secrets(config.name).ca_cert_pem)
    return render_haproxy_cfg(config, ca_file=str(ca))


def test_haproxy_logs_reach_dev_log(lab: Lab, tmp_path: Path) -> None:
    rendered = rendered_config(tmp_path)
    assert not re.search(r"^\s*chroot", rendered, re.M) and "log /dev/log local0" in rendered
    with haproxy_running(lab, rendered, tmp_path, "rendered") as receiver:
        lines = received(receiver, 10)
    assert lines, (tmp_path / "haproxy-rendered.log").read_text()
    facilities = {int(line[1 : line.index(">")]) // 8 for line in lines if line.startswith("<")}
    assert facilities == {16} and all("haproxy[" in line for line in lines), lines  # local0 = facility 16

    chrooted = tmp_path / "chroot"
    chrooted.mkdir()
    regression = rendered.replace("    user haproxy", f"    chroot {chrooted}\n    user haproxy")
    with haproxy_running(lab, regression, tmp_path, "chrooted") as receiver:
        assert received(receiver, 6) == []


def test_check_script_tells_a_503_from_no_answer(lab: Lab, tmp_path: Path) -> None:
    """Regression: the script said haproxy "does not answer" when it answered 503 (no healthy API server)."""
    require("curl")
    script = tmp_path / "check_apiserver.sh"
    script.write_text(render_check_script(load(seed_data())))
    script.chmod(0o755)
    silent = lab.run("cp", [str(script)])
    assert silent.returncode == 1
    assert silent.stderr.strip() == "check_apiserver: haproxy does not answer on 127.0.0.1:8404"
    with haproxy_running(lab, rendered_config(tmp_path), tmp_path, "no-api"):  # no API server behind it
        # haproxy counts its servers up until their first checks fail (fall 2, inter 2 s)
        answered = wait_for(lambda: (lambda r: r if "503" in r.stderr else None)(lab.run("cp", [str(script)])),
                            20, 0.5, "haproxy to mark its servers down")  # fmt: skip
    assert answered.returncode == 1
    assert answered.stderr.strip() == (
        "check_apiserver: haproxy answers 503 on 127.0.0.1:8404: it has no healthy API server behind it"
    )
