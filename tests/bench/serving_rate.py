"""The bundle host's serving rate (issue 23): nginx and the registry as `serve` sets them up, against the same
nginx and registry started alone with a minimal configuration on the same files.

A bundle with a few large files and images (one with a 48 MiB layer) is built and unpacked; `serve --root`
writes its configuration and loads the images; its two services are started as their units say (paths
mapped under the root, tests/k8s_install/serve/test_serve.py's Daemon). Beside them, on other loopback
ports: nginx with only `listen ssl`, the certificate, `root` the same bundle folder and sendfile (a
distribution's default), and the registry with only its storage (the same folder) and TLS. Access logs are
off in all four (serve keeps them off; on the baselines they would only cost the baseline).

BENCH_CLIENTS (default 6) curl clients at once, each fetching every file of the bundle (as a node does), then
every blob and manifest of every image (as containerd does); the setups take turns for BENCH_ROUNDS rounds
(default 5) and the median of each is kept. Printed: MiB/s of each, serve / alone from the medians and the
median of each round's serve / alone (measured back to back; 1.00x: serve costs nothing). No timing
assertion anywhere: figures only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import yaml

CLIENT_ACCEPT = (
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)
BIG_LAYER = 48 << 20
FILE_SIZES = {"containerd": 64 << 20, "runc": 32 << 20, "calico-manifest": 5_000}


def missing() -> str:
    from tests.support.test_images import missing_tools

    tools = [tool for tool in ("nginx", "curl", "openssl") if not shutil.which(tool)] + missing_tools()
    if os.geteuid() != 0:
        return "needs root (serve's nginx runs its workers as nobody)"
    return f"needs {', '.join(tools)}" if tools else ""


def run() -> List[str]:
    reason = missing()
    if reason:
        return [f"skipped: {reason}"]
    clients = int(os.environ.get("BENCH_CLIENTS", "6"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    work = Path(tempfile.mkdtemp(prefix="bench-serving-", dir="/var/tmp"))
    work.chmod(0o755)  # nginx's workers (nobody) read the bundle under it
    try:
        bundle = build_served_bundle(work)
        return measure(work, bundle, clients, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_served_bundle(work: Path) -> Path:
    """The test images plus one with a large layer, and large stand-in files: built, then unpacked."""
    from tests.conftest import StandInRelease
    from tests.support.http_server import MirrorServer
    from tests.support.image_fixtures import build_bundle
    from tests.support.registry import Registry
    from tests.support.test_images import Buildah, _image, build_test_images

    images = build_test_images(work / "images")
    big = work / "big-layer.bin"
    big.write_bytes(os.urandom(BIG_LAYER))
    buildah = Buildah(work / "buildah")
    _image(buildah, work, "big-amd64", "amd64", "scratch", {"/data/blob": f"@{big}"})
    mirror = MirrorServer().start()
    try:
        with Registry(images.storage, work / "source-registry") as source:
            copied = subprocess.run(
                ["skopeo", "copy", "--dest-tls-verify=false", buildah.storage_ref("localhost/big-amd64"),
                 f"docker://{source.host}/test/big:1.0"],
                capture_output=True, text=True,
            )  # fmt: skip
            if copied.returncode != 0:
                raise RuntimeError(f"skopeo copy: {copied.stderr}")
            (work / "release-files").mkdir()
            release = StandInRelease(mirror, work / "release-files", dict(FILE_SIZES))
            release.set_images([f"{source.host}/test/busybox:1.0", f"{source.host}/test/big:1.0",
                                f"{source.host}/test/app:2.0", "registry.k8s.io/pause:3.9"])  # fmt: skip
            built = build_bundle(release, work / "build", "--insecure-registry", source.host,
                                 "--registry-mirror", f"registry.k8s.io=http://{source.host}/mirrored")  # fmt: skip
            if built.returncode != 0:
                raise RuntimeError(f"bundler build: {built.stderr}")
    finally:
        mirror.stop()
    tarball = next((work / "build" / "out").glob("*.tar"))
    served = work / "served"
    served.mkdir(mode=0o755)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(served)], check=True)
    return next(path for path in served.iterdir() if path.is_dir())


def measure(work: Path, bundle: Path, clients: int, rounds: int) -> List[str]:
    from k8s_install.cluster.secrets import generate_secrets, write_secrets
    from k8s_install.main import main
    from k8s_install.serve import layout
    from tests.k8s_install.serve.test_serve import NGINX, Daemon
    from tests.support.registry import REGISTRY_BINARY, free_port

    secrets = work / "cluster-secrets.yaml"
    write_secrets(secrets, generate_secrets("bench"))
    root = work / "host"
    (root / "etc").mkdir(parents=True)
    shutil.copy("/etc/group", root / "etc/group")
    ports = {name: free_port() for name in ("web", "registry", "plain-web", "plain-registry")}
    started = time.monotonic()
    argv = ["serve", "--yes", "--root", str(root), "--bundle", str(bundle), "--secrets", str(secrets),
            "--address", "127.0.0.1", "--https-port", str(ports["web"]), "--registry-port", str(ports["registry"]),
            "--nginx-binary", NGINX, "--registry-binary", REGISTRY_BINARY]  # fmt: skip
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = main(argv)
    if status != 0:
        raise RuntimeError(f"serve failed: {output.getvalue()[-2000:]}")
    serve_seconds = time.monotonic() - started
    ca = work / "ca.crt"
    ca.write_text(yaml.safe_load(secrets.read_text())["ca_cert"])
    (root / layout.NGINX_RUN.lstrip("/")).mkdir(parents=True, exist_ok=True)  # systemd's RuntimeDirectory
    daemons = work / "daemons"
    daemons.mkdir()
    cert, key = (root / layout.TLS_CERT.lstrip("/"), root / layout.TLS_KEY.lstrip("/"))
    storage = root / layout.REGISTRY_STORAGE.lstrip("/")
    processes: List[subprocess.Popen] = []
    served: List[Daemon] = []
    try:
        served = [Daemon(root, service, daemons).start() for service in (layout.WEB_SERVICE, layout.REGISTRY_SERVICE)]
        processes.append(plain_nginx(work / "plain-nginx", bundle, cert, key, ports["plain-web"], NGINX))
        processes.append(plain_registry(work / "plain-registry", storage, cert, key, ports["plain-registry"]))
        for port in ports.values():
            wait_answering(f"https://127.0.0.1:{port}/", ca)
        files = served_files(bundle)
        blobs = image_paths(bundle)
        file_bytes = sum((bundle / path).stat().st_size for path in files)
        blob_bytes = sum(size for _, size in blobs)
        rates: Dict[str, List[float]] = {key: [] for key in ports}
        for _ in range(rounds):
            for setup, port in ports.items():
                if setup.endswith("web"):
                    urls = [f"https://127.0.0.1:{port}/{path}" for path in files]
                    seconds = at_once(clients, urls, ca)
                    rates[setup].append(clients * file_bytes / seconds / 2**20)
                else:
                    urls = [f"https://127.0.0.1:{port}{path}" for path, _ in blobs]
                    seconds = at_once(clients, urls, ca, ("-H", f"Accept: {CLIENT_ACCEPT}"))
                    rates[setup].append(clients * blob_bytes / seconds / 2**20)
    finally:
        for daemon in served:
            daemon.stop()
        for process in processes:
            stop(process)
    median = {setup: statistics.median(values) for setup, values in rates.items()}

    def spread(setup: str) -> str:
        return "/".join(f"{value:.0f}" for value in rates[setup])

    def paired(setup: str) -> str:
        """The median of each round's serve / alone (measured back to back): steadier under a drifting load."""
        ratios = [ours / alone for ours, alone in zip(rates[setup], rates[f"plain-{setup}"])]
        return f"{statistics.median(ratios):.2f}x (rounds {', '.join(f'{ratio:.2f}' for ratio in ratios)})"

    return [
        f"{clients} clients at once, {rounds} rounds each, setups taking turns ({os.cpu_count()} cores); "
        f"serve --root took {serve_seconds:.1f} s",
        f"nginx: {len(files)} files, {file_bytes / 2**20:.1f} MiB per client; as serve sets it up "
        f"{median['web']:.0f} MiB/s ({spread('web')}), alone with a minimal config {median['plain-web']:.0f} MiB/s "
        f"({spread('plain-web')}): serve / alone = {median['web'] / median['plain-web']:.2f}x; "
        f"round by round {paired('web')}",
        f"registry: {len(blobs)} blobs and manifests, {blob_bytes / 2**20:.1f} MiB per client; as serve sets it up "
        f"{median['registry']:.0f} MiB/s ({spread('registry')}), alone with a minimal config "
        f"{median['plain-registry']:.0f} MiB/s ({spread('plain-registry')}): serve / alone = "
        f"{median['registry'] / median['plain-registry']:.2f}x; round by round {paired('registry')}",
    ]


