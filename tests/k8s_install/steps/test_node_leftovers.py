"""Temporary files of a write killed by SIGKILL (`.NAME.XXXXXXXX` beside the file) are removed by the next
run and by reset. The writer here is the installer's own, killed for real while it writes."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.commands.reset import run_reset
from k8s_install.engine import Change, Node, Step, converge
from k8s_install.node.atomic import leftover_temporaries
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.files import plan_file
from k8s_install.steps.leftovers import Leftovers
from tests.conftest import REPO

ROOT = REPO
KILLED_WRITER = """
import os, sys, time
from pathlib import Path
from k8s_install.node.atomic import write_atomically

def stall(descriptor):
    print("writing", flush=True)
    time.sleep(120)

os.fsync = stall  # the bytes are in the temporary file; the rename never comes
write_atomically(Path(sys.argv[1]), b"new containerd" * 1000, 0o755, overwrite=True)
"""


def killed_write(path: Path) -> List[Path]:
    """Start the installer's atomic writer on `path`, SIGKILL it mid-write; return the temporaries it left."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == b"writing\n"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return leftover_temporaries(path)


class Binary(Step):
    name = "runtime-binaries"
    title = name

    def plan(self, node: Node) -> List[Change]:
        return plan_file(node, "/usr/local/bin/containerd", b"containerd", 0o755, ("containerd",))


@pytest.fixture
def node(tmp_path: Path) -> Node:
    host = Host(tmp_path / "root")
    return Node(
        host,
        State(host),
        Bundle(tmp_path, EMPTY_MANIFEST),
        NodeSettings(role="worker", first=False, name="n", ip="1.2.3.4"),
    )


def test_the_next_run_removes_what_a_killed_write_left(node: Node) -> None:
    converge(node, [Binary()], dry_run=False, echo=lambda line: None)
    target = node.host.path("/usr/local/bin/containerd")
    left = killed_write(target)
    assert [path.name[: len(".containerd.")] for path in left] == [".containerd."]  # the exact case reported
    assert target.read_bytes() == b"containerd"  # the file itself is whole
    printed: List[str] = []
    report = converge(node, [Leftovers(), Binary()], dry_run=False, echo=printed.append)
    assert f"    remove /usr/local/bin/{left[0].name}" in printed
    assert report.change_count == 1 and not left[0].exists()
    assert converge(node, [Leftovers(), Binary()], dry_run=False, echo=lambda line: None).change_count == 0


def test_reset_removes_what_a_killed_write_left(node: Node, capsys: pytest.CaptureFixture) -> None:
    converge(node, [Binary()], dry_run=False, echo=lambda line: None)
    left = killed_write(node.host.path("/usr/local/bin/containerd")) + killed_write(node.state.path)
    assert len(left) == 2
    assert run_reset(argparse.Namespace(root=str(node.host.root), yes=True, verbose=False)) == 0
    assert not any(path.exists() for path in left)
    assert not (node.host.root / "usr/local/bin").exists() or not list((node.host.root / "usr/local/bin").iterdir())


def test_only_the_writers_own_names_count_as_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "hosts"
    for name in (".hosts.swp", ".hosts.abcdefgh.bak", "hosts.abcdefgh", ".hosts.ab_de9gh"):
        (tmp_path / name).write_text("x")
    assert [path.name for path in leftover_temporaries(target)] == [".hosts.ab_de9gh"]
