"""pytest fixtures for image tests: test images pushed once per session, and a fresh registry per test
serving a copy of them (so a test may damage its copy)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import containerd as containerd_support
from tests.support import test_images
from tests.support.containerd import Containerd
from tests.support.registry import Registry
from tests.support.test_images import PushedImages, build_test_images


@pytest.fixture(scope="session")
def pushed_images(tmp_path_factory: pytest.TempPathFactory) -> PushedImages:
    missing = test_images.missing_tools()
    if missing:
        pytest.skip(f"image tests need {', '.join(missing)} (installed by .ci/run)")
    return build_test_images(tmp_path_factory.mktemp("test-images"))


@pytest.fixture
def registry_storage(pushed_images: PushedImages, tmp_path: Path) -> Path:
    copy = tmp_path / "registry-storage"
    shutil.copytree(pushed_images.storage, copy)
    return copy


@pytest.fixture
def registry(registry_storage: Path, tmp_path: Path) -> Iterator[Registry]:
    with Registry(registry_storage, tmp_path / "registry") as server:
        yield server


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    missing = containerd_support.missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/run)")
    # a short path: containerd's unix socket path must stay under 108 bytes
    work = Path(__import__("tempfile").mkdtemp(prefix="ctd-", dir="/tmp"))
    daemon = Containerd(work)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


def build_bundle(release, tmp_path: Path, *extra: str, out: str = "out", cache: str = "cache"):  # type: ignore[no-untyped-def]
    """`bundler build` of a stand-in release (files from the loopback mirror) plus images."""
    from tests.conftest import run_bundler

    return run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / cache), "--output", str(tmp_path / out),
        "--retries", "1", "--timeout", "5", *extra,
    )  # fmt: skip
