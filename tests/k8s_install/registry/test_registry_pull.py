"""The site registry as the real consumers see it: containerd pulls through the mirrors the installer renders.

A real `docker-registry` over TLS (a CA made here with openssl) with htpasswd basic auth holds the test images
under the prefix `mirrored` (as `images push --prefix mirrored` leaves them). containerd pulls
registry.k8s.io/pause:3.9 through it with `ctr images pull --hosts-dir` and through its CRI plugin, the path
kubelet uses (a tiny CRI client, tests/support/cri_client.py), with the account the installer wrote into the
CRI config and nothing in the request. The hosts files and config.toml are the installer's own renderings;
only the folders (root, state, socket, hosts dir) are moved under the test's.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, List, Optional, Sequence

import grpc
import pytest
import yaml

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import ArtifactFile, BundleManifest, Image
from k8s_install.cluster.model import SiteRegistry
from k8s_install.images.names import parse_image_name
from k8s_install.node.host import Host
from k8s_install.steps import containerd as containerd_step
from k8s_install.steps.containerd import containerd_config
from k8s_install.steps.registry import RegistryAuth, wanted_files
from tests.conftest import StandInRelease, run_bundler
from tests.support.containerd import Containerd
from tests.support.cri_client import CriImageClient
from tests.support.image_fixtures import build_bundle
from tests.support.prerequisites import require
from tests.support.registry import Registry, make_certificate, make_htpasswd
from tests.support.test_images import PushedImages

pytestmark = [pytest.mark.daemons]

USER, PASSWORD = "puller", "pull-Secret-42"
PAUSE = "registry.k8s.io/pause:3.9"  # the registry holds it as mirrored/pause:3.9
CLOSED = "https://127.0.0.1:1"  # nothing listens: stands for the unreachable upstream registry


@pytest.fixture(scope="module")
def site_files(pushed_images: PushedImages, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    require("containerd", "ctr", "docker-registry", "htpasswd", "openssl", "skopeo")
    work = tmp_path_factory.mktemp("site-registry")
    storage = work / "storage"
    shutil.copytree(pushed_images.storage, storage)
    return SimpleNamespace(
        work=work,
        storage=storage,
        tls=make_certificate(work / "pki", "site"),
        other_ca=make_certificate(work / "other-pki", "other"),  # a CA that did not sign the registry's certificate
        htpasswd=make_htpasswd(work / "htpasswd", USER, PASSWORD),
        pause_digest=pushed_images.digests["test/busybox:1.0"],
    )


@pytest.fixture
def site(site_files: SimpleNamespace, tmp_path: Path) -> Iterator[Registry]:
    with Registry(site_files.storage, tmp_path / "registry", site_files.tls, site_files.htpasswd) as registry:
        yield registry


def site_registry(registry: Registry, ca: Path) -> SiteRegistry:
    return SiteRegistry(registry.host, "site-ca.pem", "mirrored", ca.read_text())


def write_hosts(folder: Path, site: SiteRegistry, images: Sequence[str] = (PAUSE,)) -> Path:
    """The installer's hosts files, under `folder` instead of /etc/containerd/certs.d. After a failed mirror
    containerd tries the registry's own server; here that is a closed loopback port (tests reach nothing else)."""
    for path, data in wanted_files(images, site, str(folder)).items():
        text = data.decode()
        if path.endswith("/hosts.toml") and f"/{site.endpoint}/" not in path:
            server = next(line for line in text.splitlines() if line.startswith("server = "))
            text = text.replace(server, f'server = "{CLOSED}"')
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return folder


def node_config(work: Path, hosts: Path, auth: Optional[RegistryAuth]) -> str:
    """The installer's config.toml for containerd 1.7 (config version 2, the CRI plugin's registry section and
    the account), with its folders moved under `work`."""
    manifest = BundleManifest(
        kubernetes="1.29.6", os="rocky9", arch="amd64",
        artifacts=(ArtifactFile("containerd", "files/x", "", 0, version="1.7.20"),), images=(Image(PAUSE, ""),),
    )  # fmt: skip
    node = SimpleNamespace(bundle=Bundle(Path("/nonexistent"), manifest), host=Host(Path("/nonexistent")))
    text = containerd_config(node, auth)  # type: ignore[arg-type]
    moves = [
        (containerd_step.containerd_address, str(work / "containerd.sock")),
        (containerd_step.containerd_root_dir, str(work / "root")),
        (containerd_step.containerd_state_dir, str(work / "state")),
        (containerd_step.containerd_certs_dir, str(hosts)),
    ]
    for old, new in moves:
        assert f'"{old}"' in text, old
        text = text.replace(f'"{old}"', f'"{new}"')
    return text


@pytest.fixture
def node_containerd() -> Iterator[List[Containerd]]:
    """Started by each test with its config (CRI plugin on); stopped by PID afterwards."""
    started: List[Containerd] = []
    yield started
    for daemon in started:
        daemon.stop()
        shutil.rmtree(daemon.work, ignore_errors=True)


