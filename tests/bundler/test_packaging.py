"""Folders match imports: the package list the wheel gets (pyproject's find) is every package folder on disk."""

from __future__ import annotations

import sys

from setuptools import find_packages

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

SOURCE_ROOTS = {"bundler": REPO, "k8s_install": REPO / "installer"}  # import name -> the folder that holds it


def test_every_package_folder_is_found_under_its_import_name() -> None:
    assert tomllib is not None, "Python 3.11+ runs the tests (tomllib)"
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["where"] == [".", "installer"]
    on_disk = set()
    for name, root in SOURCE_ROOTS.items():
        for init in (root / name).rglob("__init__.py"):
            on_disk.add(".".join(init.parent.relative_to(root).parts))
    found = set()
    for where in find["where"]:
        found |= set(find_packages(str(REPO / where), include=find["include"]))
    assert found == on_disk
    assert "package-dir" not in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_the_import_path_is_the_folder_path() -> None:
    import k8s_install

    assert k8s_install.__file__ is not None
    assert str(REPO / "installer" / "k8s_install") in k8s_install.__file__ or "site-packages" in k8s_install.__file__
    assert not (REPO / "installer" / "__init__.py").exists()  # installer/ is a source root, not a package
