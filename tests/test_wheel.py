"""The builder as a user installs it: sdist and wheel built from a copy of the source tree, installed into
a fresh venv, knows its releases and builds a bundle from a local mirror, with no checkout in sight."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from bundler.paths import supported_versions
from tests.conftest import REPO
from tests.support.http_server import MirrorServer
from tests.support.node_bundle import TOP, node_release_manifest

SKIP = (".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source tree without build leftovers or virtual environments."""
    copy = tmp_path_factory.mktemp("source") / "k8s-offline-bundler"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*SKIP))
    return copy


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    if subprocess.run([sys.executable, "-c", "import build, wheel"], capture_output=True).returncode != 0:
        pytest.skip("needs the build and wheel packages (the test extra)")
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    built = subprocess.run(  # sdist first, then the wheel from the sdist: proves the sdist carries the data
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith("manifests/k8s-1.29.6.yaml") for name in names)
    assert any(name.endswith("checksums/k8s-1.29.6.sha256") for name in names)
    assert not any(name.startswith("tests/") for name in names)
    # the runtime dependencies come from this interpreter's site-packages (no network in tests); the
    # project itself only from the wheel
    environment = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(environment)], check=True)
    pip = [str(environment / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    installed = subprocess.run(pip + [str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    return environment


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SOURCE_DATE_EPOCH"] = "1700000000"
    return subprocess.run([str(venv / "bin" / "bundler"), *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_installed_bundler_is_the_wheel_and_knows_its_releases(venv: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import bundler; print(bundler.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(venv))
    unknown = run(venv, "build", "--k8s", "9.9.9", cwd=tmp_path)
    assert unknown.returncode == 2 and all(v in unknown.stderr for v in supported_versions()), unknown.stderr
    newest = supported_versions()[-1]  # the installed copy carries its release manifests
    init = run(venv, "cluster", "init", "--dir", str(tmp_path / "site"), "--k8s", newest, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert f"kubernetes_version: {newest}" in (tmp_path / "site" / "cluster.yaml").read_text()


def test_installed_bundler_builds_a_bundle_from_a_local_mirror(venv: Path, tmp_path: Path, python39: str) -> None:
    mirror = MirrorServer().start()
    try:
        release = tmp_path / "release.yaml"
        release.write_text(yaml.safe_dump(node_release_manifest(mirror)))
        built = run(venv, "build", "--manifest", str(release), "--mirror", mirror.url, "--cache",
                    str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--allow-incomplete",
                    cwd=tmp_path)  # fmt: skip
    finally:
        mirror.stop()
    assert built.returncode == 0, built.stderr
    tarball = tmp_path / "out" / f"{TOP}.tar"
    assert run(venv, "verify", str(tarball), cwd=tmp_path).returncode == 0
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    pyz = subprocess.run([python39, str(tmp_path / TOP / "k8s-install.pyz"), "verify"],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert pyz.returncode == 0 and "bundle OK" in pyz.stdout, pyz.stderr


def test_pipx_install_of_the_source_folder(source: Path, tmp_path: Path) -> None:
    """`pipx install .` (the runtime dependencies from this interpreter, no network in tests)."""
    if shutil.which("pipx") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pipx is missing (installed by .ci/run)")
        pytest.skip("pipx is not installed")
    env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"))
    installed = subprocess.run(
        ["pipx", "install", "--python", sys.executable, "--system-site-packages",
         "--pip-args=--no-index --no-deps --no-build-isolation", str(source)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    unknown = subprocess.run([str(tmp_path / "bin" / "bundler"), "build", "--k8s", "9.9.9"],
                             capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert unknown.returncode == 2 and "supported versions: 1.29.6" in unknown.stderr, unknown.stderr
