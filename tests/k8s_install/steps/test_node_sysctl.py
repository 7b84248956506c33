"""sysctl: keys the kernel lacks are left out and named once (real `sysctl` in a network namespace, whose
kernel view lacks several of our keys, as a node booted with ipv6.disable=1 lacks the IPv6 ones), and a file
read after ours at boot that sets one of our keys is named by plan and preflight."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.node.host import Host
from k8s_install.steps.kernel import SYSCTL_SETTINGS, sysctl_apply_command, sysctl_conf, sysctl_overrides
from tests.conftest import REPO
from tests.support.prerequisites import require
from tests.support.sandbox import NetNamespace

ROOT = REPO
PER_NAMESPACE = ("net.ipv4.", "net.ipv6.", "net.core.somaxconn", "net.core.netdev_max_backlog")


@pytest.fixture
def namespace() -> Iterator[NetNamespace]:
    require("ip", "sysctl")
    with NetNamespace(prefix="k8ssc") as created:
        yield created


def net_only_file(tmp_path: Path) -> Path:
    """Our sysctl file cut to the keys a network namespace owns or lacks: the host's own keys stay untouched."""
    lines = [line for line in sysctl_conf().splitlines() if line.startswith(PER_NAMESPACE)]
    path = tmp_path / "90-k8s.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.root
def test_keys_the_kernel_lacks_are_left_out_and_named_once(namespace: NetNamespace, tmp_path: Path) -> None:
    path = net_only_file(tmp_path)
    probe = (
        "import json; from k8s_install.steps.kernel import missing_sysctl_keys; "
        "print(json.dumps(missing_sysctl_keys()))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    found = subprocess.run(namespace.prefix() + [sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    missing = json.loads(found.stdout)
    in_file = [key for key, _, _ in SYSCTL_SETTINGS if key.startswith(PER_NAMESPACE)]
    lacking = [key for key in in_file if key in missing]
    assert lacking and "net.ipv6.neigh.default.gc_thresh1" in lacking  # the kernel view really lacks them
    assert len(missing) == len(set(missing))  # each named once
    # the failure seen: plain `sysctl -p` exits 1 on the first missing key ...
    plain = subprocess.run(namespace.prefix() + ["sysctl", "-p", str(path)], capture_output=True, text=True)
    assert plain.returncode != 0 and "No such file or directory" in plain.stderr
    # ... the installer's command applies every key that exists
    applied = subprocess.run(namespace.prefix() + sysctl_apply_command(str(path)), capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    read = subprocess.run(
        namespace.prefix() + ["sysctl", "-n", "net.ipv4.tcp_keepalive_time", "net.ipv4.ip_forward"],
        capture_output=True,
        text=True,
    )
    assert read.stdout.split() == ["600", "1"]


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_el9_sysctl_conf_is_read_after_ours_and_named(tmp_path: Path) -> None:
    """Regression: /etc/sysctl.conf (EL9's 99-sysctl.conf) set a key of ours and silently won at boot."""
    root = tmp_path / "node"
    write(root, "/etc/sysctl.conf", "net.ipv4.tcp_keepalive_time = 7200\nnet.ipv4.ip_forward=1\n")
    overrides = sysctl_overrides(Host(root))
    assert [(o.key, o.path, o.value, o.ours) for o in overrides] == [
        ("net.ipv4.tcp_keepalive_time", "/etc/sysctl.conf", "7200", "600")
    ]
    (root / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")  # as EL9 ships it
    assert [o.path for o in sysctl_overrides(Host(root))] == ["/etc/sysctl.conf (read as /etc/sysctl.d/99-sysctl.conf)"]
    (root / "etc/sysctl.d/99-sysctl.conf").unlink()
    (root / "etc/sysctl.d/99-sysctl.conf").symlink_to("/etc/sysctl.conf")  # absolute: still inside the root
    assert [o.value for o in sysctl_overrides(Host(root))] == ["7200"]


def test_only_files_read_after_ours_count_and_the_last_one_wins(tmp_path: Path) -> None:
    root = tmp_path / "node"
    write(root, "/etc/sysctl.d/50-early.conf", "vm.swappiness = 60\n")  # read before ours: ours wins
    write(root, "/usr/lib/sysctl.d/95-vendor.conf", "vm.max_map_count = 65530\nkernel.pid_max = 32768\n")
    write(root, "/etc/sysctl.d/95-vendor.conf", "kernel.pid_max = 32768\n")  # hides the /usr/lib file
    write(root, "/etc/sysctl.d/97-site.conf", "-net/ipv4/tcp_fin_timeout = 60\n")
    write(root, "/etc/sysctl.d/98-site.conf", "net.ipv4.tcp_fin_timeout = 30\n")  # puts ours back
    overrides = sysctl_overrides(Host(root))
    assert [(o.key, o.path) for o in overrides] == [("kernel.pid_max", "/etc/sysctl.d/95-vendor.conf")]


def test_plan_and_preflight_name_the_file_and_value(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from k8s_install.bundle_format.bundle import Bundle
    from k8s_install.engine import Node
    from k8s_install.node.state import State
    from k8s_install.settings import NodeSettings
    from k8s_install.steps.preflight import sysctl_warnings

    root = tmp_path / "node"
    write(root, "/etc/sysctl.conf", "net.ipv4.tcp_keepalive_time = 7200\n")
    host = Host(root)
    node = Node(
        host,
        State(host),
        Bundle(tmp_path, EMPTY_MANIFEST),
        NodeSettings(role="worker", first=False, name="n", ip="1.1.1.1"),
    )
    assert sysctl_warnings(node) == [
        "/etc/sysctl.conf sets net.ipv4.tcp_keepalive_time = 7200, and is read after /etc/sysctl.d/90-k8s.conf "
        "(= 600): at boot its value wins; remove the line there, or set 600"
    ]