def plain_nginx(work: Path, bundle: Path, cert: Path, key: Path, port: int, nginx: str) -> subprocess.Popen:
    work.mkdir()
    config = work / "nginx.conf"
    config.write_text(
        f"daemon off;\nworker_processes auto;\npid {work}/nginx.pid;\nerror_log stderr warn;\nevents {{}}\n"
        f"http {{\n  sendfile on;\n  access_log off;\n  client_body_temp_path {work}/body;\n"
        f"  proxy_temp_path {work}/proxy;\n  fastcgi_temp_path {work}/fastcgi;\n  uwsgi_temp_path {work}/uwsgi;\n"
        f"  scgi_temp_path {work}/scgi;\n"
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
        f"    root {bundle};\n  }}\n}}\n"
    )
    log = open(work / "nginx.log", "wb")  # noqa: SIM115 (closed with the process's end)
    return subprocess.Popen([nginx, "-c", str(config)], stdout=log, stderr=log)


def plain_registry(work: Path, storage: Path, cert: Path, key: Path, port: int) -> subprocess.Popen:
    from tests.support.registry import REGISTRY_BINARY

    work.mkdir()
    config = work / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    log = open(work / "registry.log", "wb")  # noqa: SIM115
    return subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_answering(url: str, ca: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-s", "-o", "/dev/null", "--cacert", str(ca), url]).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def served_files(bundle: Path) -> List[str]:
    """Every path of SHA256SUMS, and SHA256SUMS: what a control plane fetches."""
    listed = [line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines() if line]
    return ["SHA256SUMS", *listed]


def image_paths(bundle: Path) -> List[Tuple[str, int]]:
    """/v2/ paths of every manifest and blob of every image, as the bundle host's registry serves them."""
    from k8s_install.images.push import target_for

    blobs = bundle / "images/blobs/sha256"

    def read(digest: str) -> dict:
        return dict(json.loads((blobs / digest.split(":", 1)[1]).read_text()))

    def size(digest: str) -> int:
        return (blobs / digest.split(":", 1)[1]).stat().st_size

    paths: List[Tuple[str, int]] = []
    for entry in json.loads((bundle / "images/index.json").read_text())["manifests"]:
        repository = target_for(entry["annotations"]["io.containerd.image.name"], "").repository
        pending = [str(entry["digest"])]
        while pending:
            digest = pending.pop()
            paths.append((f"/v2/{repository}/manifests/{digest}", size(digest)))
            document = read(digest)
            pending += [str(child["digest"]) for child in document.get("manifests") or []]
            for blob in [document["config"], *document["layers"]] if "config" in document else []:
                paths.append((f"/v2/{repository}/blobs/{blob['digest']}", size(str(blob["digest"]))))
    return paths


def at_once(clients: int, urls: Sequence[str], ca: Path, extra: Sequence[str] = ()) -> float:
    """Wall time of `clients` curl processes at once, each fetching every URL in turn over one connection."""
    argv = ["curl", "-sSf", "--cacert", str(ca), *extra]
    for url in urls:
        argv += ["-o", "/dev/null", url]

    def fetch(_: int) -> None:
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"curl: {result.stderr.strip()[-500:]}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(fetch, number) for number in range(clients)]:
            future.result()
    return time.monotonic() - started


if __name__ == "__main__":
    print("\n".join(run()))
