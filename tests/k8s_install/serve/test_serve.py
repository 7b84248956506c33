"""`k8s-install.pyz serve`: the bundle host made under a --root, then its real nginx and docker-registry
started by the test from the units serve rendered (paths mapped under the root), on free loopback ports.

A client that trusts only the cluster CA fetches files whose bytes match SHA256SUMS; skopeo reads every image
by digest from the registry; a second run changes nothing; status reports; reset leaves nothing of serve's.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import shutil
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest
import yaml

from k8s_install.bundle_format.opened import open_bundle
from k8s_install.bundle_url.client import BundleHost
from k8s_install.bundle_url.fetch import fetch_bundle
from k8s_install.main import main
from k8s_install.serve import layout
from tests.conftest import StandInRelease
from tests.support.bundle_host import unpacked_for_nginx
from tests.support.charts import helm, package_chart, serve_repository
from tests.support.containerd import Containerd
from tests.support.image_fixtures import build_bundle
from tests.support.prerequisites import require
from tests.support.registry import REGISTRY_BINARY, Registry, free_port

pytestmark = [pytest.mark.daemons, pytest.mark.root]

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def add_registry_artifact(release: StandInRelease, binary: bytes) -> None:
    """The release's `registry` artifact: a tarball holding `binary` as `registry`, as distribution's does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for name, data in (("LICENSE", b"Apache-2.0 (stand-in)\n"), ("registry", binary)):
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o755
            archive.addfile(member, io.BytesIO(data))
    data = buffer.getvalue()
    url_path = "/releases/registry/registry_2.8.3_linux_{arch}.tar.gz"
    for arch in ("amd64", "arm64"):
        release.mirror.add(f"/downloads.example.invalid{url_path.replace('{arch}', arch)}", data)
    digest = hashlib.sha256(data).hexdigest()
    files: List[Dict[str, object]] = release.manifest["files"]  # type: ignore[assignment]
    files.append({"name": "registry", "version": "2.8.3", "url": f"https://downloads.example.invalid{url_path}",
                  "sha256": {"amd64": digest, "arm64": digest}})  # fmt: skip
    release.write()


