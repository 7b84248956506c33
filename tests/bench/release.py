"""A release of real shape behind a shaped link: about 1.2 GiB in ten file artifacts, eleven images sharing
layers and sixty RPMs, served by a loopback mirror (files and the RPM repository) and a docker-registry,
all inside a network namespace of its own whose loopback is shaped with `tc tbf` (netem is not in every
kernel). Printed as ratios from this run:

- cold build against the link's floor (bytes / rate), goal <= 1.15;
- cold build against fetching the same bytes one after another (curl for files and RPMs, skopeo for images),
  goal <= 0.5;
- warm rebuild against writing the same tarball alone (bundler's writer over the unpacked bundle), goal <= 1.2;
- peak memory (max RSS) of the cold build, goal <= 150 MB.

Contents are random bytes (incompressible): the builder checks digests, not what an RPM or a layer holds.
`BENCH_RATE` sets the link rate (default 100mbit).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
RATE = os.environ.get("BENCH_RATE", "100mbit")
MIB = 1 << 20
FILES = {  # name -> MiB, shaped like the real artifacts
    "containerd": 45, "runc": 10, "cni-plugins": 43, "buildkit": 70, "nerdctl": 9, "crictl": 19,
    "calicoctl": 80, "helm": 40, "etcd": 21, "registry": 7,
}  # fmt: skip
IMAGES = {  # name -> (shared base layer, own layer sizes in MiB)
    "registry.k8s.io/kube-apiserver:v1.29.6": ("distroless", (31,)),
    "registry.k8s.io/kube-controller-manager:v1.29.6": ("distroless", (30,)),
    "registry.k8s.io/kube-scheduler:v1.29.6": ("distroless", (17,)),
    "registry.k8s.io/kube-proxy:v1.29.6": ("iptables", (26,)),
    "registry.k8s.io/etcd:3.5.12-0": ("distroless", (55,)),
    "registry.k8s.io/coredns/coredns:v1.11.1": ("distroless", (15,)),
    "registry.k8s.io/pause:3.9": ("", (1,)),
    "docker.io/calico/node:v3.28.0": ("ubi", (180, 12)),
    "docker.io/calico/cni:v3.28.0": ("ubi", (110,)),
    "docker.io/calico/kube-controllers:v3.28.0": ("ubi", (30,)),
    "docker.io/calico/typha:v3.28.0": ("ubi", (28,)),
}
BASES = {"": 0, "distroless": 2, "iptables": 20, "ubi": 38}
KUBE_RPMS = {"kubelet": 21, "kubeadm": 10, "kubectl": 10, "kubernetes-cni": 8, "cri-tools": 7}
OTHER_RPMS = 55  # sized 0.1-8 MiB each
FILES_HOST, RPM_HOST = "downloads.example.invalid", "rpms.example.invalid"


def _random(size: int, rng: random.Random) -> bytes:
    return rng.randbytes(size)


def make_release(work: Path, mirror, registry_url: str) -> Tuple[Path, int]:  # type: ignore[no-untyped-def]
    """Serve everything; return the manifest and the number of content bytes."""
    rng = random.Random(12)
    total = 0
    files: List[Dict[str, object]] = []
    for name, mib in FILES.items():
        data = _random(mib * MIB, rng)
        path = f"/{FILES_HOST}/{name}/{name}-linux-amd64.tar.gz"
        mirror.add(path, data)
        files.append({"name": name, "version": "1", "url": f"https://{path[1:].replace('amd64', '{arch}')}",
                      "sha256": {"amd64": hashlib.sha256(data).hexdigest()}})  # fmt: skip
        total += len(data)
    calico = _calico_yaml([name for name in IMAGES if "calico" in name]).encode()
    mirror.add(f"/{FILES_HOST}/calico/calico-typha.yaml", calico)
    files.append({"name": "calico-manifest", "version": "3.28.0", "arch": "noarch", "url": f"https://{FILES_HOST}"
                  "/calico/calico-typha.yaml", "sha256": hashlib.sha256(calico).hexdigest()})  # fmt: skip
    total += len(calico) + _push_images(registry_url, rng)
    packages, rpm_bytes = _rpm_repository(mirror, rng)
    total += rpm_bytes
    manifest = {
        "kubernetes": "1.29.6", "os": {"rocky9": {"rpms": True}}, "arches": ["amd64"], "files": files,
        "images": [name for name in IMAGES if "calico" not in name], "images_from_files": ["calico-manifest"],
        "rpm": {"rocky9": {"repositories": [{"id": "bench", "baseurl": f"https://{RPM_HOST}/repo/"}],
                           "packages": packages}},
    }  # fmt: skip
    path = work / "release.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path, total


def _calico_yaml(images: List[str]) -> str:
    containers = "".join(f"        - name: c{i}\n          image: {image}\n" for i, image in enumerate(images))
    padding = "".join(f"# {'x' * 70}\n" for _ in range(3000))  # the real file is about 250 KB
    return (f"{padding}apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: calico-node}}\nspec:\n"
            f"  template:\n    spec:\n      containers:\n{containers}")  # fmt: skip


def _push_images(registry_url: str, rng: random.Random) -> int:
    """Push each image with the distribution API (monolithic uploads); returns the unique blob bytes."""
    bases = {name: _random(mib * MIB, rng) for name, mib in BASES.items() if mib}
    pushed: Dict[str, int] = {}
    for name, (base, own) in IMAGES.items():
        layers = ([bases[base]] if base else []) + [_random(mib * MIB, rng) for mib in own]
        pushed.update(push_image(registry_url, name, layers))
    return sum(pushed.values())


def push_image(registry_url: str, name: str, layers: List[bytes]) -> Dict[str, int]:
    """Push image `name` (served under _served_repository) made of `layers`; returns digest -> size of what it
    holds (the manifest as 'manifest:NAME')."""
    repository = _served_repository(name)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
        "sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]}}).encode()  # fmt: skip
    descriptors, pushed = [], {}
    for blob, media_type in [(config, "application/vnd.oci.image.config.v1+json")] + [
        (layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers
    ]:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        start = requests.post(f"{registry_url}/v2/{repository}/blobs/uploads/", timeout=60)
        location = start.headers["Location"]
        location = location if location.startswith("http") else registry_url + location
        separator = "&" if "?" in location else "?"
        requests.put(f"{location}{separator}digest={digest}", data=blob, timeout=600).raise_for_status()
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
        pushed[digest] = len(blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()  # fmt: skip
    tag = name.rsplit(":", 1)[1]
    media = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    put = requests.put(f"{registry_url}/v2/{repository}/manifests/{tag}", data=manifest, timeout=60, headers=media)
    put.raise_for_status()
    pushed["manifest:" + name] = len(manifest)
    return pushed


def _served_repository(name: str) -> str:
    registry, rest = name.split("/", 1)
    return f"{'k8s' if registry == 'registry.k8s.io' else 'hub'}/{rest.rsplit(':', 1)[0]}"


def _rpm_repository(mirror, rng: random.Random) -> Tuple[List[str], int]:  # type: ignore[no-untyped-def]
    """Random-content packages and a primary.xml naming them (the builder checks checksums only)."""
    sizes = dict(KUBE_RPMS)
    sizes.update({f"lib-bench{index}": 0 for index in range(OTHER_RPMS)})
    packages = {(name, "1.0"): _random(mib * MIB if mib else rng.randrange(100_000, 8 * MIB), rng)
                for name, mib in sizes.items()}  # fmt: skip
    return list(sizes), serve_rpm_repository(mirror, "repo", packages)


def serve_rpm_repository(mirror, path: str, packages: Dict[Tuple[str, str], bytes]) -> int:  # type: ignore[no-untyped-def]
    """Serve (name, version) -> content as x86_64 packages with a primary.xml under /RPM_HOST/path; returns bytes."""
    entries, total = [], 0
    for (name, version), data in packages.items():
        filename = f"{name}-{version}-1.el9.x86_64.rpm"
        mirror.add(f"/{RPM_HOST}/{path}/Packages/{filename}", data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append(
            f'<package type="rpm"><name>{name}</name><arch>x86_64</arch><version epoch="0" ver="{version}" '
            f'rel="1.el9"/><checksum type="sha256" pkgid="YES">{digest}</checksum><location href="Packages/'
            f'{filename}"/><size package="{len(data)}"/><format><rpm:provides><rpm:entry name="{name}" flags="EQ" '
            f'epoch="0" ver="{version}" rel="1.el9"/></rpm:provides></format></package>'
        )
        total += len(data)
    primary = gzip.compress(
        ('<?xml version="1.0"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
         f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(entries)}">'
         + "".join(entries) + "</metadata>\n").encode(), mtime=0,
    )  # fmt: skip
    primary_sum = hashlib.sha256(primary).hexdigest()
    repomd = (
        '<?xml version="1.0"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision>'
        f'<data type="primary"><checksum type="sha256">{primary_sum}</checksum>'
        f'<location href="repodata/{primary_sum}-primary.xml.gz"/></data></repomd>\n'
    ).encode()
    mirror.add(f"/{RPM_HOST}/{path}/repodata/{primary_sum}-primary.xml.gz", primary)
    mirror.add(f"/{RPM_HOST}/{path}/repodata/repomd.xml", repomd)
    return total + len(primary) + len(repomd)


def _timed(command: List[str], **kwargs: object) -> Tuple[float, int]:
    """Seconds, and the peak RSS (KiB) of that one process, as GNU time reports it: measuring from here
    would count the pages this process (holding the served release) shares with its fork."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.monotonic()
        subprocess.run(["/usr/bin/time", "-o", rss.name, "-f", "%M", *command], check=True, **kwargs)  # type: ignore[call-overload]
        elapsed = time.monotonic() - started
        return elapsed, int(rss.read().split()[-1])


