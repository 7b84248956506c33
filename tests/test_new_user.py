"""What a new user hits first, each run for real: `python -m bundler`, and the built k8s-install.pyz under
Python 3.9 (issue 13, "small things a new user hit")."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

from bundler.zipapp import build_installer
from tests.conftest import REPO, StandInRelease, run_bundler

BUNDLER_HELP = (
    [], ["build"], ["verify"], ["inspect"], ["images"], ["images", "push"], ["cluster"], ["cluster", "init"],
    ["cluster", "check"],
)  # fmt: skip
TOP = "k8s-bundle-1.29.6-rocky9-amd64"
PYZ_HELP = ([], ["plan"], ["preflight"], ["verify"], ["images"], ["images", "push"], ["config"], ["reset"])


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_installer(tmp_path_factory.mktemp("pyz") / "k8s-install.pyz", 1700000000)


@pytest.fixture
def bundle(release: StandInRelease, tmp_path: Path) -> Path:
    """A real bundle, built from stand-in artifacts and unpacked."""
    result = run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    return tmp_path / TOP


def run_pyz(
    python39: str, pyz: Path, *args: str, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python39, str(pyz), *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=120
    )


def test_help_and_readme_explain_themselves_without_the_seed_guide(pyz: Path, python39: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    for words in BUNDLER_HELP:
        result = run_bundler(*words, "--help")
        assert result.returncode == 0, result.stderr
        assert "seed" not in result.stdout.lower(), words
    for words in PYZ_HELP:
        result = run_pyz(python39, pyz, *words, "--help", env=env)
        assert result.returncode == 0, result.stderr
        assert "seed" not in result.stdout.lower(), words
    assert "seed" not in (REPO / "README.md").read_text(encoding="utf-8").lower()


def test_the_sysctl_file_explains_its_values_without_the_seed_guide() -> None:
    from installer.steps.kernel import sysctl_conf

    text = sysctl_conf()
    assert "# guides set 202808 then 52706963" in text and "seed" not in text.lower()


def test_cluster_check_of_a_missing_file_names_both_init_commands(pyz: Path, python39: str, tmp_path: Path) -> None:
    missing = tmp_path / "cluster.yaml"
    result = run_bundler("cluster", "check", str(missing))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"bundler: error: {missing}: no such file; write one with `bundler cluster init` "
        "(on a node: `k8s-install.pyz config init`)\n"
    )
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    on_node = run_pyz(python39, pyz, "config", "check", "--config", str(missing), env=env)
    assert on_node.returncode == 1
    assert "`bundler cluster init` (on a node: `k8s-install.pyz config init`)" in on_node.stderr


def test_both_tools_print_sizes_in_binary_units(bundle: Path, python39: str, tmp_path: Path) -> None:
    builder = run_bundler("verify", str(bundle))
    node = run_pyz(python39, bundle / "k8s-install.pyz", "verify", env=dict(os.environ, SHIV_ROOT=str(tmp_path / "s")))
    assert builder.returncode == 0 and node.returncode == 0, builder.stderr + node.stderr
    ok_lines = [
        [line for line in result.stdout.splitlines() if line.startswith("bundle OK: ")] for result in (builder, node)
    ]
    assert ok_lines[0] == ok_lines[1] and re.match(r"bundle OK: 6 files, \d+\.\d MiB, ", ok_lines[0][0]), ok_lines
    inspected = run_bundler("inspect", str(bundle))
    assert inspected.returncode == 0, inspected.stderr
    for text in (builder.stdout, node.stdout, inspected.stdout):
        assert not re.search(r"\d ?([KMG]B|kB|bytes)\b", text), text
