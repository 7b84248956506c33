"""A power cut between two of the installer's writes: what the next run (or reset) finds must not pass for a
hand edit, nor be undone twice. In-process on a --root node; the lab cuts a live node the same way
(tests/lab/test_live_powercut.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import EMPTY_MANIFEST
from k8s_install.engine import Node
from k8s_install.node.atomic import copy_atomically, make_folders
from k8s_install.node.host import Host
from k8s_install.node.state import State, edited_path_for
from k8s_install.node.undo import undo_file
from k8s_install.settings import NodeSettings
from k8s_install.steps.files import apply_file, sha256_bytes

CHRONY = "/etc/chrony.conf"
ORIGINAL = b"pool 2.rocky.pool.ntp.org iburst\n"
FIRST = b"# Managed\nserver 10.213.7.11 iburst\n"
SECOND = b"# Managed\nserver 10.213.7.12 iburst\n"


@pytest.fixture
def node(tmp_path: Path) -> Node:
    host = Host(tmp_path / "root")
    host.path(CHRONY).parent.mkdir(parents=True)
    host.path(CHRONY).write_bytes(ORIGINAL)
    return Node(host, State(host), Bundle(tmp_path, EMPTY_MANIFEST), NodeSettings("worker", False, "n", "1.2.3.4"))


def cut_after_recording(node: Node, data: bytes) -> None:
    """What the disk holds when the power goes after the state noted the write, before the rename landed."""
    record = node.state.file_record(CHRONY)
    node.state.record_file(CHRONY, sha256_bytes(data), record.get("backup") if record else None)


def test_a_write_cut_before_its_rename_is_not_taken_for_a_hand_edit(node: Node) -> None:
    apply_file(node, CHRONY, FIRST, 0o644)
    cut_after_recording(node, SECOND)
    assert node.host.path(CHRONY).read_bytes() == FIRST  # the old file, whole
    apply_file(node, CHRONY, SECOND, 0o644)  # the re-run
    assert node.host.path(CHRONY).read_bytes() == SECOND
    assert not node.host.path(edited_path_for(CHRONY)).exists()
    log = node.host.path("/var/log/k8s-install.log")
    assert not log.exists() or "edited by hand" not in log.read_text()


def test_reset_after_a_cut_write_restores_the_original(node: Node) -> None:
    apply_file(node, CHRONY, FIRST, 0o644)
    cut_after_recording(node, SECOND)
    reloaded = State(node.host)  # after the boot: the state as the disk has it
    assert undo_file(node.host, CHRONY, reloaded.file_record(CHRONY) or {}) == f"restored {CHRONY}"
    assert node.host.path(CHRONY).read_bytes() == ORIGINAL


def test_a_file_restored_by_a_cut_reset_is_left_alone_by_the_next(node: Node) -> None:
    """reset restores a file, then the power goes before it drops the file from its state: the next reset
    finds the original there and says so, instead of merging the installer's lines out of it again."""
    apply_file(node, CHRONY, FIRST, 0o644)
    node.host.path(CHRONY).write_bytes(FIRST + b"server 10.9.9.9 iburst\n")  # the operator's line
    record = node.state.file_record(CHRONY) or {}
    first = undo_file(node.host, CHRONY, record)
    assert "kept your later edits" in first
    kept = node.host.path(CHRONY).read_bytes()
    assert kept == ORIGINAL + b"server 10.9.9.9 iburst\n"
    undo_file(node.host, CHRONY, record)  # the reset run again over the same record
    assert node.host.path(CHRONY).read_bytes() == kept
    plain = Host(node.host.root)
    plain.path(CHRONY).write_bytes(ORIGINAL)
    assert undo_file(plain, CHRONY, record) == f"{CHRONY} is already the original"


def test_copies_keep_the_mode_and_leave_no_temporary(tmp_path: Path) -> None:
    source = tmp_path / "shadow"
    source.write_bytes(b"root:x\n")
    source.chmod(0o600)
    target = tmp_path / "kept" / "deeper" / "shadow.orig"
    make_folders(target.parent, 0o700)
    copy_atomically(source, target)
    copy_atomically(source, target)  # over an earlier copy
    assert target.read_bytes() == b"root:x\n" and target.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "kept").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in target.parent.iterdir()) == ["shadow.orig"]
