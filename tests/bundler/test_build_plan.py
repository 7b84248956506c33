"""`bundler build` as resolve, then one fetch: the plan (--dry-run, --json), metadata errors before any large
download, the one progress display, fail-fast, offline rebuilds and the completeness check, against a real
loopback mirror, a real docker-registry and real RPM repositories."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import tarfile
import termios
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

from bundler.completeness import Inventory, missing_parts
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.registry import Registry
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_release import add_rpm_section
from tests.support.test_images import PushedImages, skopeo

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
KUBEADM_IMAGES = [
    "kube-apiserver:v1.29.6", "kube-controller-manager:v1.29.6", "kube-scheduler:v1.29.6", "kube-proxy:v1.29.6",
    "etcd:3.5.12-0", "coredns/coredns:v1.11.1", "pause:3.9",
]  # fmt: skip
ITEM_LINE = re.compile(
    r"^  \[(\d+)/(\d+)\] (\S+(?: \S+)*?): [\d.]+ (?:B|KiB|MiB|GiB) \((cache|downloaded), verified\)$"
)


def command(release: StandInRelease, tmp_path: Path, *extra: str, cache: str = "cache", out: str = "out") -> List[str]:
    return [
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / cache), "--output", str(tmp_path / out), "--retries", "1", "--timeout", "5", *extra,
    ]  # fmt: skip


def calico_yaml(image: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: calico-node}\nspec:\n  template:\n    spec:\n"
        f"      containers:\n        - name: calico-node\n          image: {image}\n"
    )


def make_complete(release: StandInRelease, registry: Registry, rpm_graph: RpmGraph) -> Tuple[str, ...]:
    """A stand-in release with every part a node needs: RPMs (kubeadm, kubelet, kubectl, kubernetes-cni),
    containerd, runc, cni-plugins, kubeadm's seven images (served by the test registry as a mirror of
    registry.k8s.io) and a Calico manifest naming one more image. Returns the registry flags."""
    add_rpm_section(release, rpm_graph, name="complete")
    for image in KUBEADM_IMAGES:
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               f"docker://{registry.host}/test/busybox:1.0", f"docker://{registry.host}/mirrored/{image}")  # fmt: skip
    release.set_images([f"registry.k8s.io/{image}" for image in KUBEADM_IMAGES],
                       calico_yaml=calico_yaml(f"{registry.host}/test/app:2.0"))  # fmt: skip
    return (
        "--insecure-registry",
        registry.host,
        "--registry-mirror",
        f"registry.k8s.io=http://{registry.host}/mirrored",
    )


def bundle_yaml(tarball: Path) -> Dict:  # type: ignore[type-arg]
    with tarfile.open(tarball) as archive:
        top = archive.getnames()[0].split("/")[0]
        return yaml.safe_load(archive.extractfile(f"{top}/bundle.yaml").read())  # type: ignore[union-attr,no-any-return]


def leftovers(cache: Path) -> List[str]:
    partial = cache / "partial"
    return sorted(p.name for p in partial.iterdir()) if partial.exists() else []


# --- the plan ---------------------------------------------------------------------------------------------


def test_dry_run_json_describes_every_blob_and_fetches_no_content(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph)
    result = run_bundler(*command(release, tmp_path, "--dry-run", "--json", "--allow-incomplete"))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    import jsonschema

    jsonschema.validate(plan, json.loads((REPO / "schemas" / "build.schema.json").read_text()))
    assert (plan["schema"], plan["command"], plan["dry_run"]) == (1, "build", True)  # as every --json output
    assert (plan["kubernetes"], plan["os"], plan["bundle"]) == ("1.29.6", "rocky9", f"{TOP}.tar")
    kinds = {source["kind"]: source for source in plan["sources"]}
    assert list(kinds) == ["files", "images", "rpms"]
    files = {blob["name"]: blob for blob in kinds["files"]["blobs"]}
    assert files["containerd"]["size"] == len(release.data["containerd-amd64"])
    assert files["containerd"]["digest"] == "sha256:" + __import__("hashlib").sha256(
        release.data["containerd-amd64"]).hexdigest()  # fmt: skip
    assert files["containerd"]["places"] == ["files/containerd-1.0.0-linux-amd64.bin"]
    assert files["containerd"]["cached"] is False and files["containerd"]["urls"][0].startswith(release.mirror.url)
    rpms = kinds["rpms"]
    assert "kubeadm" in rpms["packages"] and rpms["closure"] == "minimal"
    assert all(b["places"][0].startswith("rpms/Packages/") and b["size"] > 0 for b in rpms["blobs"])
    assert rpms["count"] == len(rpms["blobs"]) and rpms["fetch_bytes"] == sum(b["size"] for b in rpms["blobs"])
    assert plan["incomplete"]  # the stand-in has no kubeadm images: listed, allowed
    # metadata only: repository files were read, no package and no file artifact was downloaded
    fetched = [path for path, _ in release.mirror.requests]
    assert fetched and all("/repodata/" in path for path in fetched)
    assert not (tmp_path / "out").exists()
    assert "files: 4 to bundle" in result.stderr and "rpms: " in result.stderr


def test_bad_rpm_repository_fails_before_any_image_is_fetched(
    release: StandInRelease, rpm_graph: RpmGraph, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="broken")
    del release.mirror.files[prefixes["base"] + "/repodata/repomd.xml"]
    release.set_images([f"{registry.host}/test/busybox:1.0"])
    result = run_bundler(*command(release, tmp_path, "--insecure-registry", registry.host, "--allow-incomplete"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("bundler: error: base repomd.xml: HTTP 404")
    cached = {p.name for p in (tmp_path / "cache" / "sha256").iterdir()}
    image_blobs = {d.split(":")[1] for layers in pushed_images.layers.values() for d in layers}
    assert cached.isdisjoint(image_blobs)
    assert not any(path.endswith(".bin") or path.endswith(".rpm") for path, _ in release.mirror.requests)


# --- one fetch: progress, fail fast -----------------------------------------------------------------------


def run_in_terminal(args: List[str], deadline: float = 120) -> Tuple[int, str]:
    """Run `python -m bundler ARGS` with stderr (and stdout) on a pseudo-terminal; returns (status, text)."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", COLUMNS="120", TERM="xterm")
    process = subprocess.Popen(["python", "-m", "bundler", *args], cwd=REPO, env=env, stdout=child, stderr=child,
                               stdin=subprocess.DEVNULL)  # fmt: skip
    os.close(child)
    chunks = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(main)
    status = process.wait(timeout=10)
    return status, b"".join(chunks).decode(errors="replace")


