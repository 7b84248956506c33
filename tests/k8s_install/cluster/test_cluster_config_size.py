"""A cluster.yaml far beyond any real cluster is refused at once with one clear line, by the loader and by
both commands that check it (`bundler cluster check`, `k8s-install.pyz config check`).

Regression: a 10 MB cluster.yaml hung both (pure-Python YAML, then a duplicate check over every pair of
nodes). What the refusals say is asserted here; how fast they come is measured by `make bench`
(tests/bench/cluster_config.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from k8s_install.cluster.config import (
    LONGEST_NODE_ENTRY,
    MAX_CONFIG_BYTES,
    MAX_NODES,
    load_cluster_config,
    parse_cluster_config,
)
from k8s_install.cluster.secrets import load_secrets
from k8s_install.cluster.starter import starting_config_text
from k8s_install.errors import InstallError
from tests.conftest import REPO, run_bundler
from tests.support.cluster import seed_data


def with_nodes(count: int) -> dict:
    """The seed cluster with `count` workers added (unique names and IPs in a 10.200.0.0/16 node network)."""
    data = seed_data(networks={"nodes": "10.200.0.0/16", "pods": "172.16.0.0/12", "services": "10.96.0.0/12"})
    planes = [dict(node, ip=f"10.200.0.{11 * (i + 1)}") for i, node in enumerate(data["nodes"][:3])]
    workers = [
        {"name": f"w{i}", "ip": f"10.200.{1 + (i >> 8)}.{i & 255}", "role": "worker"} for i in range(1, count + 1)
    ]
    return dict(data, api={"vip": "10.200.0.240"}, nodes=planes + workers)


def refused(load: Callable[[], object]) -> str:
    """The refusal's message."""
    with pytest.raises(InstallError) as caught:
        load()
    return str(caught.value)


def test_a_10_mb_file_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the 10 MB file reached the YAML parser")

    monkeypatch.setattr("k8s_install.cluster.config.parse_cluster_config", parse)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(seed_data()) + "# padding\n" * (10 * 1024 * 1024 // 10))
    message = refused(lambda: load_cluster_config(path))
    assert message == (
        f"{path}: 10240 KiB, far more than a cluster config "
        f"(at most {MAX_CONFIG_BYTES // 1024} KiB, {MAX_NODES} nodes): is this the right file?"
    )


def test_more_nodes_than_any_cluster_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(with_nodes(2000), default_flow_style=None, width=200))
    message = refused(lambda: load_cluster_config(path))
    assert message.endswith(f"nodes: 2003 nodes; this installer sets up at most {MAX_NODES} per cluster")


def test_a_duplicate_ip_among_the_most_nodes_names_both_nodes(tmp_path: Path) -> None:
    data = with_nodes(MAX_NODES - 3)
    data["nodes"][-1]["ip"] = data["nodes"][5]["ip"]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data, default_flow_style=None, width=200))
    message = refused(lambda: load_cluster_config(path))
    assert f"nodes[{MAX_NODES - 1}].ip: {data['nodes'][5]['ip']} is also the IP of nodes[5] (w3)" in message
    del data["nodes"][-1]
    path.write_text(yaml.safe_dump(data, default_flow_style=None, width=200))
    assert len(load_cluster_config(path).config.nodes) == MAX_NODES - 1


