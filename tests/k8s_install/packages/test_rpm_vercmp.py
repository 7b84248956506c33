"""The node's rpm version comparison (preflight of the assumed packages): table-driven, and cross-checked
against librpm itself."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from k8s_install.packages.assumed_rpms import Capability, satisfies
from k8s_install.packages.rpmvercmp import compare_evr, rpmvercmp

VERSION_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1),
    ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("5.5p1", "5.5p2", -1), ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1), ("xyz10", "xyz10.1", -1), ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1),
    ("8", "xyz.4", 1), ("5.6.7", "5.6.7", 0), ("1b.fc17", "1b.fc17", 0), ("1b.fc17", "1.fc17", -1),
    ("1.0", "1.00", 0), ("1.01", "1.1", 0), ("1.010", "1.9", 1), ("1.0.0", "1.0", 1), ("a", "1", -1),
    ("1_0", "1.0", 0), ("1+0", "1.0", 0), ("2.5.1-r1", "2.5.1", 1), ("1.29.6", "1.29.10", -1),
    ("150500.1.1", "150500.2.1", -1), ("1.el9", "1.el9_4", -1),
    # tilde sorts before everything, even the end of the string
    ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0", "1.0~rc1", 1), ("1.0~", "1.0", -1),
    # caret sorts after the end of the string, before any further part
    ("1.0^", "1.0", 1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.0.1", -1), ("1.0^git1", "1.0^git2", -1),
    ("1.0^git1", "1.01", -1), ("1.0^git1", "1.0.0", -1), ("1.0^20160101", "1.0.1", -1),
    ("1.0^1", "1.0~rc1", 1),
    ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0^git1~pre", "1.0^git1", -1),
]  # fmt: skip


@pytest.mark.parametrize(("left", "right", "expected"), VERSION_CASES)
def test_rpmvercmp(left: str, right: str, expected: int) -> None:
    assert rpmvercmp(left, right) == expected
    assert rpmvercmp(right, left) == -expected


EVR_CASES = [
    ("1:1.0-1", "2.0-1", 1), ("0:1.0-1", "1.0-1", 0), ("2:6.2-1", "6.5-1", 1), ("1.0-2", "1.0-10", -1),
    ("1.29.6-150500.1.1", "1.29.6-150500.2.1", -1), ("1.0", "1.0-5", 0),  # no release: any release
]  # fmt: skip


@pytest.mark.parametrize(("left", "right", "expected"), EVR_CASES)
def test_compare_evr(left: str, right: str, expected: int) -> None:
    assert compare_evr(left, right) == expected


MATCH_CASES = [
    ("kubelet = 1.29.6-150500.1.1", "kubelet >= 1.19.0", True),
    ("kubelet = 1.18.0-1", "kubelet >= 1.19.0", False),
    ("kubernetes-cni = 1.3.0-150500.1.1", "kubernetes-cni >= 1.2.0", True),
    ("kubeadm = 1.29.6-150500.1.1", "kubeadm = 1.29.6", True),  # a pin without release takes any release
    ("kubeadm = 1.30.0-150500.1.1", "kubeadm = 1.29.6", False),
    ("iptables = 1.8.10-1", "iptables >= 1.4.21", True),
    ("ethtool = 2:6.2-1", "ethtool >= 6.5", True),  # epoch 2 beats epoch 0
    ("foo = 1.0-1", "foo < 1.0-2", True), ("foo = 1.0-2", "foo < 1.0-2", False),
    ("foo = 1.0-2", "foo <= 1.0-2", True), ("foo = 1.0-2", "foo > 1.0", False),
    ("foo >= 2.0", "foo < 3.0", True), ("foo < 2.0", "foo > 3.0", False),
    ("foo", "foo >= 99", True),  # an unversioned Provides satisfies any version
]  # fmt: skip


@pytest.mark.parametrize(("provide", "require", "expected"), MATCH_CASES)
def test_dependency_ranges_overlap_as_rpm_decides(provide: str, require: str, expected: bool) -> None:
    assert satisfies(Capability.parse(provide), Capability.parse(require)) is expected


def _random_version(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 5)):
        parts.append(rng.choice(["0", "1", "2", "10", "01", "a", "b", "rc", "git", "9"]))
        parts.append(rng.choice([".", ".", "", "_", "~", "^", "+"]))
    return "".join(parts).strip() or "1"


def test_agrees_with_librpm_on_random_versions() -> None:
    system_python = Path("/usr/bin/python3")
    probe = (
        subprocess.run([str(system_python), "-c", "import rpm"], capture_output=True)
        if system_python.exists()
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("librpm's Python binding (python3-rpm) is not installed for /usr/bin/python3")
    rng = random.Random(1729)
    pairs = [(_random_version(rng), _random_version(rng)) for _ in range(3000)]
    script = (
        "import json, sys, rpm\n"
        "pairs = json.load(sys.stdin)\n"
        "print(json.dumps([rpm.labelCompare(('0', a, '1'), ('0', b, '1')) for a, b in pairs]))\n"
    )
    result = subprocess.run([str(system_python), "-c", script], input=json.dumps(pairs), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for (left, right), expected in zip(pairs, json.loads(result.stdout)):
        assert rpmvercmp(left, right) == expected, (left, right)
