"""Power cuts during a live upgrade (issue 24): the worker upgraded 1.29.6 -> 1.29.15 with its power cut at the
start of each upgrade step that changes something (tests/lab/powercut.py), booted, checked, run again.

It runs after test_live_upgrade.py (file order), which leaves the three nodes on 1.29.15 after uninterrupted
upgrades: the worker's files and services then are the reference. The worker is reset, installed on 1.29.6
again (joining the 1.29.15 control plane, a skew kubeadm allows), and upgraded through the chain of cuts; it
ends on 1.29.15 as test_live_upgrade_minor.py expects. Alone, it brings the nodes to 1.29.15 first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from tests.lab.cluster import LiveCluster
from tests.lab.conftest import TIMINGS
from tests.lab.powercut import (
    check_after_boot,
    cut_at_each_boundary,
    managed_paths,
    snapshot,
    step_boundaries,
    unit_states,
)
from tests.lab.test_live_powercut import SITE_DROP_IN, SITE_DROP_IN_TEXT, UNITS, WORKER, report_cuts
from tests.lab.test_live_upgrade_minor import bring_to_next_release, on_release
from tests.lab.upgrade import NEXT_RELEASE, release_dir


def site_drop_in_lost(node):  # type: ignore[no-untyped-def]
    drop_in = node.path(SITE_DROP_IN)
    return [] if drop_in.is_file() and drop_in.read_bytes() == SITE_DROP_IN_TEXT else [SITE_DROP_IN]


@pytest.fixture(scope="module")
def upgraded(live: LiveCluster, next_delta: Path) -> LiveCluster:
    for name in ("k8s-mn01", "k8s-mn02", WORKER):
        if not on_release(live, name, NEXT_RELEASE):
            bring_to_next_release(live, name, next_delta)
    return live


def test_power_cut_at_each_step_of_an_upgrade(
    upgraded: LiveCluster, record_property: Callable[[str, object], None], tmp_path: Path
) -> None:
    cluster, node = upgraded, upgraded[WORKER]
    paths = managed_paths(node)
    reference = snapshot(node, paths)
    units = unit_states(node, UNITS)
    assert cluster.install(WORKER, "reset").result.returncode == 0
    drop_in = node.path(SITE_DROP_IN)  # the operator's, made before the cut
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_bytes(SITE_DROP_IN_TEXT)
    installed = cluster.install(WORKER)
    assert installed.result.returncode == 0, installed.output
    old = snapshot(node, paths)
    argv = ["./k8s-install.pyz", "upgrade", "--role", "worker", "--allow-incomplete", "--yes"]
    started = time.monotonic()
    cuts, finished = cut_at_each_boundary(
        cluster, WORKER, argv, step_boundaries,
        lambda: check_after_boot(node, old, reference, site_drop_in_lost, UNITS), tmp_path,
        cwd=release_dir(NEXT_RELEASE),
    )  # fmt: skip
    TIMINGS[f"power cuts, upgrade ({len(cuts)})"] = time.monotonic() - started
    wrong = report_cuts(record_property, "upgrade", cuts)
    assert len(cuts) >= 3, [cut.boundary for cut in cuts]
    assert finished.returncode == 0, finished.stdout
    assert f"upgrade done: {WORKER} runs {NEXT_RELEASE}" in finished.stdout, finished.stdout
    assert on_release(cluster, WORKER, NEXT_RELEASE)
    assert snapshot(node, paths) == reference
    assert unit_states(node, UNITS) == units
    assert wrong == []