def test_progress_in_a_terminal_has_one_line_per_item_and_a_byte_bar(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph)
    plan = json.loads(run_bundler(*command(release, tmp_path, "--dry-run", "--json", "--allow-incomplete")).stdout)
    blobs = {b["name"]: b for source in plan["sources"] for b in source["blobs"]}
    status, text = run_in_terminal(command(release, tmp_path, "--allow-incomplete"))
    assert status == 0, text
    lines = [line.strip("\r") for part in text.split("\n") for line in part.split("\r")]
    items = [ITEM_LINE.match(line) for line in lines if "verified)" in line]
    assert all(items), [line for line in lines if "verified)" in line]
    assert sorted(int(m.group(1)) for m in items) == list(range(1, len(blobs) + 1))  # type: ignore[union-attr]
    assert {m.group(2) for m in items} == {str(len(blobs))}  # type: ignore[union-attr]
    assert sorted(m.group(3) for m in items) == sorted(blobs)  # type: ignore[union-attr]
    assert {m.group(4) for m in items} == {"downloaded"}  # type: ignore[union-attr]
    total = sum(b["size"] for b in blobs.values())
    bars = [line for line in lines if line.startswith("fetch:")]
    assert bars and "100%" in bars[-1], bars[-3:]
    assert "artifacts" not in text
    # the bar's total is the plan's: tqdm shows it scaled (e.g. 3.13M/3.13M)
    done, whole = re.search(r"\| ([\d.]+\w?)/([\d.]+\w?) ", bars[-1]).groups()  # type: ignore[union-attr]
    assert done == whole and total > 0


