"""`--bundle-url`: a node fills its bundle folder from a real nginx serving the unpacked bundle over TLS (its
certificate signed by the cluster CA), each file checked against the signed SHA256SUMS before it is moved into
the folder, then the folder verified as every bundle is. Driven through `k8s-install verify --bundle-url`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.sums import format_sums, parse_sums, sha256_file
from k8s_install.bundle_url.role_files import needed_files
from k8s_install.cluster.secrets import ClusterSecrets, worker_secrets, write_secrets
from tests.conftest import REPO
from tests.support.bundle_host import (
    CONTROL_PLANE_ONLY,
    TOP,
    Nginx,
    control_plane_blobs,
    make_signer,
    sign_server_certificate,
    write_served_bundle,
)
from tests.support.prerequisites import require
from tests.support.registry import make_certificate
from tests.support.user_errors import one_error_line

pytestmark = pytest.mark.daemons


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cluster_secrets: ClusterSecrets) -> Dict[str, Path]:
    """The host's signed bundle, its TLS certificate from the cluster CA, the worker's secrets file."""
    require("nginx", "openssl", "ssh-keygen")
    work = tmp_path_factory.mktemp("bundle-host")
    key, allowed = make_signer(work / "signer")
    served = write_served_bundle(work / "served" / TOP, key)
    certificate = sign_server_certificate(work / "tls", cluster_secrets.ca_cert_pem, cluster_secrets.ca_key_pem)
    secrets = work / "cluster-secrets-worker.yaml"
    write_secrets(secrets, worker_secrets(cluster_secrets))
    return {"served": served, "allowed": allowed, "secrets": secrets, **certificate}


@pytest.fixture
def served(site: Dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the host's bundle this test may change."""
    return Path(shutil.copytree(site["served"], tmp_path / "host" / TOP))


@pytest.fixture
def host(site: Dict[str, Path], served: Path, tmp_path: Path) -> Iterator[Nginx]:
    with Nginx(served, tmp_path / "nginx", {"cert": site["cert"], "key": site["key"]}) as server:
        yield server


def node_folder(tmp_path: Path, name: str = "node") -> Path:
    """What a node holds before the fetch: only the installer (here a copy of the bundle's stand-in)."""
    folder = tmp_path / name / TOP
    folder.mkdir(parents=True)
    return folder


def fetch(site: Dict[str, Path], url: str, folder: Path, *extra: str, role: str = "worker") -> List[str]:
    return [sys.executable, "-m", "k8s_install", "verify", "--bundle-url", url, "--bundle", str(folder), "--role",
            role, "--secrets", str(site["secrets"]), "--trusted-signers", str(site["allowed"]), *extra]  # fmt: skip