def _sequential(plan: dict, mirror_url: str, registry_url: str, work: Path) -> float:  # type: ignore[type-arg]
    """The same bytes fetched one after another: curl per file and RPM, skopeo per image into one layout."""
    out = work / "sequential"
    out.mkdir()
    seconds = 0.0
    for source in plan["sources"]:
        if source["kind"] == "images":
            for index, name in enumerate(source["images"]):
                target = f"oci:{out / 'layout'}:image{index}"
                tag = name.rsplit(":", 1)[1]
                source_ref = f"docker://{registry_url.split('//', 1)[1]}/{_served_repository(name)}:{tag}"
                seconds += _timed(["skopeo", "copy", "--src-tls-verify=false", source_ref, target],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)[0]  # fmt: skip
            continue
        for blob in source["blobs"]:
            seconds += _timed(["curl", "-sSf", "-o", str(out / "blob"), blob["urls"][0]])[0]
    return seconds


def _tarball_alone(bundle_tar: Path, work: Path) -> float:
    """Write the same tarball again from the unpacked bundle with bundler's writer (sums known, no hashing);
    the median of three, as for the warm rebuild."""
    unpacked = work / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(bundle_tar), "-C", str(unpacked)], check=True)
    top = next(unpacked.iterdir())
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom bundler.bundle_writer import BundleContents, write_tarball\n"
        "top = Path(sys.argv[1]); contents = BundleContents()\n"
        "for line in (top / 'SHA256SUMS').read_text().splitlines():\n"
        "    digest, path = line.split('  ', 1)\n"
        "    contents.add_file(path, top / path, digest, (top / path).stat().st_size)\n"
        "start = time.monotonic(); write_tarball(contents, top.name, Path(sys.argv[2]), 1700000000)\n"
        "print(time.monotonic() - start)\n"
    )
    runs = []
    for round_ in range(3):
        os.sync()
        result = subprocess.run([sys.executable, "-c", script, str(top), str(work / f"alone{round_}.tar")], cwd=REPO,
                                check=True, capture_output=True, text=True)  # fmt: skip
        runs.append(float(result.stdout.strip()))
    return sorted(runs)[1]


