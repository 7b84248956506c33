"""Images: the bundle's shared OCI layout against one `skopeo copy ... docker-archive:` tarball per image,
and `bundler build` pulling them against sequential `skopeo copy`, from the same loopback registry.

Test images: one 16 MiB base layer (random, incompressible) shared by 4 images, each adding 4 MiB.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import yaml

from tests.support.registry import Registry
from tests.support.test_images import Buildah, missing_tools, skopeo

IMAGES = 4
BASE_MIB, LAYER_MIB = 16, 4
ROUNDS = 3
REPO = Path(__file__).resolve().parents[2]


def _random_file(path: Path, mib: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(mib << 20))
    return path


def _build_images(work: Path, registry: Registry) -> List[str]:
    buildah = Buildah(work / "buildah")
    base = buildah("from", "scratch")
    buildah("copy", base, str(_random_file(work / "base.bin", BASE_MIB)), "/base.bin")
    buildah("config", "--arch", "amd64", "--os", "linux", base)
    buildah("commit", "--rm", base, "localhost/bench-base")
    names = []
    for number in range(IMAGES):
        container = buildah("from", "localhost/bench-base")
        buildah("copy", container, str(_random_file(work / f"app{number}.bin", LAYER_MIB)), "/app.bin")
        buildah("commit", "--rm", container, f"localhost/bench-app{number}")
        name = f"{registry.host}/bench/app{number}:1.0"
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            buildah.storage_ref(f"localhost/bench-app{number}"),
            f"docker://{name}",
        )
        names.append(name)
    return names


def _timed(command: List[str], **kwargs: object) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    return time.monotonic() - started


def _skopeo_round(names: List[str], folder: Path) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.monotonic()
    for number, name in enumerate(names):
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{name}",
            f"docker-archive:{folder}/{number}.tar:{name}",
        )
    return time.monotonic() - started


def _bundler_round(names: List[str], work: Path, manifest: Path, host: str) -> float:
    """`bundler build` of the images alone: a partial bundle (--allow-incomplete), measured for its images."""
    cache, out = work / "bundler-cache", work / "bundler-out"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    images = [arg for name in names for arg in ("--image", name)]
    command = [sys.executable, "-m", "bundler", "build", "--manifest", str(manifest), "--cache", str(cache),
               "--output", str(out), "--allow-incomplete", "--insecure-registry", host, *images]  # fmt: skip
    return _timed(command, cwd=REPO)


def run() -> List[str]:
    missing = missing_tools()
    if missing:
        return [f"images: skipped, needs {', '.join(missing)}"]
    with tempfile.TemporaryDirectory(prefix="bench-images-") as temporary:
        work = Path(temporary)
        with Registry(work / "storage", work / "registry") as registry:
            names = _build_images(work, registry)
            manifest = work / "release.yaml"
            manifest.write_text(
                yaml.safe_dump(
                    {"kubernetes": "1.29.6", "os": {"rocky9": {"rpms": True}}, "arches": ["amd64"], "files": []}
                )
            )
            skopeo_times = [_skopeo_round(names, work / "archives") for _ in range(ROUNDS)]
            bundler_times = [_bundler_round(names, work, manifest, registry.host) for _ in range(ROUNDS)]
            archives = sum(path.stat().st_size for path in (work / "archives").glob("*.tar"))
            tarball = next((work / "bundler-out").glob("*.tar"))
            layout = tarball.stat().st_size
    skopeo_time, bundler_time = statistics.median(skopeo_times), statistics.median(bundler_times)
    return [
        f"images: {IMAGES} images, {BASE_MIB} MiB shared base layer + {LAYER_MIB} MiB each, loopback",
        f"images: store size: whole bundle tarball {layout / 2**20:.1f} MiB vs per-image skopeo "
        f"docker-archive tarballs {archives / 2**20:.1f} MiB: ratio {layout / archives:.2f}",
        f"images: pull time (median of {ROUNDS}, empty cache): bundler build {bundler_time:.2f} s vs "
        f"sequential skopeo copy {skopeo_time:.2f} s: ratio {bundler_time / skopeo_time:.2f}",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
