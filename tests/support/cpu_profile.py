"""Where a test run's CPU goes. `pytest -p tests.support.cpu_profile --cpu-profile=FILE` appends one JSON line per
test: its id, its pytest-xdist group, its wall seconds, and the CPU seconds of the worker and of the processes the
worker waited for. `python -m tests.support.cpu_profile FILE` sums them per group, most CPU first. `make profile`
does both for the whole suite.

The suite is CPU-bound on two cores (docs/testing.md): its wall time falls only when its CPU-seconds fall, so
this is the figure to compare before and after a change. A process's CPU is counted when its parent waits for
it: a daemon's lands in the test whose fixture stops it (a module fixture's in the module's last test, the lab's
shared nodes in the first test after the lab). Compare groups, not single tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Tuple

import pytest


def _cpu_seconds() -> Tuple[float, float]:
    """CPU seconds of this process, and of the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-profile", metavar="FILE", help="append each test's CPU and wall seconds to FILE")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: object) -> Iterator[None]:
    path = item.config.getoption("--cpu-profile")
    if not path:
        yield
        return
    own_before, children_before = _cpu_seconds()
    started = time.monotonic()
    yield
    own_after, children_after = _cpu_seconds()
    record = {
        "id": item.nodeid,
        "wall": round(time.monotonic() - started, 3),
        "self": round(own_after - own_before, 3),
        "children": round(children_after - children_before, 3),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
    }
    with open(path, "a") as out:  # one short line per write: workers append to the same file
        out.write(json.dumps(record) + "\n")


@dataclass
class GroupTotal:
    group: str
    tests: int = 0
    wall: float = 0.0
    cpu: float = 0.0


def group_of(nodeid: str) -> str:
    """The pytest-xdist group ('...@group'), else the test's file."""
    return nodeid.rsplit("@", 1)[1] if "@" in nodeid else nodeid.split("::", 1)[0]


def totals(records: Iterable[dict]) -> List[GroupTotal]:
    """Per group, most CPU first."""
    groups: Dict[str, GroupTotal] = {}
    for record in records:
        name = group_of(record["id"])
        total = groups.setdefault(name, GroupTotal(name))
        total.tests += 1
        total.wall += record["wall"]
        total.cpu += record["self"] + record["children"]
    return sorted(groups.values(), key=lambda total: -total.cpu)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.cpu_profile", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="what --cpu-profile wrote")
    parser.add_argument("--top", type=int, default=40, help="groups to print (default 40)")
    arguments = parser.parse_args(argv)
    try:
        with open(arguments.file) as lines:
            records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as error:
        print(f"cpu_profile: error: cannot read {arguments.file}: {error}", file=sys.stderr)
        return 1
    groups = totals(records)
    print(f"{'CPU s':>8} {'wall s':>8} {'tests':>6}  group")
    for total in groups[: arguments.top]:
        print(f"{total.cpu:8.1f} {total.wall:8.1f} {total.tests:6d}  {total.group}")
    print(f"{sum(t.cpu for t in groups):8.1f} {sum(t.wall for t in groups):8.1f} {len(records):6d}  all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
