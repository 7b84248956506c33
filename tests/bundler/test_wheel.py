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

pytestmark = pytest.mark.slow

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
    # A venv of its own (no --system-site-packages: that would be the *base* interpreter's, which may hold
    # nothing). The project comes only from the wheel; its runtime dependencies from this test run's
    # site-packages, named explicitly after the venv's own (no network in tests).
    environment = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True)
    python = str(environment / "bin" / "python")
    add_dependencies(python, dependencies_folder(work))
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    installed = subprocess.run(pip + [str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    unmet = subprocess.run([python, "-c", UNMET_REQUIREMENTS], capture_output=True, text=True, cwd=work)
    assert unmet.returncode == 0 and unmet.stdout == "", unmet.stdout + unmet.stderr
    return environment


# Prints every runtime requirement of the installed wheel that the venv cannot import the distribution of.
UNMET_REQUIREMENTS = """
import importlib.metadata as metadata, re
for requirement in metadata.requires("k8s-offline-bundler") or []:
    if "extra ==" in requirement:
        continue
    name = re.split(r"[<>=!~;\\[ ]", requirement, maxsplit=1)[0]
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        print(requirement)
"""


def dependencies_folder(work: Path) -> Path:
    """The third-party packages of this test run (its site-packages folders, the test venv's first), without
    this project, as one folder of links: what a clean venv imports instead of downloading them."""
    folder = work / "dependencies"
    if folder.is_dir():
        return folder
    folder.mkdir(parents=True)
    for site in (Path(entry) for entry in sys.path):
        if site.name not in ("site-packages", "dist-packages") or not site.is_dir():
            continue
        for entry in sorted(site.iterdir()):
            own = entry.name.startswith(("k8s_offline_bundler", "__editable__", "__pycache__"))
            if own or entry.suffix == ".pth" or os.path.lexists(folder / entry.name):
                continue
            (folder / entry.name).symlink_to(entry)
    return folder


def add_dependencies(python: str, folder: Path) -> None:
    """Make `folder` importable in the venv of `python` after its own site-packages (a .pth file): the venv's
    own packages win."""
    (purelib(Path(python)) / "test-dependencies.pth").write_text(f"{folder}\n")


def purelib(python: Path) -> Path:
    script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout.strip())


def shared_libraries_with_dependencies(pipx_home: Path, dependencies: Path) -> None:
    """Make pipx's shared library venv (pip, setuptools; every pipx venv imports from it after its own
    packages) here, with the dependencies linked in: pipx finds their metadata right after installing, and
    fetches nothing (a fresh shared pip is not upgraded)."""
    shared = pipx_home / "shared"
    subprocess.run([sys.executable, "-m", "venv", str(shared)], check=True)
    site = purelib(shared / "bin" / "python")
    own = {entry.name.split("-")[0].lower() for entry in site.iterdir()}  # pip (and setuptools) of that venv
    for entry in sorted(dependencies.iterdir()):
        if entry.name.split("-")[0].lower() in own:
            continue
        (site / entry.name).symlink_to(entry.resolve())


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
    """`pipx install .` into a venv of its own: setuptools for the build and, once installed, the runtime
    dependencies come from this test run's site-packages, named explicitly (no network in tests)."""
    if shutil.which("pipx") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pipx is missing (installed by .ci/run)")
        pytest.skip("pipx is not installed")
    env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"))
    env.pop("VIRTUAL_ENV", None)
    shared_libraries_with_dependencies(tmp_path / "pipx", dependencies_folder(tmp_path))
    installed = subprocess.run(
        ["pipx", "install", "--python", sys.executable, "--pip-args=--no-index --no-deps --no-build-isolation",
         str(source)],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert "upgrading shared libraries" not in installed.stderr  # pip from the index: not in tests
    (python,) = (tmp_path / "pipx" / "venvs").glob("*/bin/python")
    where = subprocess.run([str(python), "-c", "import bundler, tqdm; print(bundler.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(tmp_path / "pipx" / "venvs")), where.stdout
    unknown = subprocess.run([str(tmp_path / "bin" / "bundler"), "build", "--k8s", "9.9.9"],
                             capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert unknown.returncode == 2 and "supported versions: 1.29.6" in unknown.stderr, unknown.stderr