def run(command: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def files_in(folder: Path) -> Set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def leftovers(folder: Path) -> List[str]:
    return [name for name in os.listdir(folder.parent) if name.startswith(".k8s-fetch")]


def test_a_worker_fetches_only_what_it_needs_verified_and_a_rerun_fetches_nothing(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    folder = node_folder(tmp_path)
    first = run(fetch(site, host.url, folder))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "signature good: signed by ops@example.org" in first.stdout
    assert "bundle OK" in first.stdout
    never = set(CONTROL_PLANE_ONLY) | set(control_plane_blobs(served))
    assert files_in(folder) == files_in(served) - never  # everything else: the worker's images, runtime, sums
    requested = {path.lstrip("/") for path, _status, _sent in host.requests()}
    assert not requested & never  # not even asked for
    assert all(oct(os.stat(folder / name).st_mode & 0o022) == "0o0" for name in files_in(folder))
    served_bytes = sum(sent for _path, _status, sent in host.requests())
    full = sum((served / name).stat().st_size for name in files_in(served))
    assert served_bytes < full

    again = run(fetch(site, host.url, folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fetched 0 file(s)" in again.stdout
    second = [path for path, _status, _sent in host.requests()][len(requested) :]
    assert set(second) <= {"/SHA256SUMS", "/SHA256SUMS.sig"}


def counting_ssh_keygen(folder: Path) -> Dict[str, str]:
    """An environment whose ssh-keygen is the real one behind a wrapper that logs each call's arguments."""
    real = shutil.which("ssh-keygen")
    assert real is not None
    folder.mkdir()
    wrapper = folder / "ssh-keygen"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{folder}/calls"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_the_signature_is_checked_once_per_run(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    """The fetch proves SHA256SUMS.sig before it trusts SHA256SUMS; the folder's verification afterwards reads
    the same bytes with the same signers and takes that proof instead of asking ssh-keygen again."""
    env = counting_ssh_keygen(tmp_path / "bin")
    folder = node_folder(tmp_path)
    for attempt in ("first", "rerun"):  # a re-run reads the node's own SHA256SUMS and .sig: still once
        result = subprocess.run(fetch(site, host.url, folder), cwd=REPO, capture_output=True, text=True, timeout=300,
                                env=env)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "signature good: signed by ops@example.org" in result.stdout
        calls = (tmp_path / "bin/calls").read_text().splitlines()
        (tmp_path / "bin/calls").unlink()
        assert [call.split()[:2] for call in calls if call.startswith("-Y verify")] == [["-Y", "verify"]], attempt


def test_a_control_plane_fetches_the_whole_bundle(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    folder = node_folder(tmp_path)
    result = run(fetch(site, host.url, folder, role="control-plane"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert files_in(folder) == files_in(served)


def test_the_host_stopping_mid_fetch_is_one_line_and_a_rerun_resumes(
    site: Dict[str, Path], served: Path, tmp_path: Path
) -> None:
    tls = {"cert": site["cert"], "key": site["key"]}
    folder = node_folder(tmp_path)
    slow = Nginx(served, tmp_path / "nginx", tls).start(limit_rate="100k")  # kube-proxy's layer: about 15 s
    try:
        process = subprocess.Popen(fetch(site, slow.url, folder), cwd=REPO, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while not (leftovers(folder) and len(files_in(folder)) > 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers(folder), "the fetch never got to a large file"
    finally:
        slow.stop()
    out, err = process.communicate(timeout=120)
    stopped = one_error_line(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    assert f"the bundle host 127.0.0.1:{slow.port} stopped answering while fetching" in stopped
    assert "re-run the same command" in stopped
    assert not leftovers(folder)  # no partial file beside the folder, none inside it
    kept = files_in(folder)
    listed = parse_sums((served / "SHA256SUMS").read_text())
    assert all(sha256_file(folder / name) == listed[name] for name in kept - {"SHA256SUMS", "SHA256SUMS.sig"})

    with Nginx(served, tmp_path / "nginx-again", tls, port=slow.port) as again:
        resumed = run(fetch(site, again.url, folder))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        refetched = {path.lstrip("/") for path, _status, _sent in again.requests()}
    assert f"{len(kept) - 2} already in" in resumed.stdout  # SHA256SUMS and its signature are read locally
    assert not refetched & (kept - {"SHA256SUMS", "SHA256SUMS.sig"})


def test_a_file_changed_on_the_host_is_refused_and_nothing_of_it_kept(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    changed = served / "files/runc.amd64"
    changed.write_bytes(changed.read_bytes()[:-1] + b"!")
    folder = node_folder(tmp_path)
    line = one_error_line(run(fetch(site, host.url, folder)))
    assert "files/runc.amd64" in line and "other bytes than the signed SHA256SUMS lists" in line, line
    assert not (folder / "files/runc.amd64").exists()
    assert not leftovers(folder)


def test_sums_changed_on_the_host_fail_the_signature(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    (served / "files/runc.amd64").write_bytes(b"swapped")
    sums = parse_sums((served / "SHA256SUMS").read_text())
    sums["files/runc.amd64"] = hashlib.sha256(b"swapped").hexdigest()
    (served / "SHA256SUMS").write_text(format_sums(sums))
    folder = node_folder(tmp_path)
    line = one_error_line(run(fetch(site, host.url, folder)))
    assert "bad signature" in line, line
    assert files_in(folder) == set()


def test_a_wrong_ca_is_refused_with_one_line(site: Dict[str, Path], host: Nginx, tmp_path: Path) -> None:
    other = make_certificate(tmp_path / "other-ca", "other")
    folder = node_folder(tmp_path)
    line = one_error_line(run(fetch(site, host.url, folder, "--bundle-ca", str(other["cert"]))))
    assert f"127.0.0.1:{host.port}: the bundle host's TLS certificate is not trusted" in line, line
    assert files_in(folder) == set()


def test_a_redirect_is_refused_not_followed(site: Dict[str, Path], served: Path, tmp_path: Path) -> None:
    tls = {"cert": site["cert"], "key": site["key"]}
    moved = "location = /SHA256SUMS { return 302 http://127.0.0.1:9/SHA256SUMS; }"
    with Nginx(served, tmp_path / "nginx", tls).start(extra=moved) as host:
        line = one_error_line(run(fetch(site, host.url, node_folder(tmp_path))))
    assert "the bundle host redirects (HTTP 302) to http://127.0.0.1:9/SHA256SUMS" in line, line


def test_two_nodes_fetching_the_same_files_at_once_both_succeed(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    folders = [node_folder(tmp_path, "node-a"), node_folder(tmp_path, "node-b")]
    processes = [
        subprocess.Popen(fetch(site, host.url, folder), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for folder in folders
    ]  # fmt: skip
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
    assert files_in(folders[0]) == files_in(folders[1])
    assert all((folders[0] / name).read_bytes() == (served / name).read_bytes() for name in files_in(folders[0]))


def test_a_host_serving_another_bundle_than_the_nodes_sums_is_refused(
    site: Dict[str, Path], served: Path, host: Nginx, tmp_path: Path
) -> None:
    folder = node_folder(tmp_path)
    (folder / "SHA256SUMS").write_text((served / "SHA256SUMS").read_text().replace("a", "b", 1))
    line = one_error_line(run(fetch(site, host.url, folder)))
    assert "serves another bundle" in line, line


def test_the_worker_set_from_the_typed_manifest(site: Dict[str, Path]) -> None:
    served = site["served"]
    sums = parse_sums((served / "SHA256SUMS").read_text())
    manifest = BundleManifest.from_yaml((served / "bundle.yaml").read_bytes(), str(served))
    read = lambda relative: (served / relative).read_bytes()  # noqa: E731
    worker = needed_files(manifest, sums, "worker", read)
    everything = needed_files(manifest, sums, "control-plane", read)
    assert everything == set(sums)
    assert set(sums) - worker == set(CONTROL_PLANE_ONLY) | set(control_plane_blobs(served))


def test_bad_bundle_url_arguments_exit_2(site: Dict[str, Path], tmp_path: Path) -> None:
    plain = run(fetch(site, "http://127.0.0.1:1", node_folder(tmp_path)))
    assert plain.returncode == 2 and "not an https://HOST:PORT address" in plain.stderr
    alone = run([sys.executable, "-m", "k8s_install", "verify", "--bundle-ca", "/dev/null"])
    assert alone.returncode == 2 and "give --bundle-url too" in alone.stderr