def inner(work: Path) -> List[str]:
    """Runs inside the shaped namespace: servers, the release, the measurements."""
    from tests.support.http_server import MirrorServer
    from tests.support.registry import Registry

    mirror = MirrorServer().start()
    registry = Registry(work / "registry-storage", work / "registry").start()
    try:
        registry_url = registry.url
        manifest, content_bytes = make_release(work, mirror, registry_url)
        host = registry.host
        build = [sys.executable, "-m", "bundler", "build", "--manifest", str(manifest), "--mirror", mirror.url,
                 "--insecure-registry", host, "--registry-mirror", f"registry.k8s.io=http://{host}/k8s",
                 "--registry-mirror", f"docker.io=http://{host}/hub"]  # fmt: skip
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        quiet = {"cwd": REPO, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        plan_run = subprocess.run(build + ["--cache", str(work / "cache"), "--dry-run", "--json"], cwd=REPO, env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
        plan = json.loads(plan_run.stdout)
        cold, peak_kib = _timed(build + ["--cache", str(work / "cache"), "--output", str(work / "cold")], **quiet)
        warm = sorted(
            _timed(build + ["--cache", str(work / "cache"), "--output", str(work / f"warm{i}")], **quiet)[0]
            for i in range(3)
        )[1]
        tarball = next((work / "cold").glob("*.tar"))
        alone = _tarball_alone(tarball, work)
        sequential = _sequential(plan, mirror.url, registry_url, work)
    finally:
        registry.stop()
        mirror.stop()
    rate_bytes = _rate_bytes_per_second(RATE)
    floor = content_bytes / rate_bytes
    count = sum(source["count"] for source in plan["sources"])
    kinds = ", ".join(f"{source['kind']} {source['count']}" for source in plan["sources"])
    return [
        f"release: {content_bytes / 2**30:.2f} GiB in {count} blobs ({kinds}); link {RATE} (tc tbf); "
        f"tarball {tarball.stat().st_size / 2**30:.2f} GiB",
        f"cold build {cold:.1f} s; link floor {floor:.1f} s; ratio {cold / floor:.2f} (goal <= 1.15)",
        f"same bytes one after another (curl, skopeo) {sequential:.1f} s; ratio cold/sequential "
        f"{cold / sequential:.2f} (goal <= 0.5)",
        f"warm rebuild (median of 3) {warm:.1f} s; tarball alone {alone:.1f} s; ratio {warm / alone:.2f} (goal <= 1.2)",
        f"peak memory of the cold build {peak_kib / 1024:.0f} MiB (goal <= 150 MB)",
    ]


def _rate_bytes_per_second(rate: str) -> float:
    units = {"kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8}
    for unit, factor in units.items():
        if rate.endswith(unit):
            return float(rate[: -len(unit)]) * factor
    raise ValueError(f"BENCH_RATE {rate!r}: give e.g. 100mbit")


def run() -> List[str]:
    """Make the namespace (only loopback, shaped), run `inner` in it, remove it."""
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("skopeo"):
        return ["release: skipped (needs root, tc and skopeo)"]
    namespace = f"bench12-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "mtu", "1500", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", namespace, "tc", "qdisc", "add", "dev", "lo", "root", "tbf",
                        "rate", RATE, "burst", "128kb", "latency", "100ms"], check=True)  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-release-") as work:
            result = subprocess.run(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "tests.bench.release", "--inner", work],
                cwd=REPO, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                return [f"release: failed: {result.stderr.strip()[-2000:]}"]
            return result.stdout.strip().splitlines()
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        print("\n".join(inner(Path(sys.argv[2]))))
    else:
        print("\n".join(run()))
