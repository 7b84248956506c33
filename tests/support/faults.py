"""Fault cases (issue 24): each test injects one fault against real parts, checks the end state, and reports one
line, `FAULT <case>: survived, edits lost 0, half-applied 0`. The lines travel with the test reports (also from
pytest-xdist workers) and tests/conftest.py prints them, with their totals, at the end of the run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterable, List

FAULT_CASES = "fault cases"  # the user property of a test report that carries its fault lines
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}$")  # what write_atomically leaves when it is interrupted


def fault_line(case: str, survived: bool, edits_lost: int, half_applied: int) -> str:
    outcome = "survived" if survived else "NOT survived"
    return f"FAULT {case}: {outcome}, edits lost {edits_lost}, half-applied {half_applied}"


def report_fault(
    record_property: Callable[[str, object], None], case: str, survived: bool, edits_lost: int, half_applied: int
) -> str:
    """Print the case's line and attach it to the test's report; returns the line."""
    line = fault_line(case, survived, edits_lost, half_applied)
    print(line)
    record_property(FAULT_CASES, line)
    return line


def half_applied_files(
    root: Path, folders: Iterable[str] = ("etc", "usr/local", "opt/cni", "var/lib/k8s-install")
) -> List[str]:
    """What a reader of the node would find torn: the installer's state unreadable, temporaries of an
    interrupted write, or an empty file among those the installer manages."""
    found: List[str] = []
    state_path = root / "var/lib/k8s-install/state.json"
    managed: dict = {}
    if state_path.exists():
        try:
            managed = json.loads(state_path.read_text())["files"]
        except (ValueError, KeyError) as error:
            return [f"/var/lib/k8s-install/state.json unreadable: {error}"]
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file() and not path.is_symlink() and TEMPORARY.match(path.name):
                found.append(f"/{path.relative_to(root)} (temporary of an interrupted write)")
    for name in managed:
        target = root / name.lstrip("/")
        if target.is_file() and target.stat().st_size == 0:
            found.append(f"{name} (empty)")
    return found


def totals(lines: Iterable[str]) -> str:
    """The README's figures: faults injected, survived, edits lost, half-applied states found."""
    injected = survived = lost = torn = 0
    for line in lines:
        injected += 1
        survived += ": survived," in line
        numbers = re.findall(r"edits lost (\d+), half-applied (\d+)", line)
        if numbers:
            lost += int(numbers[0][0])
            torn += int(numbers[0][1])
    return f"faults injected {injected}, survived {survived}, edits lost {lost}, half-applied states found {torn}"
