"""The bundle many tests read: `bundler build --allow-incomplete` of the default stand-in release
(tests/conftest.py StandInRelease), built once per test run for every worker (tests/support/session_cache.py)
and handed to each caller as its own copy of the tarball. The build is reproducible (SOURCE_DATE_EPOCH), so
a copy is the bundle the caller would have built itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support import session_cache
from tests.support.http_server import MirrorServer

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def stand_in_tarball(into: Path) -> Path:
    """A copy of the stand-in bundle's tarball at `into`/TOP.tar (`into` is created)."""
    into.mkdir(parents=True, exist_ok=True)
    shared = session_cache.built_once(session_cache.key_of("stand-in bundle", TOP), _build)
    if shared is None:
        _build(into / ".build")
        shutil.move(str(into / ".build" / f"{TOP}.tar"), into / f"{TOP}.tar")
        shutil.rmtree(into / ".build")
    else:
        shutil.copy2(shared / f"{TOP}.tar", into / f"{TOP}.tar")
    return into / f"{TOP}.tar"


def _build(folder: Path) -> None:
    from tests.conftest import StandInRelease, run_bundler  # tests/conftest.py imports tests.support modules

    folder.mkdir(parents=True, exist_ok=True)
    mirror = MirrorServer().start()
    try:
        release = StandInRelease(mirror, folder)
        result = run_bundler(
            "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
            "--cache", str(folder / "cache"), "--output", str(folder / "out"),
        )  # fmt: skip
    finally:
        mirror.stop()
    assert result.returncode == 0, result.stderr
    (folder / "out" / f"{TOP}.tar").rename(folder / f"{TOP}.tar")
    for name in ("cache", "out", "release.yaml"):
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
