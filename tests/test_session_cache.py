"""tests/support/session_cache.py: what the workers of one run build once and share."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from tests.support import session_cache


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(session_cache, "FOLDER", tmp_path / "session-cache")
    return tmp_path


def test_a_shared_tarball_is_built_once_and_each_caller_gets_its_own_copy_of_it_alone(folder: Path) -> None:
    builds: List[Path] = []

    def build(work: Path) -> Path:
        builds.append(work)
        (work / "site").mkdir(parents=True)
        (work / "site" / "cluster-secrets.yaml").write_text("one worker's secrets\n")
        tarball = work / "out" / "bundle.tar"
        tarball.parent.mkdir()
        tarball.write_bytes(b"tar bytes")
        return tarball

    first = session_cache.shared_tarball(("bundle", 1), folder / "first", build)
    second = session_cache.shared_tarball(("bundle", 1), folder / "second", build)
    assert len(builds) == 1
    assert first == folder / "first" / "bundle.tar" and second == folder / "second" / "bundle.tar"
    assert first.read_bytes() == second.read_bytes() == b"tar bytes"
    second.write_bytes(b"changed by a test")  # a copy: the shared one and the first caller's stay
    assert session_cache.shared_tarball(("bundle", 1), folder / "third", build).read_bytes() == b"tar bytes"
    assert not list((folder / "session-cache").rglob("cluster-secrets.yaml"))  # only the tarball is kept

    other = session_cache.shared_tarball(("bundle", 2), folder / "other", build)
    assert len(builds) == 2 and other.read_bytes() == b"tar bytes"


def test_without_a_session_folder_the_caller_builds_in_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_cache, "FOLDER", None)

    def build(work: Path) -> Path:
        work.mkdir(parents=True)
        (work / "made.tar").write_bytes(b"x")
        return work / "made.tar"

    assert session_cache.shared_tarball(("bundle",), tmp_path / "own", build) == tmp_path / "own" / "made.tar"
