"""Benchmark of file artifacts: build from a loopback mirror of about 1 GB against sequential curl,
warm-cache rebuild against the cold build, verify throughput against sha256sum. Ratios only, all
measured in this run on this machine."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import yaml

from tests.support.http_server import MirrorServer

FILE_COUNT = 8
FILE_SIZE = 128 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _timed(command: List[str], **kwargs: object) -> float:
    os.sync()  # earlier phases' dirty pages must not be written back on this phase's clock
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.monotonic() - started


def run() -> List[str]:
    mirror = MirrorServer().start()
    lines: List[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-files-") as work_dir:
            work = Path(work_dir)
            files = []
            for index in range(FILE_COUNT):
                data = os.urandom(FILE_SIZE)
                path = f"/dl.example.invalid/artifact-{index}-linux-{{arch}}.bin"
                mirror.add(path.replace("{arch}", "amd64"), data)
                files.append({"name": f"artifact-{index}", "version": "1", "url": f"https://{path[1:]}",
                              "sha256": {"amd64": hashlib.sha256(data).hexdigest()}})  # fmt: skip
            manifest = work / "release.yaml"
            manifest.write_text(yaml.safe_dump({"kubernetes": "1.29.6", "os": {"rocky9": {"rpms": True}},
                                                "arches": ["amd64"], "files": files}))  # fmt: skip
            total_mib = FILE_COUNT * FILE_SIZE / 2**20

            curl_dir = work / "curl"
            curl_dir.mkdir()
            curl = 0.0
            for entry in files:
                url = mirror.url + "/" + entry["url"][len("https://") :].replace("{arch}", "amd64")
                curl += _timed(["curl", "-sSf", "-o", str(curl_dir / entry["name"]), url])
            # files only, so no node could install the bundle: --allow-incomplete says that is meant here
            build = [sys.executable, "-m", "bundler", "build", "--manifest", str(manifest), "--mirror", mirror.url,
                     "--cache", str(work / "cache"), "--output", str(work / "out"), "--jobs", "4",
                     "--allow-incomplete"]  # fmt: skip
            env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
            cold = _timed(build, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
            warm_runs = sorted(_timed(build, cwd=REPO, env=env, stderr=subprocess.DEVNULL) for _ in range(3))
            warm = warm_runs[1]  # median of 3: the first rebuild after a 1 GiB write varies most
            lines.append(f"artifacts: {FILE_COUNT} x {FILE_SIZE >> 20} MiB = {total_mib:.0f} MiB on a loopback mirror")
            lines.append(f"sequential curl (download only): {curl:.2f} s")
            lines.append(f"bundler build, cold cache (download+verify+tarball): {cold:.2f} s  "
                         f"ratio to curl {cold / curl:.2f}")  # fmt: skip
            runs = ", ".join(f"{run:.2f}" for run in warm_runs)
            lines.append(
                f"bundler build, warm cache (median of {runs} s): {warm:.2f} s  ratio to cold {warm / cold:.2f}"
            )

            tarball = next((work / "out").glob("*.tar"))
            subprocess.run(["tar", "-xf", str(tarball), "-C", str(work)], check=True)
            unpacked = next(p for p in work.iterdir() if p.name.startswith("k8s-bundle-") and p.is_dir())
            sums = _timed(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=unpacked)
            verify_dir = _timed([sys.executable, "-m", "bundler", "verify", str(unpacked)], cwd=REPO)
            verify_tar = _timed([sys.executable, "-m", "bundler", "verify", str(tarball)], cwd=REPO)
            lines.append(f"sha256sum -c on the unpacked bundle: {sums:.2f} s ({total_mib / sums:.0f} MiB/s)")
            lines.append(f"bundler verify DIR: {verify_dir:.2f} s ({total_mib / verify_dir:.0f} MiB/s)  "
                         f"speed ratio to sha256sum {sums / verify_dir:.2f}")  # fmt: skip
            lines.append(f"bundler verify TAR: {verify_tar:.2f} s ({total_mib / verify_tar:.0f} MiB/s)  "
                         f"speed ratio to sha256sum {sums / verify_tar:.2f}")  # fmt: skip
    finally:
        mirror.stop()
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