def test_both_commands_refuse_the_10_mb_file_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(seed_data()) + "# padding\n" * (10 * 1024 * 1024 // 10))
    line = f"{path}: 10240 KiB, far more than a cluster config"
    bundler = run_bundler("cluster", "check", str(path))
    assert bundler.returncode == 1 and bundler.stderr.count("\n") == 1 and line in bundler.stderr
    env = dict(os.environ, PYTHONPATH=str(REPO))
    installer = subprocess.run(
        [sys.executable, "-m", "k8s_install", "config", "check", "--config", str(path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert installer.returncode == 1 and installer.stderr.count("\n") == 1 and line in installer.stderr


def test_a_device_or_pipe_is_read_with_a_bound(tmp_path: Path) -> None:
    """stat() says 0 bytes for /dev/zero: the read itself stops (it used to read until memory ran out)."""
    with pytest.raises(
        InstallError, match=rf"/dev/zero: over {MAX_CONFIG_BYTES // 1024} KiB, far more than a cluster config"
    ):
        load_cluster_config(Path("/dev/zero"))
    with pytest.raises(InstallError, match=r"/dev/zero: more than 64 KiB: not a cluster secrets file"):
        load_secrets(Path("/dev/zero"), "seed")


def maximal_config() -> str:
    """The starting file (comments included) with MAX_NODES node entries as long as valid ones get: 63-character
    names, 15-character IPs and interfaces, every value quoted, 4-space indents, CRLF line ends."""
    entries = []
    for index in range(MAX_NODES):
        role = "control-plane" if index < 3 else "worker"
        entries.append(
            f'    - name: "{index:04d}-{"n" * 58}"\n'
            f'      ip: "192.168.{100 + index // 150}.{100 + index % 150}"\n'
            f'      role: "{role}"\n'
            f'      interface: "enp{index:04d}s0f1np1"\n'
        )
    text = starting_config_text("k8s-cluster", "1.29.6")
    head, rest = text.split("\nnodes:\n", 1)
    tail = rest[rest.index("\nntp:") :]
    head = head.replace("nodes: 192.168.10.0/24", "nodes: 192.168.0.0/16").replace(
        "pods: 10.244.0.0/16", "pods: 10.244.0.0/14"
    )
    return (head + "\nnodes:\n" + "".join(entries) + tail).replace("\n", "\r\n")


def test_the_largest_valid_config_is_within_the_size_cap(tmp_path: Path) -> None:
    """Regression: 1000 nodes with long valid names in block style passed the node limit but not the 128 KiB cap
    ("is this the right file?"). The size cap now follows from the node cap and the longest valid entry."""
    text = maximal_config()
    assert len(text.encode()) <= MAX_CONFIG_BYTES
    path = tmp_path / "cluster.yaml"
    path.write_bytes(text.encode())
    config = load_cluster_config(path, "1.29.6").config
    assert len(config.nodes) == MAX_NODES and len(config.nodes[-1].name) == 63
    assert config.nodes[-1].interface == f"enp{MAX_NODES - 1:04d}s0f1np1"
    as_pyyaml_writes_it = yaml.safe_dump(yaml.safe_load(text), default_flow_style=False, sort_keys=False)
    assert len(as_pyyaml_writes_it.encode()) <= MAX_CONFIG_BYTES


def test_the_size_cap_follows_from_the_node_cap() -> None:
    assert MAX_NODES * len(LONGEST_NODE_ENTRY.encode()) <= MAX_CONFIG_BYTES
    assert MAX_CONFIG_BYTES < 1024 * 1024  # still refuses the wrong file before the parser spends minutes on it


POD_NETWORK_HINTS = [
    # (nodes in the cluster, networks.pods given, the hint): the base address is kept when it starts a network
    # of the size needed and overlaps nothing; else the network holding it; else 10.244.0.0.
    (1000, "10.244.0.0/16", "use /14 or larger, e.g. 10.244.0.0/14"),
    (300, "10.246.0.0/16", "use /15 or larger, e.g. 10.246.0.0/15"),
    (300, "10.245.0.0/16", "use /15 or larger, e.g. 10.244.0.0/15"),
    (300, "10.96.0.0/16", "use /15 or larger, e.g. 10.244.0.0/15"),  # 10.96.0.0/15 holds services 10.97.0.0/16
    (300, "172.20.0.0/17", "use /15 or larger, e.g. 172.20.0.0/15"),
    (5, "10.244.0.0/24", "use /21 or larger, e.g. 10.244.0.0/21"),
]


@pytest.mark.parametrize("count,pods,hint", POD_NETWORK_HINTS)
def test_a_pod_network_too_small_for_the_nodes_gets_a_hint_that_fits(count: int, pods: str, hint: str) -> None:
    data = with_nodes(count - 3)
    data["networks"].update(pods=pods, services="10.97.0.0/16")
    with pytest.raises(InstallError) as caught:
        parse_cluster_config(yaml.safe_dump(data), "cluster.yaml", "1.29.6")
    assert str(caught.value) == (
        f"cluster.yaml: networks.pods: {pods} is too small for {count} nodes: each node takes a /24 of it; {hint}"
    )
    data["networks"]["pods"] = hint.rsplit(" ", 1)[1]
    assert len(parse_cluster_config(yaml.safe_dump(data), "cluster.yaml", "1.29.6").config.nodes) == count
