"""Build-time RPM signature check (bundler/rpm/package_signatures.py) on 300 signed packages, the size of a
full closure.

Baseline measured in the same run: one `rpmkeys --checksig` process per package against the same private
key database (what a per-package loop would cost). The ratio is ours / the baseline's (goal: well below 1).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List

from bundler.rpm.package_signatures import PackageFile, RepositoryPackages, verify_signatures
from tests.support.rpm_repo import FakeRpm, build_rpms
from tests.support.signing import SigningKey

PACKAGES = 300


def run() -> List[str]:
    if not shutil.which("rpmkeys") or not shutil.which("rpmsign"):
        return ["skipped: rpmkeys/rpmsign not installed"]
    with tempfile.TemporaryDirectory(prefix="bench-rpmsig-") as folder:
        work = Path(folder)
        key = SigningKey("bench-repo")
        try:
            built = build_rpms([FakeRpm(f"bench{i}", "1.0") for i in range(3)], work / "build")
            key.sign_rpms(list(built.values()))
            (work / "key.asc").write_bytes(key.public)
        finally:
            key.close()
        sources = list(built.values())
        packages = []
        for index in range(PACKAGES):
            path = work / "packages" / f"pkg{index}.rpm"
            path.parent.mkdir(exist_ok=True)
            shutil.copyfile(sources[index % len(sources)], path)
            packages.append(PackageFile(f"pkg{index}", path))
        group = RepositoryPackages("bench", work / "key.asc", "bench key", tuple(packages))

        started = time.perf_counter()
        assert verify_signatures([group]) == PACKAGES
        ours = time.perf_counter() - started

        database = work / "baseline-db"
        database.mkdir()
        base = ["rpmkeys", "--dbpath", str(database), "--define", "_pkgverify_level signature"]
        subprocess.run([*base, "--import", str(work / "key.asc")], check=True, capture_output=True)
        started = time.perf_counter()
        for package in packages:
            subprocess.run([*base, "--checksig", str(package.path)], check=True, capture_output=True)
        baseline = time.perf_counter() - started
    return [
        f"rpm signatures, {PACKAGES} packages: ours {ours:.2f} s (key import included), "
        f"one rpmkeys per package {baseline:.2f} s, ratio {ours / baseline:.2f}"
    ]