def start(
    started: List[Containerd], site: SiteRegistry, auth: Optional[RegistryAuth], images: Sequence[str] = (PAUSE,)
) -> Containerd:
    work = Path(tempfile.mkdtemp(prefix="ctd-", dir="/tmp"))  # a unix socket path stays under 108 bytes
    hosts = write_hosts(work / "certs.d", site, images)
    daemon = Containerd(work, node_config(work, hosts, auth))
    started.append(daemon)
    return daemon.start()


def ctr_pull(daemon: Containerd, image: str, user: str = f"{USER}:{PASSWORD}") -> subprocess.CompletedProcess:
    return daemon.run_ctr("images", "pull", "--hosts-dir", str(daemon.work / "certs.d"), "--user", user, image)


def test_ctr_pulls_through_the_mirror_with_the_installers_hosts_files(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd]
) -> None:
    daemon = start(node_containerd, site_registry(site, site_files.tls["cert"]), None)
    pulled = ctr_pull(daemon, PAUSE)
    assert pulled.returncode == 0, pulled.stderr
    listed = daemon.run_ctr("images", "ls").stdout
    assert any(line.startswith(f"{PAUSE} ") and site_files.pause_digest in line for line in listed.splitlines())
    # an image named after the site registry itself: its own hosts.toml gives the CA
    direct = ctr_pull(daemon, f"{site.host}/test/app:2.0")
    assert direct.returncode == 0, direct.stderr


def test_kubelets_path_the_cri_plugin_pulls_with_the_account_from_the_secrets(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd]
) -> None:
    require("containerd")
    auth = RegistryAuth(site.host, USER, PASSWORD)
    daemon = start(node_containerd, site_registry(site, site_files.tls["cert"]), auth)
    with CriImageClient(daemon.socket) as cri:
        assert cri.image_status(PAUSE) is None
        reference = cri.pull_image(PAUSE)  # as kubelet asks: no credentials in the request
        status = cri.image_status(PAUSE)
    assert status is not None and status.id == reference and PAUSE in status.repo_tags
    assert status.repo_digests == (f"registry.k8s.io/pause@{site_files.pause_digest}",)


def test_a_wrong_password_is_refused_by_the_registry(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd]
) -> None:
    wrong = RegistryAuth(site.host, USER, "not-the-password")
    daemon = start(node_containerd, site_registry(site, site_files.tls["cert"]), wrong)
    with CriImageClient(daemon.socket) as cri, pytest.raises(grpc.RpcError) as raised:
        cri.pull_image(PAUSE)
    assert "401 Unauthorized" in str(raised.value.details())  # type: ignore[attr-defined]
    refused = ctr_pull(daemon, PAUSE, f"{USER}:not-the-password")
    assert refused.returncode != 0 and "401 Unauthorized" in refused.stderr


def test_a_ca_that_did_not_sign_the_registrys_certificate_fails_the_pull(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd]
) -> None:
    auth = RegistryAuth(site.host, USER, PASSWORD)
    daemon = start(node_containerd, site_registry(site, site_files.other_ca["cert"]), auth)
    refused = ctr_pull(daemon, PAUSE)
    assert refused.returncode != 0 and "x509: certificate signed by unknown authority" in refused.stderr
    with CriImageClient(daemon.socket) as cri, pytest.raises(grpc.RpcError) as raised:
        cri.pull_image(PAUSE)
    assert "certificate signed by unknown authority" in str(raised.value.details())  # type: ignore[attr-defined]