def test_without_a_terminal_each_item_is_one_plain_line(release: StandInRelease, tmp_path: Path) -> None:
    first = run_bundler(*command(release, tmp_path, "--allow-incomplete"))
    assert first.returncode == 0, first.stderr
    again = run_bundler(*command(release, tmp_path, "--allow-incomplete", out="again"))
    assert again.returncode == 0, again.stderr
    for result, origin in ((first, "downloaded"), (again, "cache")):
        items = [ITEM_LINE.match(line) for line in result.stderr.splitlines() if "verified)" in line]
        assert len(items) == 3 and all(m and m.group(4) == origin for m in items)
        assert "\r" not in result.stderr and "fetch:" not in result.stderr


def test_first_failure_stops_the_other_downloads_and_names_the_item(release: StandInRelease, tmp_path: Path) -> None:
    """containerd alone would take about 25 s (throttled); runc's wrong bytes must end the build at once."""
    containerd = release.served_path("containerd")
    release.mirror.files[containerd].throttle = 0.5
    runc = release.served_path("runc")
    release.mirror.files[runc].data = b"tampered" + release.data["runc-amd64"][8:]
    result = run_bundler(*command(release, tmp_path, "--allow-incomplete", "--jobs", "4"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("bundler: error: runc: checksum mismatch")
    served = release.mirror.files[containerd]
    assert served.sent < len(served.data), "the build waited for containerd's download after runc failed"
    assert not any(name.endswith(".lock") for name in leftovers(tmp_path / "cache"))


@pytest.mark.root
def test_a_host_name_that_does_not_resolve_fails_at_once_and_leaves_nothing(
    release: StandInRelease, tmp_path: Path
) -> None:
    """In a network namespace with no network, with many retries allowed: no backoff for a name."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a network namespace")
    args = command(release, tmp_path, "--allow-incomplete")
    args[args.index("--mirror") + 1] = "http://mirror.example.invalid:8080"
    args[args.index("--retries") + 1] = "8"  # backoff alone would take over two minutes
    result = subprocess.run(["unshare", "--net", "python", "-m", "bundler", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot resolve the host name mirror.example.invalid" in last and "attempt" not in last, last  # no retry
    assert "retry" not in result.stderr.lower(), result.stderr
    assert leftovers(tmp_path / "cache") == []


# --- offline rebuilds and completeness ---------------------------------------------------------------------


def test_complete_bundle_then_offline_rebuild_with_registry_and_mirror_stopped(
    release: StandInRelease, rpm_graph: RpmGraph, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    flags = make_complete(release, registry, rpm_graph)
    first = run_bundler(*command(release, tmp_path, *flags))
    assert first.returncode == 0, first.stderr
    tarball = tmp_path / "out" / f"{TOP}.tar"
    record = bundle_yaml(tarball)
    assert "incomplete" not in record
    assert {i["name"] for i in record["images"]} >= {f"registry.k8s.io/{i}" for i in KUBEADM_IMAGES}
    lock = tmp_path / "bundle.yaml"
    lock.write_text(yaml.safe_dump(record))

    registry.stop()
    release.mirror.stop()
    offline = run_bundler(*command(release, tmp_path, *flags, "--offline", "--lock", str(lock), out="offline"))
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "offline" / f"{TOP}.tar").read_bytes() == tarball.read_bytes()
    assert "downloaded" not in offline.stderr
    # --lock alone with a warm cache makes no request either (the servers are down)
    locked = run_bundler(*command(release, tmp_path, *flags, "--lock", str(lock), out="locked"))
    assert locked.returncode == 0, locked.stderr
    # an empty cache: --offline fails on the first item it would have to fetch, naming it
    empty = run_bundler(*command(release, tmp_path, *flags, "--offline", "--lock", str(lock), cache="empty"))
    assert empty.returncode == 1
    last = empty.stderr.strip().splitlines()[-1]
    assert "not in the cache, and --offline forbids" in last, last
    assert leftovers(tmp_path / "empty") == []


def test_rocky9_manifest_without_rpm_section_fails_listing_what_is_missing(
    release: StandInRelease, tmp_path: Path
) -> None:
    args = command(release, tmp_path)
    result = run_bundler(*args)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bundler: error: the bundle for rocky9 would be incomplete, missing: kubeadm")
    for part in ("kubelet", "kubectl", "CNI plugins", "image registry.k8s.io/kube-apiserver:v1.29.6",
                 "image registry.k8s.io/pause", "Calico's images"):  # fmt: skip
        assert part in last, part
    assert "containerd (" not in last and "runc (" not in last
    assert release.mirror.requests == [] and not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_binary_install_target_is_refused(release: StandInRelease, tmp_path: Path) -> None:
    result = run_bundler(*command(release, tmp_path, "--os", "linux"))
    assert result.returncode == 1
    assert "target linux installs Kubernetes from binaries" in result.stderr


COMPLETE = Inventory(
    os_id="rocky9", installs_rpms=True, kubernetes="1.29.6",
    files=("containerd", "runc", "cni-plugins", "calico-manifest"), rpms=("kubeadm", "kubelet", "kubectl"),
    images=tuple(f"registry.k8s.io/{image}" for image in KUBEADM_IMAGES), images_from_files=("calico-manifest",),
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        ({}, []),
        ({"rpms": ("kubeadm", "kubelet", "kubectl", "containerd.io", "runc", "kubernetes-cni"),
          "files": ("calico-manifest",)}, []),  # the runtime from packages counts as well
        ({"rpms": ()}, ["kubeadm (", "kubelet (", "kubectl ("]),
        ({"files": ("containerd", "calico-manifest")}, ["runc (", "CNI plugins ("]),
        ({"images": COMPLETE.images[1:]}, ["image registry.k8s.io/kube-apiserver:v1.29.6"]),
        ({"images": COMPLETE.images[:3] + ("registry.k8s.io/kube-proxy:v1.29.5",) + COMPLETE.images[4:]},
         ["image registry.k8s.io/kube-proxy:v1.29.6"]),
        ({"images_from_files": ()}, ["Calico's images"]),
        ({"files": ("containerd", "runc", "cni-plugins"), "images_from_files": ()}, ["the Calico manifest"]),
        ({"installs_rpms": False, "os_id": "linux"}, ["target linux installs Kubernetes from binaries"]),
    ],
)  # fmt: skip
def test_missing_parts(change: Dict, missing: List[str]) -> None:  # type: ignore[type-arg]
    found = missing_parts(Inventory(**{**COMPLETE.__dict__, **change}))
    assert len(found) == len(missing) and all(f.startswith(m) for f, m in zip(found, missing)), found


def test_the_shipped_release_is_complete_for_rocky9() -> None:
    from bundler.manifest import load_release
    from bundler.rpm.spec import rpm_spec

    release = load_release("1.29.6", None)
    target = release.resolve_os("rocky9")
    spec = rpm_spec(release.raw, "rocky9", str(release.source))
    assert spec is not None
    inventory = Inventory(
        os_id="rocky9", installs_rpms=target.rpms, kubernetes=release.kubernetes,
        files=tuple(a.name for a in release.files_for(target, "amd64")), rpms=tuple(p.name for p in spec.packages),
        images=release.images, images_from_files=release.images_from_files,
    )  # fmt: skip
    assert missing_parts(inventory) == []
    assert sorted(release.os_targets) == ["debian12", "rocky9", "ubuntu2204", "ubuntu2404"]
    assert all(t.packaged for t in release.os_targets.values())  # binary installs are off the list until the
    # installer has them
