"""`bundler build` against a real loopback HTTP mirror serving stand-in artifacts."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, StandInRelease, run_bundler

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def build(release: StandInRelease, tmp_path: Path, *extra: str, cache: str = "cache", out: str = "out"):
    return run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / cache), "--output", str(tmp_path / out),
        "--retries", "2", "--timeout", "2", *extra,
    )  # fmt: skip


def test_build_writes_verified_bundle_with_every_artifact(release: StandInRelease, tmp_path: Path) -> None:
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    tarball = tmp_path / "out" / f"{TOP}.tar"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        manifest = yaml.safe_load(archive.extractfile(f"{TOP}/bundle.yaml").read())  # type: ignore[union-attr]
        pyz = archive.getmember(f"{TOP}/k8s-install.pyz")
        runc = archive.getmember(f"{TOP}/files/runc-1.0.0-linux-amd64.bin")
        assert {m.uid for m in archive.getmembers()} == {0}
        assert {m.mtime for m in archive.getmembers()} == {1700000000}
    assert f"{TOP}/SHA256SUMS" in names
    assert pyz.mode == 0o755
    assert manifest["arch"] == "amd64" and manifest["os"] == "rocky9"
    by_name = {a["name"]: a for a in manifest["artifacts"]}
    assert set(by_name) == {"containerd", "runc", "calico-manifest"}
    expected = hashlib.sha256(release.data["containerd-amd64"]).hexdigest()
    assert by_name["containerd"]["sha256"] == expected
    assert by_name["containerd"]["source"].startswith("https://downloads.example.invalid/")
    assert all(a["pinned"] for a in manifest["artifacts"])
    assert runc.size == len(release.data["runc-amd64"])
    # the unpacked bundle checks with plain sha256sum, as on a node with nothing else
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=tmp_path / TOP)
    assert check.returncode == 0


def test_arm64_bundle_takes_arm64_artifacts(release: StandInRelease, tmp_path: Path) -> None:
    """--os alma9 builds the rocky9 target (alma9 is its alias) and names the bundle as asked."""
    result = build(release, tmp_path, "--arch", "arm64", "--os", "alma9")
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "out" / "k8s-bundle-1.29.6-alma9-arm64.tar") as archive:
        data = archive.extractfile("k8s-bundle-1.29.6-alma9-arm64/files/runc-1.0.0-linux-arm64.bin").read()  # type: ignore[union-attr]
        manifest = yaml.safe_load(archive.extractfile("k8s-bundle-1.29.6-alma9-arm64/bundle.yaml").read())  # type: ignore[union-attr]
    assert data == release.data["runc-arm64"]
    assert (manifest["os"], manifest["os_aliases"]) == ("rocky9", ["alma9"])  # what the node checks
    assert manifest["name"] == "k8s-bundle-1.29.6-alma9-arm64"


def test_two_builds_are_byte_identical(release: StandInRelease, tmp_path: Path) -> None:
    assert build(release, tmp_path, cache="c1", out="o1").returncode == 0
    assert build(release, tmp_path, cache="c2", out="o2").returncode == 0
    first = (tmp_path / "o1" / f"{TOP}.tar").read_bytes()
    second = (tmp_path / "o2" / f"{TOP}.tar").read_bytes()
    assert first == second


def test_second_build_takes_everything_from_cache(release: StandInRelease, tmp_path: Path) -> None:
    assert build(release, tmp_path).returncode == 0
    release.mirror.requests.clear()
    result = build(release, tmp_path, out="again")
    assert result.returncode == 0, result.stderr
    assert release.mirror.requests == []
    assert "(cache, verified)" in result.stderr


def test_dropped_connection_resumes_with_range(release: StandInRelease, tmp_path: Path) -> None:
    path = release.served_path("containerd")
    release.mirror.files[path].drop_after = 1_000_000
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    ranges = [r for p, r in release.mirror.requests if p == path]
    assert ranges[0] is None
    resumed_from = int(ranges[1][len("bytes=") : -1])
    assert 0 < resumed_from <= 1_000_000


def test_server_error_is_retried(release: StandInRelease, tmp_path: Path) -> None:
    path = release.served_path("runc")
    release.mirror.files[path].fail_status = [500, 503]
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    assert release.mirror.heads.count(path) == 3  # the size is asked while planning: 500, 503, then 200
    assert "retrying runc in 0.5 s: HTTP 500 (1/3)" in result.stderr.splitlines()  # every retry is said
    assert "retrying runc in 1 s: HTTP 503 (2/3)" in result.stderr.splitlines()
    assert [p for p, _ in release.mirror.requests].count(path) == 1


def test_wrong_bytes_fail_with_both_sums_and_leave_no_bundle(release: StandInRelease, tmp_path: Path) -> None:
    path = release.served_path("runc")
    release.mirror.files[path].data = b"tampered" + release.mirror.files[path].data[8:]
    result = build(release, tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("bundler: error: runc: checksum mismatch for http://127.0.0.1:")
    assert hashlib.sha256(release.data["runc-amd64"]).hexdigest() in line
    assert hashlib.sha256(release.mirror.files[path].data).hexdigest() in line
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "out").iterdir()) == []
    assert list((tmp_path / "cache" / "sha256").iterdir()) == [] or all(
        p.name != hashlib.sha256(release.mirror.files[path].data).hexdigest()
        for p in (tmp_path / "cache" / "sha256").iterdir()
    )


def test_missing_file_gives_404_line(release: StandInRelease, tmp_path: Path) -> None:
    del release.mirror.files[release.served_path("runc")]
    result = build(release, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("bundler: error: runc: HTTP 404 Not Found: http://")
    assert list((tmp_path / "out").iterdir()) == []


def test_slow_server_hits_timeout(release: StandInRelease, tmp_path: Path) -> None:
    release.mirror.files[release.served_path("runc")].delay = 3.0
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--retries", "1", "--timeout", "0.5",
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bundler: error: runc: ") and "timed out" in last and "after 2 attempts" in last


def test_failed_build_reuses_cache(release: StandInRelease, tmp_path: Path) -> None:
    """One download fails the build (largest first, one at a time: containerd was already in); the next
    build fetches only what is not in the cache yet."""
    runc = release.served_path("runc")
    release.mirror.files[runc].data = b"tampered" + release.data["runc-amd64"][8:]
    failed = build(release, tmp_path, "--jobs", "1")
    assert failed.returncode == 1 and "runc: checksum mismatch" in failed.stderr
    release.mirror.add(runc, release.data["runc-amd64"])
    release.mirror.requests.clear()
    assert build(release, tmp_path).returncode == 0
    assert sorted(p for p, _ in release.mirror.requests) == sorted([runc, release.served_path("calico-manifest")])


def test_unknown_version_lists_supported(tmp_path: Path) -> None:
    result = run_bundler("build", "--k8s", "1.99.0", "--cache", str(tmp_path / "c"), "--output", str(tmp_path))
    assert result.returncode == 2  # a bad command line, found before anything is fetched
    supported = "supported versions: 1.29.6, 1.29.15, 1.30.14, 1.31.14"
    assert result.stderr.strip().splitlines()[-1] == (
        f"bundler build: error: Kubernetes 1.99.0 is not supported; {supported}"
    )
    assert result.stderr.startswith("usage: bundler build ")  # build's usage, not the top-level one


def test_unpinned_artifact_is_refused_then_recorded_when_allowed(release: StandInRelease, tmp_path: Path) -> None:
    del release.manifest["files"][1]["sha256"]
    release.write()
    refused = build(release, tmp_path)
    assert refused.returncode == 1
    assert "no pinned sha256, first runc" in refused.stderr and "--allow-unpinned" in refused.stderr
    allowed = build(release, tmp_path, "--allow-unpinned")
    assert allowed.returncode == 0, allowed.stderr
    with tarfile.open(tmp_path / "out" / f"{TOP}.tar") as archive:
        manifest = yaml.safe_load(archive.extractfile(f"{TOP}/bundle.yaml").read())  # type: ignore[union-attr]
    runc = next(a for a in manifest["artifacts"] if a["name"] == "runc")
    assert runc["pinned"] is False
    assert runc["sha256"] == hashlib.sha256(release.data["runc-amd64"]).hexdigest()


def test_bad_manifest_field_is_named(release: StandInRelease, tmp_path: Path) -> None:
    release.manifest["files"][0]["url"] = "ftp://nowhere/x-{arch}"
    release.write()
    result = build(release, tmp_path)
    assert result.returncode == 1
    assert "files[0]: url must be http(s)://" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_release_manifest_pins_every_file_for_both_arches() -> None:
    from bundler import paths
    from bundler.checksums import load_pins
    from bundler.manifest import load_release

    release = load_release("1.29.6", None)
    pins = load_pins(paths.checksums_path("1.29.6"))
    from bundler.manifest import OsTarget

    binaries = OsTarget("linux", rpms=False)  # not a supported target yet, but its files stay pinned
    for target in (release.resolve_os("rocky9"), binaries):
        for arch in ("amd64", "arm64"):
            for artifact in release.files_for(target, arch):
                assert artifact.url in pins, artifact.url
    names = {a.name for a in release.files_for(release.resolve_os("rocky9"), "amd64")}
    assert names == {"containerd", "runc", "cni-plugins", "buildkit", "nerdctl", "calico-manifest", "registry", "helm"}
    linux = {a.name for a in release.files_for(binaries, "amd64")}
    assert linux == names | {"crictl", "kubeadm", "kubelet", "kubectl"}


def _build_on_small_disk(release: StandInRelease, tmp_path: Path, full: str, size: str = "600k"):
    """Run the build in a private mount namespace where `full` (cache or out) is a small tmpfs."""
    import os
    import shutil

    if os.geteuid() != 0 or not shutil.which("unshare"):
        import pytest

        pytest.skip("needs root and unshare for a private tmpfs")
    (tmp_path / full).mkdir()
    build = (
        f"mount -t tmpfs -o size={size} tmpfs {tmp_path / full} && python -m bundler build --allow-incomplete "
        f"--manifest {release.path} "
        f"--mirror {release.mirror.url} --cache {tmp_path / 'cache'} --output {tmp_path / 'out'} --retries 0; "
        f"status=$?; echo left: $(ls -A {tmp_path / 'out'}); exit $status"
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", build],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )


@pytest.mark.root
@pytest.mark.parametrize("full", ["cache", "out"])
def test_too_little_free_space_is_refused_before_any_download(
    release: StandInRelease, tmp_path: Path, full: str
) -> None:
    """The plan knows every size: a disk that cannot hold the downloads or the tarball is refused with one
    line naming the folder, what the build needs and what is free, before the first GET."""
    result = _build_on_small_disk(release, tmp_path, full)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"bundler: error: not enough free space in {tmp_path / full}: the build needs ")
    assert "KiB is free" in last and "choose another --cache/--output" in last
    assert release.mirror.requests == []


@pytest.mark.root
def test_full_cache_disk_gives_one_line(release: StandInRelease, tmp_path: Path) -> None:
    """A size the server does not announce cannot be counted ahead: the disk then fills during the
    download, and that is one line too."""
    release.mirror.files[release.served_path("containerd")].no_head = True
    result = _build_on_small_disk(release, tmp_path, "cache")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    import re

    assert re.match(r"bundler: error: [\w-]+: disk full while writing \S+\.part: free space or use --cache$", last)


@pytest.mark.root
def test_full_output_disk_gives_one_line_and_no_partial_tarball(release: StandInRelease, tmp_path: Path) -> None:
    release.mirror.files[release.served_path("containerd")].no_head = True
    result = _build_on_small_disk(release, tmp_path, "out", size="2m")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bundler: error: disk full while writing ") and "choose --output" in last
    assert result.stdout.strip() == "left:"  # listed inside the namespace, before its tmpfs went away


def test_interrupted_build_says_so_and_the_rerun_resumes(release: StandInRelease, tmp_path: Path) -> None:
    """Ctrl-C in the middle of a download: exit 130 with one line, no bundle; the re-run resumes the file."""
    import os
    import signal
    import time

    path = release.served_path("containerd")
    release.mirror.files[path].throttle = 0.05
    command = [
        "python", "-m", "bundler", "build", "--allow-incomplete", "--manifest", str(release.path),
        "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--jobs", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    partial_dir = tmp_path / "cache" / "partial"
    for _ in range(200):
        if any(p.stat().st_size > 200_000 for p in partial_dir.glob("*.part")) if partial_dir.exists() else False:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == (
        "bundler: interrupted; run the same command again to continue from the cache"
    )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    release.mirror.files[path].throttle = 0.0
    release.mirror.requests.clear()
    assert build(release, tmp_path).returncode == 0
    ranges = [r for p, r in release.mirror.requests if p == path]
    assert ranges and ranges[0] is not None and int(ranges[0][len("bytes=") : -1]) > 200_000


LOCK_CASES = [
    ("images-a-string", {"images": "all"}, "lock.yaml: bundle.yaml: images: must be a list of mappings"),
    ("rpm-repository-a-list", {"rpm_repository": [1]}, "lock.yaml: bundle.yaml: rpm_repository: must be a mapping"),
    ("format-2", {"format": 2}, "lock.yaml: bundle.yaml: format: 2 is not bundle format 1"),
    (
        "another-release",
        {"kubernetes": "1.30.14"},
        "lock.yaml: the lock was built for kubernetes 1.30.14, this build is 1.29.6: use the bundle.yaml of a build",
    ),
]


@pytest.mark.parametrize("change,message", [c[1:] for c in LOCK_CASES], ids=[c[0] for c in LOCK_CASES])
def test_a_lock_of_the_wrong_shape_or_release_is_refused_before_any_download(
    release: StandInRelease, tmp_path: Path, change: dict, message: str
) -> None:
    lock = tmp_path / "lock.yaml"
    lock.write_text(
        yaml.safe_dump(dict({"format": 1, "kubernetes": "1.29.6", "os": "rocky9", "arch": "amd64"}, **change))
    )
    result = build(release, tmp_path, "--lock", str(lock))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert release.mirror.requests == []