@pytest.fixture
def served_bundle(release: StandInRelease, registry: Registry, tmp_path: Path) -> Iterator[Path]:
    """A bundle with images and Debian's docker-registry as its `registry` artifact, unpacked where nginx's
    workers (nobody) may read it (pytest's tmp is 0700)."""
    add_registry_artifact(release, Path(REGISTRY_BINARY).read_bytes())
    release.set_images(
        [f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0", "registry.k8s.io/pause:3.9"]
    )
    chart = package_chart(tmp_path / "chart", f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0")
    serve_repository(release.mirror, chart)  # a chart whose images the bundle has anyway: served from charts/
    result = build_bundle(
        release,
        tmp_path,
        "--insecure-registry",
        registry.host,
        "--registry-mirror",
        f"registry.k8s.io=http://{registry.host}/mirrored",
        "--chart",
        chart.pinned_ref,
    )
    assert result.returncode == 0, result.stderr
    with unpacked_for_nginx(tmp_path / "out" / f"{TOP}.tar", TOP, "serve-bundle-") as top:
        yield top


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    from k8s_install.cluster.secrets import generate_secrets, write_secrets

    path = tmp_path / "cluster-secrets.yaml"
    write_secrets(path, generate_secrets("servetest"))
    return path


@pytest.fixture
def host_root(tmp_path: Path) -> Path:
    """The bundle host's system image: its /etc/group (nginx's workers run as nobody), nothing else."""
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    shutil.copy("/etc/group", root / "etc/group")
    return root


def serve(root: Path, bundle: Path, secrets: Path, ports: Dict[str, int], *extra: str) -> List[str]:
    argv = [
        "serve",
        *extra,
        "--root",
        str(root),
        "--bundle",
        str(bundle),
        "--secrets",
        str(secrets),
        "--address",
        "127.0.0.1",
        "--https-port",
        str(ports["web"]),
        "--registry-port",
        str(ports["registry"]),
        "--nginx-binary",
        NGINX,
    ]
    return argv


def files_under(root: Path) -> Set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() or path.is_symlink()}


def mapped(text: str, root: Path) -> str:
    """A path of the served machine as it is under the test's root."""
    for folder in (*layout.OWN_DIRS, layout.REGISTRY_BINARY):
        text = text.replace(folder, f"{root}{folder}")
    return text


class Daemon:
    """A service serve rendered, started as its unit says (ExecStartPre, ExecStart), its paths mapped under
    the root; stopped by its PID."""

    def __init__(self, root: Path, service: str, work: Path) -> None:
        unit = (root / layout.unit_path(service).lstrip("/")).read_text()
        commands = {key: value for key, _, value in (line.partition("=") for line in unit.splitlines()) if value}
        self.root = root
        self.work = work
        self.pre = commands.get("ExecStartPre")
        self.start_line = commands["ExecStart"]
        self.process: subprocess.Popen[bytes]
        self.log = work / f"{service}.log"

    def argv(self, line: str) -> List[str]:
        words = [mapped(word, self.root) for word in shlex.split(line)]
        config = Path(words[-1])
        copy = self.work / config.name
        copy.write_text(mapped(config.read_text(), self.root))  # the config's own paths mapped too
        return [*words[:-1], str(copy)]

    def start(self) -> Daemon:
        if self.pre:
            check = subprocess.run(self.argv(self.pre), capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(self.argv(self.start_line), stdout=log, stderr=log)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for(url: str, context: ssl.SSLContext, daemon: Daemon) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert daemon.process.poll() is None, daemon.log.read_text()[-2000:]
        try:
            urllib.request.urlopen(url, context=context, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {daemon.log.read_text()[-2000:]}")


def fetch(url: str, context: ssl.SSLContext, method: str = "GET") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), context=context, timeout=10) as answer:
        return answer.read()


def test_serve_makes_a_bundle_host_that_serves_the_bundle_and_its_images(
    served_bundle: Path,
    secrets_file: Path,
    host_root: Path,
    containerd: Containerd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require("nginx", "docker-registry", "skopeo", "openssl", "helm")
    ports = {"web": free_port(), "registry": free_port()}
    before = files_under(host_root)

    assert main(serve(host_root, served_bundle, secrets_file, ports, "plan")) == 0
    planned = capsys.readouterr().out
    assert (
        "would load 3 of 3 image(s) into the registry" in planned and not (host_root / "etc/k8s-bundle-host").exists()
    )

    assert main(serve(host_root, served_bundle, secrets_file, ports, "--yes")) == 0
    first = capsys.readouterr().out
    assert "issue the serving certificate (IP:127.0.0.1, DNS:localhost)" in first
    assert f"bundle host: files at https://127.0.0.1:{ports['web']}/" in first
    assert f"charts (demo 0.1.0): helm repo add bundle https://127.0.0.1:{ports['web']}/charts" in first
    key = host_root / layout.TLS_KEY.lstrip("/")
    assert key.stat().st_mode & 0o777 == 0o600

    # a second run changes nothing
    stamps = {path: os.lstat(host_root / path).st_mtime_ns for path in files_under(host_root) if "log" not in path}
    assert main(serve(host_root, served_bundle, secrets_file, ports, "--yes")) == 0
    assert "done: 0 change(s) applied" in capsys.readouterr().out
    assert {path: os.lstat(host_root / path).st_mtime_ns for path in stamps} == stamps

    # the units are what systemd accepts
    if shutil.which("systemd-analyze"):
        (tmp_path / "units").mkdir()
        units = [tmp_path / "units" / f"{service}.service" for service in layout.SERVICES]
        for unit in units:  # the binaries as seen from here
            unit.write_text(mapped((host_root / layout.UNIT_DIR.lstrip("/") / unit.name).read_text(), host_root))
        check = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr

    # the services, as their units start them
    ca = tmp_path / "ca.crt"
    ca.write_text(yaml.safe_load(secrets_file.read_text())["ca_cert"])
    context = ssl.create_default_context(cafile=str(ca))  # the cluster CA only, host names checked
    (host_root / layout.NGINX_RUN.lstrip("/")).mkdir(parents=True, exist_ok=True)  # systemd's RuntimeDirectory
    work = tmp_path / "daemons"
    work.mkdir()
    web = Daemon(host_root, layout.WEB_SERVICE, work).start()
    registry = Daemon(host_root, layout.REGISTRY_SERVICE, work).start()
    try:
        base = f"https://127.0.0.1:{ports['web']}"
        wait_for(f"{base}/SHA256SUMS", context, web)
        wait_for(f"https://127.0.0.1:{ports['registry']}/v2/", context, registry)
        sums = fetch(f"{base}/SHA256SUMS", context)
        assert sums == (served_bundle / "SHA256SUMS").read_bytes()
        listed = dict(reversed(line.split("  ", 1)) for line in sums.decode().splitlines())
        for path in [name for name in listed if name.startswith(("images/blobs", "files/"))][:5] + ["bundle.yaml"]:
            assert hashlib.sha256(fetch(f"{base}/{path}", context)).hexdigest() == listed[path], path
        (tmp_path / "pulled-chart").mkdir()  # the bundle's charts/ is a chart repository: the real helm pulls
        pulled = helm("pull", "demo", "--repo", f"{base}/charts", "--version", "0.1.0", "--ca-file", str(ca),
                      "--destination", str(tmp_path / "pulled-chart"), cwd=tmp_path)  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        assert (tmp_path / "pulled-chart/demo-0.1.0.tgz").read_bytes() == (
            served_bundle / "charts/demo-0.1.0.tgz"
        ).read_bytes()
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(f"{base}/SHA256SUMS", context, method="DELETE")
        assert refused.value.code in (403, 405)
        with pytest.raises(urllib.error.URLError):  # a client without the cluster CA is refused by its own check
            fetch(f"{base}/SHA256SUMS", ssl.create_default_context())

        # a worker fills its bundle folder from this host (--bundle-url, docs/bundle-url.md), every file checked
        node = tmp_path / "node" / served_bundle.name
        fetched = fetch_bundle(BundleHost(base, ca.read_text(), str(ca)), node, None, "worker", echo=lambda _: None)
        assert fetched.fetched_files == len(fetched.needed)
        with open_bundle(node, needed=fetched.needed) as opened:
            assert len(opened.files) == len(fetched.needed)

        cert_dir = tmp_path / "certs.d"
        cert_dir.mkdir()
        shutil.copy(ca, cert_dir / "ca.crt")
        bundled = {
            image["name"]: image["digest"]
            for image in yaml.safe_load((served_bundle / "bundle.yaml").read_text())["images"]
        }
        assert len(bundled) == 3
        for name, digest in bundled.items():
            repository = name.split("/", 1)[1].rsplit(":", 1)[0]  # the registry host dropped
            reference = f"127.0.0.1:{ports['registry']}/{repository}@{digest}"
            inspected = subprocess.run(
                ["skopeo", "inspect", "--raw", "--cert-dir", str(cert_dir), f"docker://{reference}"],
                capture_output=True,
            )
            assert inspected.returncode == 0, inspected.stderr
            assert "sha256:" + hashlib.sha256(inspected.stdout).hexdigest() == digest
            (tmp_path / "pulled" / repository).mkdir(parents=True)
            copied = subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "--src-cert-dir",
                    str(cert_dir),
                    f"docker://{reference}",
                    f"dir:{tmp_path / 'pulled' / repository}",
                ],
                capture_output=True,
                text=True,
            )
            assert copied.returncode == 0, copied.stderr  # every blob read back and checked by skopeo
        pushed = subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-cert-dir",
                str(cert_dir),
                f"dir:{tmp_path / 'pulled' / 'test/app'}",
                f"docker://127.0.0.1:{ports['registry']}/intruder:1",
            ],
            capture_output=True,
            text=True,
        )
        assert pushed.returncode != 0  # the served registry is read-only

        # containerd pulls by digest through a mirror of the upstream registry pointing at the bundle host
        hosts = tmp_path / "hosts"
        mirror = f"https://127.0.0.1:{ports['registry']}"
        for name, digest in bundled.items():
            upstream = name.split("/", 1)[0]
            (hosts / upstream).mkdir(parents=True, exist_ok=True)
            (hosts / upstream / "hosts.toml").write_text(
                f'server = "{mirror}"\n\n[host."{mirror}"]\n  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n'
            )  # the bundle host, and no fallback to upstream (server is the bundle host too)
            pulled = containerd.run_ctr(
                "images", "pull", "--hosts-dir", str(hosts), f"{name.rsplit(':', 1)[0]}@{digest}"
            )
            assert pulled.returncode == 0, pulled.stderr

        assert main(["serve", "status", "--root", str(host_root)]) == 0
        status = capsys.readouterr().out
        assert "registry: 3 of 3 bundled images stored" in status
        assert f"files:  https://127.0.0.1:{ports['web']}/" in status and "expires" in status
    finally:
        web.stop()
        registry.stop()

    assert main(["serve", "reset", "--yes", "--root", str(host_root)]) == 0
    assert "serve reset: done" in capsys.readouterr().out
    left = {path for path in files_under(host_root) - before if path != "var/log/k8s-install.log"}
    assert left == set()
    assert main(["serve", "status", "--root", str(host_root)]) == 0
    assert "not set up" in capsys.readouterr().out