def test_with_the_registry_stopped_the_imported_images_still_serve(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd], tmp_path: Path
) -> None:
    """The bundle's images are imported as before: the cluster does not depend on the site registry."""
    certs = tmp_path / "ca-only"
    certs.mkdir()
    shutil.copy(site_files.tls["cert"], certs / "ca.crt")
    archive = tmp_path / "app.tar"
    copied = subprocess.run(
        ["skopeo", "copy", "--src-cert-dir", str(certs), "--src-creds", f"{USER}:{PASSWORD}",
         f"docker://{site.host}/test/app:2.0", f"docker-archive:{archive}:registry.k8s.io/app:2.0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    auth = RegistryAuth(site.host, USER, PASSWORD)
    daemon = start(node_containerd, site_registry(site, site_files.tls["cert"]), auth)
    imported = daemon.run_ctr("images", "import", str(archive))
    assert imported.returncode == 0, imported.stderr
    site.stop()
    with CriImageClient(daemon.socket) as cri:
        status = cri.image_status("registry.k8s.io/app:2.0")  # kubelet's IfNotPresent check: present, no pull
        assert status is not None and "registry.k8s.io/app:2.0" in status.repo_tags
        with pytest.raises(grpc.RpcError) as raised:  # and the registry is really gone
            cri.pull_image(PAUSE)
    assert "connection refused" in str(raised.value.details())  # type: ignore[attr-defined]


# Docker Hub names in every spelling, and the other upstreams: as the bundle is built with them, how a pod names
# them, and the test image the stand-in upstream serves for them (a repository of the plain-http source registry)
SHORT_NAMES = (
    ("nginx:1.25", "nginx:1.25", "test/app:2.0"),
    ("library/nginx:1.24", "library/nginx:1.24", "test/busybox:1.0"),
    ("docker.io/nginx", "docker.io/nginx", "test/busybox:1.0"),
    ("quay.io/test/busybox:1.0", "quay.io/test/busybox:1.0", "test/busybox:1.0"),
    ("ghcr.io/acme/app:2.0", "ghcr.io/acme/app:2.0", "test/app:2.0"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "mirrored/pause:3.9"),
)
UPSTREAM_PATHS = {"docker.io": "hub", "quay.io": "quay", "ghcr.io": "ghcr", "registry.k8s.io": "mirrored"}


def short_name_bundle(release: StandInRelease, source: Registry, tmp_path: Path) -> Path:
    """`bundler build` with the names as a user writes them, each fetched from the stand-in of its upstream."""
    for written, _, test_image in SHORT_NAMES:
        parsed = parse_image_name(written)
        if parsed.registry == "registry.k8s.io":
            continue  # mirrored/pause:3.9 is there already
        copied = subprocess.run(
            ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
             f"docker://{source.host}/{test_image}",
             f"docker://{source.host}/{UPSTREAM_PATHS[parsed.registry]}/{parsed.repository}:{parsed.reference}"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert copied.returncode == 0, copied.stderr
    release.set_images([written for written, _, _ in SHORT_NAMES])
    mirrors = [f"{upstream}=http://{source.host}/{path}" for upstream, path in UPSTREAM_PATHS.items()]
    built = build_bundle(
        release, tmp_path, "--insecure-registry", source.host,
        *[argument for mirror in mirrors for argument in ("--registry-mirror", mirror)],
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return next((tmp_path / "out").glob("*.tar"))


def test_short_docker_hub_names_land_where_the_mirror_looks_and_kubelet_pulls_them(
    site: Registry, site_files: SimpleNamespace, node_containerd: List[Containerd],
    release: StandInRelease, registry: Registry, tmp_path: Path,
) -> None:  # fmt: skip
    """`nginx:1.25`, `library/nginx:1.24`, `docker.io/nginx` (and quay.io, ghcr.io, registry.k8s.io names) built
    into a bundle, `images push`ed with and without --prefix: the real containerd, given the installer's hosts
    files, pulls each one through the mirror by the name a pod spec uses, at the digest the bundle holds."""
    tarball = short_name_bundle(release, registry, tmp_path)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    manifest = yaml.safe_load(next(tmp_path.glob("k8s-bundle-*/bundle.yaml")).read_text())
    digests = {image["name"]: image["digest"] for image in manifest["images"]}
    assert "docker.io/library/nginx:1.25" in digests and "docker.io/library/nginx:latest" in digests
    auth_file = tmp_path / "auth.json"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auth_file.write_text(json.dumps({"auths": {site.host: {"auth": token}}}))
    ca = site_files.tls["cert"]
    for prefix in ("mirrored-hub", ""):
        pushed = run_bundler("images", "push", str(tarball), site.host, "--ca-file", str(ca), "--auth-file",
                             str(auth_file), *(("--prefix", prefix) if prefix else ()))  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        assert f"docker.io/library/nginx:1.25 -> {site.host}/{prefix + '/' if prefix else ''}library/nginx:1.25" in (
            pushed.stdout
        )
        mirror = SiteRegistry(site.host, "site-ca.pem", prefix, ca.read_text())
        daemon = start(node_containerd, mirror, RegistryAuth(site.host, USER, PASSWORD), list(digests))
        with CriImageClient(daemon.socket) as cri:
            for written, in_pod, _ in SHORT_NAMES:
                full = next(name for name in digests if parse_image_name(name) == parse_image_name(written))
                cri.pull_image(in_pod)  # as kubelet asks for a pod's image: no credentials, the short name
                status = cri.image_status(in_pod)
                assert status is not None and full in status.repo_tags, (prefix, in_pod)
                # (an image of the same content pulled under another name shares the entry: several digests)
                assert f"{full.rsplit(':', 1)[0]}@{digests[full]}" in status.repo_digests, (prefix, in_pod)
        full_name = "docker.io/library/nginx:1.24"  # ctr takes full names only; the same mirror, the same path
        pulled = daemon.run_ctr("images", "pull", "--hosts-dir", str(daemon.work / "certs.d"), "--user",
                                f"{USER}:{PASSWORD}", full_name)  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
