"""Build k8s-install.pyz with shiv from installer/ plus the pure-Python parts of pyyaml and jinja2.

The nodes run it with their system Python (3.9 on EL9), so nothing compiled goes in: pyyaml and
markupsafe fall back to their pure-Python code when their C extensions are absent. The result is
reproducible (fixed timestamps, sorted entries, build id from content) and extracts under
SHIV_ROOT_DEFAULT, a root-owned folder, never a world-writable one (bundler/pyz_main.py, its __main__.py,
sends other users to their own cache folder and runs --help/--version without extracting).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

from bundler import paths
from bundler.errors import BundlerError

SHIV_ROOT_DEFAULT = "/var/lib/k8s-install/shiv"
ENTRY_POINT = "k8s_install.main:main"
THIRD_PARTY = ("yaml", "jinja2", "markupsafe")
LAUNCHER = Path(__file__).with_name("pyz_main.py")  # becomes __main__.py: where to extract, and --help unextracted
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".c", ".h", ".pyc")
DEFAULT_EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BundlerError(f"python package {name!r} is not installed; run `make install`")
    return Path(list(spec.submodule_search_locations)[0])


def _copy_pure_python(source: Path, target: Path) -> None:
    def ignore(_directory: str, names: Iterable[str]) -> list:
        return [n for n in names if n == "__pycache__" or n.endswith(COMPILED_SUFFIXES)]

    shutil.copytree(source, target, ignore=ignore)


def stage_site_packages(site: Path) -> None:
    _copy_pure_python(paths.INSTALLER_PACKAGE_DIR, site / "k8s_install")
    for name in THIRD_PARTY:
        _copy_pure_python(_package_dir(name), site / name)


def with_launcher(built: Path, target: Path) -> None:
    """Copy shiv's zipapp to `target` with LAUNCHER as its __main__.py; shebang, entry order, timestamps,
    modes and compression stay as shiv wrote them, so the result is as reproducible as shiv's."""
    data = built.read_bytes()
    shebang = data[: data.index(b"\n") + 1]
    with zipfile.ZipFile(built) as source, open(target, "wb") as out:
        out.write(shebang)
        with zipfile.ZipFile(out, "w") as archive:
            for entry in source.infolist():
                copy = zipfile.ZipInfo(entry.filename, entry.date_time)
                copy.compress_type = entry.compress_type
                copy.external_attr = entry.external_attr
                body = LAUNCHER.read_bytes() if entry.filename == "__main__.py" else source.read(entry)
                archive.writestr(copy, body)


def build_installer(output: Path, epoch: int) -> Path:
    """Write the zipapp to `output` (atomically) and return its path."""
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="k8s-install-pyz-") as work:
        site = Path(work) / "site-packages"
        site.mkdir()
        stage_site_packages(site)
        built = Path(work) / "k8s-install.pyz"
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
        command = [
            sys.executable, "-m", "shiv",
            "--site-packages", str(site),
            "--entry-point", ENTRY_POINT,
            "--output-file", str(built),
            "--python", "/usr/bin/env python3",
            "--root", SHIV_ROOT_DEFAULT,
            "--reproducible",
            "--no-modify",
            "--compressed",
        ]  # fmt: skip
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BundlerError(f"building {output.name} with shiv failed: {last}")
        temporary = output.with_name(output.name + ".tmp")
        with_launcher(built, temporary)
        os.chmod(temporary, 0o755)
        os.replace(temporary, output)
    return output