# -- bad input: one line naming what to fix, exit 1 (2 for the command line), nothing written ----------------------


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bundle without images and without the registry artifact, unpacked where nobody may read it."""
    from tests.support.http_server import MirrorServer

    work = tmp_path_factory.mktemp("plain")
    mirror = MirrorServer().start()
    try:
        result = build_bundle(StandInRelease(mirror, work), work)
        assert result.returncode == 0, result.stderr
    finally:
        mirror.stop()
    with unpacked_for_nginx(work / "out" / f"{TOP}.tar", TOP, "serve-plain-") as top:
        yield top


def refused(argv: List[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Exit 1 with one line on stderr; that line."""
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("k8s-install.pyz: error: "), lines
    return lines[0]


def test_serve_refuses_bad_input_with_one_line(
    plain_bundle: Path, secrets_file: Path, host_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("nginx", "docker-registry", "openssl")
    ports = {"web": 8443, "registry": 5443}
    before = files_under(host_root)
    base = serve(host_root, plain_bundle, secrets_file, ports, "plan")

    error = refused(base, capsys)  # the bundle carries no registry and none was named
    assert "the bundle carries no registry binary (artifact registry)" in error and "--registry-binary" in error

    no_secrets = [word for word in base if word != str(secrets_file)]
    no_secrets.remove("--secrets")
    assert "pass --secrets FILE (cluster-secrets.yaml, with ca_key)" in refused(no_secrets, capsys)

    from k8s_install.cluster.secrets import load_secrets, worker_secrets, write_secrets

    worker = tmp_path / "cluster-secrets-worker.yaml"
    write_secrets(worker, worker_secrets(load_secrets(secrets_file, "servetest").secrets))
    worker_argv = [str(worker) if word == str(secrets_file) else word for word in base]
    assert "a worker-only secrets file has no CA key" in refused(worker_argv, capsys)

    assert "--address 'no such name!'" in refused([*base, "--address", "no such name!"], capsys)

    hidden = tmp_path / "private"  # pytest's tmp_path: 0700 on the way
    shutil.copytree(plain_bundle, hidden)
    error = refused([str(hidden) if word == str(plain_bundle) else word for word in base], capsys)
    assert "nginx serves the bundle as user nobody, who cannot read" in error and "/srv/k8s-bundle" in error

    with pytest.raises(SystemExit) as bad_port:
        main([*base, "--https-port", "70000"])
    assert bad_port.value.code == 2
    capsys.readouterr()
    assert files_under(host_root) - before <= {"var/log/k8s-install.log"}  # nothing half-written


def test_serve_plan_with_a_named_registry_changes_nothing(
    plain_bundle: Path, secrets_file: Path, host_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("nginx", "docker-registry", "openssl")
    before = files_under(host_root)
    argv = serve(host_root, plain_bundle, secrets_file, {"web": 8443, "registry": 5443}, "--dry-run")
    assert main([*argv, "--registry-binary", REGISTRY_BINARY]) == 0
    planned = capsys.readouterr().out
    assert "would create /etc/k8s-bundle-host/nginx.conf" in planned
    assert "would enable k8s-bundle-web.service" in planned
    assert "[serve-images] bundle images in the registry: ok" in planned  # a bundle without images
    assert files_under(host_root) - before <= {"var/log/k8s-install.log"}


def test_a_changed_address_or_port_changes_only_what_names_it(
    plain_bundle: Path, secrets_file: Path, host_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("nginx", "docker-registry", "openssl")
    ports = {"web": 8443, "registry": 5443}
    argv = [*serve(host_root, plain_bundle, secrets_file, ports, "--yes"), "--registry-binary", REGISTRY_BINARY]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--address", "bundles.example.internal"]) == 0
    renamed = capsys.readouterr().out
    assert "issue the serving certificate (IP:127.0.0.1, DNS:bundles.example.internal, DNS:localhost)" in renamed
    assert "done: 1 change(s) applied" in renamed  # the certificate only
    moved = [word if word != "8443" else "8444" for word in argv] + ["--address", "bundles.example.internal"]
    assert main(moved) == 0
    out = capsys.readouterr().out
    assert "update /etc/k8s-bundle-host/nginx.conf" in out and "registry.yml" not in out
    assert "listen 8444 ssl;" in (host_root / layout.NGINX_CONF.lstrip("/")).read_text()
    assert main(moved) == 0
    assert "done: 0 change(s) applied" in capsys.readouterr().out
    assert main(["serve", "reset", "--yes", "--root", str(host_root)]) == 0
