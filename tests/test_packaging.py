"""The wheel's package list (pyproject.toml) names every package folder, under its import name."""

from __future__ import annotations

import sys

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

IMPORT_NAMES = {"installer": "k8s_install"}  # folder -> import name (pyproject's package-dir)


def test_every_package_folder_is_in_the_wheel() -> None:
    assert tomllib is not None, "Python 3.11+ runs the tests (tomllib)"
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = set()
    for folder in ("bundler", "installer"):
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO).parts
            on_disk.add(".".join((IMPORT_NAMES.get(parts[0], parts[0]),) + parts[1:]))
    assert set(config["packages"]) == on_disk
    assert config["package-dir"] == {"k8s_install": "installer"}


def test_the_import_name_is_not_pypas_installer() -> None:
    import k8s_install

    assert k8s_install.__file__ is not None and "installer" in k8s_install.__file__  # the folder stays
