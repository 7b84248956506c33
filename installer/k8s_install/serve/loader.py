"""Load the bundle's images into the bundle host's registry storage, and tell which are there.

The registry service is read-only. Images go in through a second instance of the same registry binary,
started here on a free loopback port over the same storage folder for the load only and stopped by its PID;
the push itself is `images push` (images/push.py): every blob and manifest through the registry API, so the
registry alone writes its storage. Whether an image is there is read from the storage layout of the CNCF
distribution registry (a tag's `current/link` naming the manifest digest, the manifest's blob present).
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List

from k8s_install.bundle_format.layout import IMAGES_DIR
from k8s_install.bundle_format.opened import OpenedBundle
from k8s_install.errors import InstallError
from k8s_install.images.push import NAME_ANNOTATION, LayoutSource, Pusher, PushReport, target_for
from k8s_install.images.registry_client import RegistryClient
from k8s_install.steps.files import HEADER

LOADER_READY_SECONDS = 30.0
V2 = "docker/registry/v2"


@dataclass(frozen=True)
class ServedImage:
    name: str  # as the bundle names it: registry.k8s.io/kube-apiserver:v1.29.6
    repository: str  # in the bundle host's registry: kube-apiserver
    reference: str  # tag, or the digest of a digest-only name
    digest: str  # of the manifest (or index) the bundle holds


def bundle_images(opened: OpenedBundle) -> List[ServedImage]:
    """Every image of the bundle's OCI layout, where the bundle host serves it."""
    source = LayoutSource(opened)
    if not source.has_images():
        return []
    found: List[ServedImage] = []
    for entry in source.read_json(f"{IMAGES_DIR}/index.json").get("manifests") or []:
        name = str((entry.get("annotations") or {}).get(NAME_ANNOTATION, ""))
        if name:
            target = target_for(name, "")
            image = ServedImage(name, target.repository, target.reference, str(entry.get("digest", "")))
            clash = next((other for other in found if (other.repository, other.reference) == (
                image.repository, image.reference) and other.digest != image.digest), None)  # fmt: skip
            if clash is not None:
                raise InstallError(
                    f"{clash.name} and {name} would both be {image.repository}:{image.reference} on the bundle host "
                    "(it serves images by their path without the registry's name): build the bundle without one"
                )
            found.append(image)
    return found


def is_stored(storage: Path, image: ServedImage) -> bool:
    """Whether the registry storage at `storage` serves `image` at its digest (storage layout of distribution)."""
    algorithm, _, hex_digest = image.digest.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64:
        return False
    if not (storage / V2 / "blobs/sha256" / hex_digest[:2] / hex_digest / "data").is_file():
        return False
    manifests = storage / V2 / "repositories" / image.repository / "_manifests"
    if image.reference.startswith("sha256:"):
        return (manifests / "revisions/sha256" / hex_digest / "link").is_file()
    link = manifests / "tags" / image.reference / "current/link"
    try:
        return link.read_text(encoding="ascii").strip() == image.digest
    except (OSError, UnicodeDecodeError):
        return False


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loader_config(storage: Path, address: str) -> str:
    from k8s_install.render import render

    return render(
        "bundle-host-registry.yml.j2", header=HEADER, storage=str(storage), addr=address, readonly=False, tls=False,
        cert="", key="",
    )  # fmt: skip


@contextmanager
def loader_registry(binary: str, storage: Path) -> Iterator[str]:
    """A writable registry on a free loopback port over `storage`, for the load only; yields HOST:PORT."""
    address = f"127.0.0.1:{free_loopback_port()}"
    storage.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="k8s-serve-load-") as work:
        config = Path(work) / "registry.yml"
        config.write_text(loader_config(storage, address), encoding="utf-8")
        log_path = Path(work) / "registry.log"
        with open(log_path, "wb") as log:
            try:
                process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
            except OSError as error:
                raise InstallError(f"cannot run the registry binary {binary}: {error.strerror}") from None
        try:
            _wait_ready(process, address, log_path, binary)
            yield address
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], address: str, log_path: Path, binary: str) -> None:
    deadline = time.monotonic() + LOADER_READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise InstallError(f"the registry ({binary}) stopped at start for the image load: {tail[0][:300]}")
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise InstallError(f"the registry ({binary}) did not answer on {address} within {LOADER_READY_SECONDS:.0f} s")


def load_images(opened: OpenedBundle, binary: str, storage: Path, echo: Callable[[str], None]) -> PushReport:
    """Push every image of the (verified) bundle into the storage through a loopback loader registry."""
    with loader_registry(binary, storage) as address:
        client = RegistryClient(address, None, None, plain_http=True)  # loopback only, this process's own
        try:
            return Pusher(LayoutSource(opened), client, echo=echo).push_all("")
        finally:
            client.close()
