"""Container images from the bundle's OCI layout (images/) into containerd's `k8s.io` namespace.

Plain functions taking the bundle (bundle.yaml read once, `load_bundle`), the ctr binary and the containerd
address, so a converge step can wrap them: `images_to_import` (the fact: what is missing), `import_images`
(the change: streams a tar of only the missing images' layout to `ctr images import -`),
`check_images_present` (the proof: every image bundle.yaml lists is in containerd with its digest, else one
error naming the missing ones).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Dict, List, NamedTuple, Optional, Set, Tuple

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.layout import IMAGES_DIR, MANIFEST_NAME
from k8s_install.bundle_format.model import Image
from k8s_install.errors import InstallError

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
NAMESPACE = "k8s.io"  # the kubelet's CRI sees only this namespace
NAME_ANNOTATION = "io.containerd.image.name"


class ImportResult(NamedTuple):
    imported: List[str]
    skipped: List[str]


def bundle_images(bundle: Bundle) -> Tuple[Image, ...]:
    """The images bundle.yaml lists (name and manifest digest)."""
    for index, image in enumerate(bundle.manifest.images):
        if not image.name or not image.digest.startswith("sha256:"):
            raise InstallError(f"{bundle.root / MANIFEST_NAME}: images[{index}] needs a name and a sha256 digest")
    return bundle.manifest.images


def find_ctr(ctr: Optional[str]) -> str:
    candidate = ctr or shutil.which("ctr") or "/usr/local/bin/ctr"
    if not os.access(candidate, os.X_OK):
        raise InstallError(f"ctr not found at {candidate}: install containerd first or pass --ctr PATH")
    return candidate


def _ctr(ctr: str, address: str, namespace: str) -> List[str]:
    return [find_ctr(ctr), "--address", address, "--namespace", namespace]


def present_images(ctr: str, address: str, namespace: str = NAMESPACE) -> Dict[str, str]:
    """name -> digest of every image in the namespace (`ctr images ls`)."""
    result = subprocess.run(_ctr(ctr, address, namespace) + ["images", "ls"], capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"cannot list containerd images at {address}: {reason}; is containerd running?")
    present = {}
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            present[fields[0]] = fields[2]
    return present


def images_to_import(bundle: Bundle, ctr: str, address: str, namespace: str = NAMESPACE) -> List[Image]:
    present = present_images(ctr, address, namespace)
    return [image for image in bundle_images(bundle) if present.get(image.name) != image.digest]


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise InstallError(f"{path}: cannot read {what}; re-copy the bundle and run verify") from None
    if not isinstance(value, dict):
        raise InstallError(f"{path}: {what} is not a JSON object; re-copy the bundle and run verify")
    return value


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64 or not all(c in "0123456789abcdef" for c in hex_digest):
        raise InstallError(f"{layout}: unexpected digest {digest!r} in the image layout")
    return layout / "blobs" / "sha256" / hex_digest


def _partial_layout(layout: Path, wanted: List[Image]) -> Dict[str, object]:
    """index.json of only the wanted images, and the blobs they need."""
    index = _read_json(layout / "index.json", "the image index")
    keys = {(image.name, image.digest) for image in wanted}
    descriptors = [
        entry
        for entry in index.get("manifests") or []
        if isinstance(entry, dict)
        and ((entry.get("annotations") or {}).get(NAME_ANNOTATION), entry.get("digest")) in keys
    ]
    if len(descriptors) != len(keys):
        found = {(d.get("annotations") or {}).get(NAME_ANNOTATION) for d in descriptors}
        absent = sorted(image.name for image in wanted if image.name not in found)
        raise InstallError(f"{layout}/index.json lacks {', '.join(absent)}; the bundle is incomplete")
    blobs: Set[str] = set()
    for descriptor in descriptors:
        digest = str(descriptor["digest"])
        manifest = _read_json(_blob(layout, digest), f"the manifest of {digest}")
        blobs.add(digest)
        for child in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
            blobs.add(str(child.get("digest")))
    return {"index": dict(index, manifests=descriptors), "blobs": sorted(blobs)}


def check_blobs(layout: Path, digests: List[str]) -> None:
    """Each blob to be imported hashes to its name, checked before ctr reads any of it."""
    for digest in digests:
        path = _blob(layout, digest)
        if not path.is_file():
            raise InstallError(f"{path}: missing from the bundle (needed by an image); re-copy the bundle")
        actual = _sha256(path)
        if "sha256:" + actual != digest:
            raise InstallError(
                f"{path}: is not the blob {digest} (sha256 {actual}); the image was altered: re-copy the bundle"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _stream_layout(stream: IO[bytes], layout: Path, plan: Dict[str, object]) -> None:
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, "oci-layout", (layout / "oci-layout").read_bytes())
        _add_bytes(archive, "index.json", json.dumps(plan["index"]).encode())
        for digest in plan["blobs"]:  # type: ignore[attr-defined]
            path = _blob(layout, digest)
            if not path.is_file():
                raise InstallError(f"{path}: missing from the bundle (needed by an image); re-copy the bundle")
            archive.add(str(path), arcname=f"blobs/sha256/{path.name}", recursive=False)


def import_images(
    bundle: Bundle, ctr: str, address: str, namespace: str = NAMESPACE, snapshotter: Optional[str] = None
) -> ImportResult:
    """Import the bundle's images that containerd lacks (or holds with another digest); a no-op otherwise."""
    layout = bundle.root / IMAGES_DIR
    wanted = images_to_import(bundle, ctr, address, namespace)
    listed = bundle_images(bundle)
    skipped = sorted(image.name for image in listed if image not in wanted)
    if not wanted:
        return ImportResult([], skipped)
    plan = _partial_layout(layout, wanted)
    check_blobs(layout, plan["blobs"])  # type: ignore[arg-type]
    command = _ctr(ctr, address, namespace) + ["images", "import"]
    if snapshotter:
        command += ["--snapshotter", snapshotter]
    command.append("-")
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
        assert process.stdin is not None
        try:
            _stream_layout(process.stdin, layout, plan)
        except BrokenPipeError:
            pass  # ctr stopped reading: its own message says why
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            process.wait()
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    if process.returncode != 0:
        reason = (text.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"ctr images import into {namespace} at {address} failed: {reason}")
    return ImportResult(sorted(image.name for image in wanted), skipped)


def check_images_present(bundle: Bundle, ctr: str, address: str, namespace: str = NAMESPACE) -> List[str]:
    """Every bundled image is in containerd with its digest; returns their names, else one error."""
    missing = images_to_import(bundle, ctr, address, namespace)
    if missing:
        names = ", ".join(image.name for image in missing)
        raise InstallError(
            f"{len(missing)} image(s) missing from containerd namespace {namespace}: {names}; "
            "run `k8s-install.pyz images` to import them"
        )
    return sorted(image.name for image in bundle_images(bundle))
