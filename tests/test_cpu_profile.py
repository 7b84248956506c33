"""`make profile`'s parts: the pytest plugin records each test's CPU, the report sums them per xdist group."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.support.cpu_profile import totals


def test_each_test_gets_a_record_and_the_report_sums_its_group(tmp_path: Path) -> None:
    (tmp_path / "test_busy.py").write_text(
        "import subprocess, sys\n"
        "def test_child_works():\n"
        "    subprocess.run([sys.executable, '-c', 'sum(range(3_000_000))'], check=True)\n"
        "def test_idle():\n"
        "    pass\n"
    )
    profile = tmp_path / "profile.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.cpu_profile", f"--cpu-profile={profile}",
         "-p", "no:randomly", "-p", "no:cacheprovider", str(tmp_path / "test_busy.py")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    records = {record["id"].split("::")[1]: record for record in map(json.loads, profile.read_text().splitlines())}
    assert set(records) == {"test_child_works", "test_idle"}
    assert records["test_child_works"]["children"] > 0  # the child it waited for is counted
    assert records["test_idle"]["children"] == 0

    report = subprocess.run([sys.executable, "-m", "tests.support.cpu_profile", str(profile)], cwd=REPO,
                            capture_output=True, text=True)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[-1].split()[-2:] == ["2", "all"]

    missing = subprocess.run([sys.executable, "-m", "tests.support.cpu_profile", str(tmp_path / "nope")], cwd=REPO,
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 1 and missing.stderr.startswith("cpu_profile: error: cannot read")


def test_groups_are_the_xdist_group_else_the_file() -> None:
    records = [
        {"id": "tests/lab/test_a.py::test_one@lab", "wall": 2.0, "self": 1.0, "children": 4.0},
        {"id": "tests/lab/test_b.py::test_two@lab", "wall": 1.0, "self": 0.5, "children": 0.5},
        {"id": "tests/test_c.py::test_three", "wall": 1.0, "self": 0.1, "children": 0.0},
    ]
    assert [(t.group, t.tests, t.cpu) for t in totals(records)] == [("lab", 2, 6.0), ("tests/test_c.py", 1, 0.1)]
