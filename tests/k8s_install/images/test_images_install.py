"""The installer imports the bundle's images into a real containerd (started by the test) and proves
they are there; the imported busybox runs under runc."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.errors import InstallError
from k8s_install.images.containerd_import import bundle_images, check_images_present, import_images, present_images
from tests.conftest import StandInRelease
from tests.support.containerd import Containerd
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry
from tests.support.session_cache import shiv_root
from tests.support.test_images import GREETING

pytestmark = [pytest.mark.daemons, pytest.mark.root]

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture
def unpacked(release: StandInRelease, registry: Registry, tmp_path: Path) -> Path:
    release.set_images(
        [f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0", "registry.k8s.io/pause:3.9"]
    )
    result = build_bundle(
        release, tmp_path, "--insecure-registry", registry.host,
        "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    return tmp_path / TOP


def test_import_then_every_image_is_present_and_runs(
    unpacked: Path, containerd: Containerd, registry: Registry
) -> None:
    with pytest.raises(InstallError, match=r"3 image\(s\) missing from containerd namespace k8s.io: .*pause:3.9"):
        check_images_present(load_bundle(unpacked), containerd.ctr, containerd.socket)
    first = import_images(load_bundle(unpacked), containerd.ctr, containerd.socket)
    names = sorted(image.name for image in bundle_images(load_bundle(unpacked)))
    assert first.imported == names and first.skipped == []
    listed = containerd.run_ctr("images", "ls")
    for image in bundle_images(load_bundle(unpacked)):
        assert any(line.split()[:1] == [image.name] and image.digest in line for line in listed.stdout.splitlines())
    assert check_images_present(load_bundle(unpacked), containerd.ctr, containerd.socket) == names
    run = containerd.run_ctr("run", "--rm", f"{registry.host}/test/busybox:1.0", "images-test-run")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == GREETING
    # a second import changes nothing
    before = present_images(containerd.ctr, containerd.socket)
    second = import_images(load_bundle(unpacked), containerd.ctr, containerd.socket)
    assert second.imported == [] and second.skipped == names
    assert present_images(containerd.ctr, containerd.socket) == before


def test_image_removed_from_containerd_is_imported_again(unpacked: Path, containerd: Containerd) -> None:
    import_images(load_bundle(unpacked), containerd.ctr, containerd.socket)
    assert containerd.run_ctr("images", "rm", "registry.k8s.io/pause:3.9").returncode == 0
    again = import_images(load_bundle(unpacked), containerd.ctr, containerd.socket)
    assert again.imported == ["registry.k8s.io/pause:3.9"]
    assert "registry.k8s.io/pause:3.9" in check_images_present(load_bundle(unpacked), containerd.ctr, containerd.socket)


def test_images_outside_k8s_io_do_not_count(unpacked: Path, containerd: Containerd) -> None:
    import_images(load_bundle(unpacked), containerd.ctr, containerd.socket, namespace="default")
    with pytest.raises(InstallError, match="missing from containerd namespace k8s.io"):
        check_images_present(load_bundle(unpacked), containerd.ctr, containerd.socket)


def test_containerd_not_running_gives_one_line(unpacked: Path, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="is containerd running"):
        import_images(load_bundle(unpacked), "/usr/bin/ctr", str(tmp_path / "no.sock"))


def test_pyz_images_under_python39(unpacked: Path, containerd: Containerd, python39: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    command = [
        python39,
        str(unpacked / "k8s-install.pyz"),
        "images",
        "--containerd-address",
        containerd.socket,
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "3 imported, 0 already present; all 3 bundled images are in containerd namespace k8s.io" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "0 imported, 3 already present" in second.stdout
    down = subprocess.run(command[:-1] + [str(tmp_path / "absent.sock")], env=env, capture_output=True, text=True)
    assert down.returncode == 1 and down.stderr.startswith("k8s-install.pyz: error: cannot list containerd images")
