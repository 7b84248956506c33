"""Build hook only (all metadata is in pyproject.toml): the release data goes into the wheel.

manifests/ and checksums/ stay at the top of the source tree, where releases are added; building copies
them into the built `bundler` package (bundler/release_data/), where bundler/paths.py
finds them in an installed copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RELEASE_DATA = ("manifests", "checksums")
PACKAGED_DIR = "release_data"  # bundler/release_data/{manifests,checksums} in the wheel


class BuildWithReleaseData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        source = Path(__file__).resolve().parent
        for name in RELEASE_DATA:
            target = Path(self.build_lib) / "bundler" / PACKAGED_DIR / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source / name, target)


setup(cmdclass={"build_py": BuildWithReleaseData})
