"""Test images built with buildah (from scratch, a static busybox) and pushed with skopeo.

- test/busybox:1.0: an OCI index for linux/amd64 and linux/arm64. amd64 = base layer (busybox) + a
  marker layer; arm64 = one layer of its own (busybox + marker), so no layer is shared across arches.
- test/app:2.0: a Docker schema2 manifest (linux/amd64) on the same base layer as busybox amd64.
- mirrored/pause:3.9: test/busybox:1.0 again under a repository prefix, for --registry-mirror.

`build_test_images(work)` pushes them into a registry storage folder once; tests copy that folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from tests.support.registry import Registry

BUSYBOX = Path("/bin/busybox")
GREETING = "hello from the offline bundle"
TOOLS = ("buildah", "skopeo", "docker-registry", "htpasswd", "openssl")


@dataclass(frozen=True)
class PushedImages:
    storage: Path  # a registry storage folder holding every test image
    digests: Dict[str, str]  # "test/busybox:1.0" -> index or manifest digest
    layers: Dict[str, List[str]]  # "busybox-amd64" etc. -> layer digests


def missing_tools() -> List[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not BUSYBOX.is_file():
        missing.append(str(BUSYBOX))
    return missing


class Buildah:
    def __init__(self, work: Path) -> None:
        self.root, self.runroot = work / "storage", work / "run"
        self.base = [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
        ]

    def __call__(self, *args: str) -> str:
        result = subprocess.run(self.base + list(args), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"buildah {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()

    def storage_ref(self, name: str) -> str:
        return f"containers-storage:[vfs@{self.root}+{self.runroot}]{name}"


def _image(buildah: Buildah, work: Path, name: str, arch: str, base: str, files: Dict[str, str]) -> None:
    container = buildah("from", "--arch", arch, "--os", "linux", base)
    for target, content in files.items():
        source = work / "files" / name / target.lstrip("/")
        source.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("@"):
            shutil.copy2(content[1:], source)
        else:
            source.write_text(content)
        buildah("copy", container, str(source), target)
    buildah(
        "config",
        "--arch",
        arch,
        "--os",
        "linux",
        "--cmd",
        f'["/bin/busybox", "echo", "{GREETING}"]',
        container,
    )
    buildah("commit", "--format", "oci", "--timestamp", "0", "--rm", container, f"localhost/{name}")


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def build_test_images(work: Path) -> PushedImages:
    buildah = Buildah(work / "buildah")
    _image(buildah, work, "base-amd64", "amd64", "scratch", {"/bin/busybox": f"@{BUSYBOX}"})
    _image(buildah, work, "busybox-amd64", "amd64", "localhost/base-amd64", {"/etc/arch": "amd64\n"})
    _image(
        buildah,
        work,
        "busybox-arm64",
        "arm64",
        "scratch",
        {"/bin/busybox": f"@{BUSYBOX}", "/etc/arch": "arm64\n"},
    )
    _image(buildah, work, "app-amd64", "amd64", "localhost/base-amd64", {"/app/hello.txt": "app 2.0\n"})
    buildah("manifest", "create", "localhost/busybox-list")
    for arch in ("amd64", "arm64"):
        buildah("manifest", "add", "--arch", arch, "--os", "linux", "localhost/busybox-list",
                buildah.storage_ref(f"localhost/busybox-{arch}"))  # fmt: skip
    layout = work / "oci-layout"
    buildah("manifest", "push", "--all", "--format", "oci", "localhost/busybox-list", f"oci:{layout}:busybox")
    storage = work / "registry-storage"
    with Registry(storage, work / "registry") as registry:
        target = f"docker://{registry.host}"
        plain = "--dest-tls-verify=false"
        skopeo("copy", "--all", plain, f"oci:{layout}:busybox", f"{target}/test/busybox:1.0")
        skopeo(
            "copy",
            "--format",
            "v2s2",
            plain,
            buildah.storage_ref("localhost/app-amd64"),
            f"{target}/test/app:2.0",
        )
        skopeo(
            "copy",
            "--all",
            "--src-tls-verify=false",
            plain,
            f"{target}/test/busybox:1.0",
            f"{target}/mirrored/pause:3.9",
        )
        digests, layers = {}, {}
        for name in ("test/busybox:1.0", "test/app:2.0"):
            raw = skopeo("inspect", "--raw", "--tls-verify=false", f"{target}/{name}")
            digests[name] = "sha256:" + __import__("hashlib").sha256(raw.encode()).hexdigest()
            body = json.loads(raw)
            if "manifests" in body:
                for entry in body["manifests"]:
                    child = skopeo(
                        "inspect",
                        "--raw",
                        "--tls-verify=false",
                        f"{target}/{name.split(':')[0]}@{entry['digest']}",
                    )
                    arch = entry["platform"]["architecture"]
                    layers[f"busybox-{arch}"] = [layer["digest"] for layer in json.loads(child)["layers"]]
                    digests[f"{name}/{arch}"] = entry["digest"]
            else:
                layers["app-amd64"] = [layer["digest"] for layer in body["layers"]]
    return PushedImages(storage, digests, layers)
