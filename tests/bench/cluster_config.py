"""How long cluster.yaml's loader takes to refuse a file far beyond any cluster, against loading the largest
valid one (its baseline, measured in the same run): a check that grows with the file (parsing 10 MB, comparing
every pair of nodes) shows as a ratio far above 1. tests/k8s_install/cluster/test_cluster_config_size.py asserts
what the refusals say; this measures how fast they come."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import yaml

from k8s_install.cluster.config import MAX_NODES, load_cluster_config
from k8s_install.errors import InstallError
from tests.k8s_install.cluster.test_cluster_config_size import with_nodes
from tests.support.cluster import seed_data


def seconds(action: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        with contextlib.suppress(InstallError):  # the refusals are what is timed
            action()
        best = min(best, time.perf_counter() - started)
    return best


def run() -> List[str]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        largest = work / "largest.yaml"
        largest.write_text(yaml.safe_dump(with_nodes(MAX_NODES - 3), default_flow_style=None, width=200))
        huge = work / "huge.yaml"
        huge.write_text(yaml.safe_dump(seed_data()) + "# padding\n" * (10 * 1024 * 1024 // 10))
        duplicate = with_nodes(MAX_NODES - 3)
        duplicate["nodes"][-1]["ip"] = duplicate["nodes"][5]["ip"]
        duplicated = work / "duplicated.yaml"
        duplicated.write_text(yaml.safe_dump(duplicate, default_flow_style=None, width=200))
        baseline = seconds(lambda: load_cluster_config(largest))
        lines = [f"load the largest valid cluster.yaml ({MAX_NODES} nodes): {baseline:.3f} s (baseline)"]
        for label, path in (("refuse a 10 MB file", huge), ("refuse a duplicate IP among the most nodes", duplicated)):
            took = seconds(lambda path=path: load_cluster_config(path))
            lines.append(f"{label}: {took:.3f} s, {took / baseline:.2f}x the baseline")
        return lines
