"""`bundler build` resolving RPMs from real repositories (rpmbuild + createrepo_c) served over loopback."""

from __future__ import annotations

import hashlib
import posixpath
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, Tuple

import pytest
import yaml

from tests.conftest import StandInRelease, run_bundler
from tests.support.rpm_graph import FULL_EXTRA, MINIMAL_X86_64, RpmGraph
from tests.support.rpm_release import add_rpm_section
from tests.support.rpm_repo import FakeRpm, build_rpms, serve_directory

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def build(release: StandInRelease, tmp_path: Path, *extra: str, out: str = "out", env=None):
    return run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / out),
        "--retries", "1", "--timeout", "5", *extra, env=env,
    )  # fmt: skip


def bundle_manifest(tarball: Path) -> Tuple[dict, Dict[str, tarfile.TarInfo]]:
    with tarfile.open(tarball) as archive:
        top = archive.getnames()[0]
        members = {m.name[len(top) + 1 :]: m for m in archive.getmembers()}
        manifest = yaml.safe_load(archive.extractfile(f"{top}/bundle.yaml").read())  # type: ignore[union-attr]
        sums = archive.extractfile(f"{top}/SHA256SUMS").read().decode()  # type: ignore[union-attr]
    manifest["_sums"] = sums
    return manifest, members


def versions(manifest: dict) -> Dict[str, str]:
    return {entry["name"]: entry["evr"].rsplit("-", 1)[0] for entry in manifest["rpms"]}


@pytest.mark.parametrize("compress", ["gz", "xz", "zstd"])
def test_minimal_closure_is_exactly_the_needed_set(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path, compress: str
) -> None:
    add_rpm_section(release, rpm_graph, name=f"compressed-{compress}", compress=compress)
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    manifest, members = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    assert versions(manifest) == MINIMAL_X86_64
    by_name = {entry["name"]: entry for entry in manifest["rpms"]}
    assert by_name["kubeadm"]["nevra"] == "kubeadm-0:1.29.6-150500.1.1.x86_64"
    assert by_name["ethtool"]["nevra"] == "ethtool-2:6.2-1.noarch"
    assert by_name["socat"]["repository"] == "base"
    assert "kubelet-1.29.6-150500.1.1.x86_64 requires socat" in by_name["socat"]["why"]
    for entry in manifest["rpms"]:
        assert entry["path"] in members and members[entry["path"]].size == entry["size"]
        assert f"{entry['sha256']}  {entry['path']}" in manifest["_sums"]
    repodata = [name for name in members if name.startswith("rpms/repodata/")]
    assert "rpms/repodata/repomd.xml" in repodata and len(repodata) == 4
    assert all(f"  {name}\n" in manifest["_sums"] for name in repodata)
    repository = manifest["rpm_repository"]
    assert repository["closure"] == "minimal" and repository["gpgcheck"] is False
    assert {i["name"]: i["exact"] for i in repository["install"]} == {
        "kubeadm": True, "kubelet": True, "kubectl": True, "chrony": False,
    }  # fmt: skip
    assert run_bundler("verify", str(tmp_path / "out" / f"{TOP}.tar")).returncode == 0


def test_full_closure_adds_what_a_minimal_install_has(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph)
    result = build(release, tmp_path, "--rpm-closure", "full")
    assert result.returncode == 0, result.stderr
    manifest, _ = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    expected = dict(MINIMAL_X86_64, **FULL_EXTRA)
    del expected["kubelet-selinux"]  # `(kubelet-selinux if selinux-policy)`: selinux-policy is not in the set
    assert versions(manifest) == expected


def test_arm64_takes_aarch64_packages(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    add_rpm_section(release, rpm_graph)
    result = build(release, tmp_path, "--arch", "arm64")
    assert result.returncode == 0, result.stderr
    manifest, _ = bundle_manifest(tmp_path / "out" / "k8s-bundle-1.29.6-rocky9-arm64.tar")
    arches = {entry["name"]: entry["arch"] for entry in manifest["rpms"]}
    assert arches["kubeadm"] == arches["kubernetes-cni"] == "aarch64"
    assert arches["socat"] == "noarch"


def test_missing_provider_fails_naming_the_chain(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    without = [p for p in rpm_graph.base_rpms if not p.name.startswith("libnetfilter_cthelper-")]
    add_rpm_section(release, rpm_graph, name="missing-lib", base_rpms=without)
    result = build(release, tmp_path)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("bundler: error: cannot resolve the RPMs: ")
    assert (
        "requested kubelet = 1.29.6 -> kubelet-1.29.6-150500.1.1.x86_64 requires conntrack -> "
        "conntrack-tools-1.4.7-1.noarch requires libnetfilter_cthelper, "
        "which nothing in the repositories (kubernetes, base) provides"
    ) in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_corrupted_rpm_fails_the_build(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    prefixes = add_rpm_section(release, rpm_graph)
    socat = f"{prefixes['base']}/Packages/socat-1.7.4.1-1.noarch.rpm"
    served = release.mirror.files[socat]
    served.data = served.data[:-10] + b"corrupted!"
    result = build(release, tmp_path)
    assert result.returncode == 1
    assert "socat-1.7.4.1-1.noarch.rpm: checksum mismatch" in result.stderr
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_unknown_rpm_mirror_is_refused(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    add_rpm_section(release, rpm_graph)
    result = build(release, tmp_path, "--rpm-mirror", "nowhere")
    assert result.returncode == 1
    assert "--rpm-mirror nowhere: the manifest names no such mirror" in result.stderr


def test_named_mirror_serves_the_repository(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    prefixes = add_rpm_section(
        release, rpm_graph, repo_extra={"mirrors": {"aliyun": "https://mirror.example.invalid/k8s/"}}
    )
    for path, served in list(release.mirror.files.items()):
        if path.startswith(prefixes["kubernetes"] + "/"):
            release.mirror.add("/mirror.example.invalid/k8s/" + path[len(prefixes["kubernetes"]) + 1 :], served.data)
    result = build(release, tmp_path, "--rpm-mirror", "aliyun")
    assert result.returncode == 0, result.stderr
    fetched = [path for path, _ in release.mirror.requests]
    assert any(p.startswith("/mirror.example.invalid/k8s/Packages/kubeadm-") for p in fetched)
    assert not any(p.startswith(prefixes["kubernetes"]) for p in fetched)
    manifest, _ = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    kubernetes = manifest["rpm_repository"]["repositories"][0]
    assert kubernetes["mirror"] == "aliyun" and kubernetes["url"] == "https://mirror.example.invalid/k8s/"


def test_lock_reproduces_the_locked_versions(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    add_rpm_section(release, rpm_graph, name="lock")
    assert build(release, tmp_path, out="first").returncode == 0
    first, _ = bundle_manifest(tmp_path / "first" / f"{TOP}.tar")
    lock = tmp_path / "first.bundle.yaml"
    lock.write_text(yaml.safe_dump({k: v for k, v in first.items() if k != "_sums"}))
    newer = build_rpms([FakeRpm("socat", "1.8.0", requires=["glibc"])], tmp_path / "newer")
    add_rpm_section(release, rpm_graph, name="lock", base_rpms=rpm_graph.base_rpms + list(newer.values()))

    unlocked = build(release, tmp_path, out="unlocked")
    assert unlocked.returncode == 0, unlocked.stderr
    assert versions(bundle_manifest(tmp_path / "unlocked" / f"{TOP}.tar")[0])["socat"] == "1.8.0"
    locked = build(release, tmp_path, "--lock", str(lock), out="locked")
    assert locked.returncode == 0, locked.stderr
    again, _ = bundle_manifest(tmp_path / "locked" / f"{TOP}.tar")
    assert again["rpms"] == first["rpms"]  # "why" included: the chains do not depend on libsolv's decision order

    tampered = yaml.safe_load(lock.read_text())
    next(e for e in tampered["rpms"] if e["name"] == "socat")["sha256"] = "0" * 64
    lock.write_text(yaml.safe_dump(tampered))
    refused = build(release, tmp_path, "--lock", str(lock), out="refused")
    assert refused.returncode == 1
    assert "differs from the --lock file's" in refused.stderr


def test_rpm_bundles_are_byte_identical(release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path) -> None:
    add_rpm_section(release, rpm_graph, name="reproducible")
    first = run_bundler("build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
                        "--cache", str(tmp_path / "c1"), "--output", str(tmp_path / "o1"))  # fmt: skip
    second = run_bundler("build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
                         "--cache", str(tmp_path / "c2"), "--output", str(tmp_path / "o2"))  # fmt: skip
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "o1" / f"{TOP}.tar").read_bytes() == (tmp_path / "o2" / f"{TOP}.tar").read_bytes()


def test_without_libsolv_the_build_says_so_in_one_line(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph, name="no-solv")
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "solv.py").write_text("raise ImportError('no wheel for this platform')\n")
    result = build(release, tmp_path, env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bundler: error: RPM targets are resolved with libsolv, whose Python package 'solv'")
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_a_repository_without_filelists_is_named_when_a_file_requirement_fails(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="no-filelists")
    repomd = release.mirror.files[f"{prefixes['base']}/repodata/repomd.xml"]
    repomd.data = re.sub(rb'(?s)<data type="filelists">.*?</data>\s*', b"", repomd.data)
    result = build(release, tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "requires /usr/share/k8s-test/marker, which nothing in the repositories (kubernetes, base)" in message
    assert message.endswith(
        "(repository base has no filelists in its repomd.xml, so a file requirement can only be met by the few files "
        "primary.xml lists: regenerate its metadata with createrepo_c)"
    )
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()


# Repository layouts seen on real mirrors: (createrepo_c options, packages' folder, where they are served from
# relative to the repository; None: inside it), and the build's outcome (None: it works).
ODD_REPOSITORIES = [
    ("bz2-metadata", ["--general-compress-type=bz2"], "Packages", None, None),
    ("sha1-checksums", ["--checksum=sha1"], "Packages", None, None),
    ("sha512-checksums", ["--checksum=sha512"], "Packages", None, None),
    ("packages-in-subfolders", [], "Packages/s", None, None),
    ("xml-base-absolute", ["--baseurl=https://rpms.example.invalid/pool/"], "Packages", "../../../pool", None),
    ("xml-base-relative", ["--baseurl=../../pool/"], "Packages", "../../pool", None),
    ("xml-base-file", ["--baseurl=file:///etc/"], "Packages", "../../pool", "xml:base 'file:///etc/', not an http"),
]


@pytest.mark.parametrize(
    "options,folder,served_at,error", [case[1:] for case in ODD_REPOSITORIES], ids=[c[0] for c in ODD_REPOSITORIES]
)
def test_odd_but_valid_repository_layouts(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path, options, folder, served_at, error
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="odd")
    base = tmp_path / "base"
    (base / folder).mkdir(parents=True)
    for rpm in rpm_graph.base_rpms:
        shutil.copy2(rpm, base / folder / rpm.name)
    subprocess.run(["createrepo_c", "-q", "--no-database", *options, str(base)], check=True)
    for path in [path for path in release.mirror.files if path.startswith(prefixes["base"] + "/")]:
        del release.mirror.files[path]
    served = prefixes["base"] if served_at is None else posixpath.normpath(f"{prefixes['base']}/{served_at}")
    for path in sorted(base.rglob("*")):
        if path.is_file():
            prefix = served if "/Packages/" in f"/{path.relative_to(base).as_posix()}" else prefixes["base"]
            release.mirror.add(f"{prefix}/{path.relative_to(base).as_posix()}", path.read_bytes())
    result = build(release, tmp_path)
    if error:
        assert result.returncode == 1 and error in result.stderr.strip().splitlines()[-1]
        assert "Traceback" not in result.stderr and not (tmp_path / "out" / f"{TOP}.tar").exists()
        return
    assert result.returncode == 0, result.stderr
    manifest, members = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    assert versions(manifest) == MINIMAL_X86_64
    assert all(entry["path"] in members for entry in manifest["rpms"])


@pytest.mark.parametrize("rebuilt", [False, True], ids=["same-bytes", "other-bytes"])
def test_the_same_nevra_in_two_repositories(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path, rebuilt: bool
) -> None:
    """socat-1.7.4.1-1.noarch also in the kubernetes repository: the same file is no news; a different build of
    it is bundled from the first repository, as dnf would, with a warning naming both."""
    prefixes = add_rpm_section(release, rpm_graph, name="duplicate")
    socat = next(path for path in rpm_graph.base_rpms if path.name.startswith("socat-"))
    if rebuilt:
        other = FakeRpm("socat", "1.7.4.1", requires=["glibc"], files={"/usr/share/fake-rpms/socat": "rebuilt"})
        socat = build_rpms([other], tmp_path / "rebuilt")[socat.name]
    kubernetes = tmp_path / "kubernetes"
    (kubernetes / "Packages").mkdir(parents=True)
    for rpm in [*rpm_graph.kubernetes_rpms, socat]:
        shutil.copy2(rpm, kubernetes / "Packages" / rpm.name)
    subprocess.run(["createrepo_c", "-q", "--no-database", str(kubernetes)], check=True)
    serve_directory(release.mirror, prefixes["kubernetes"], kubernetes)
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "is in repositories" in line]
    if rebuilt:
        assert warned == [
            f"warning: socat-1.7.4.1-1.noarch is in repositories kubernetes and base with different content (sha256 "
            f"{hashlib.sha256(socat.read_bytes()).hexdigest()[:12]}... and {warned[0].split(' and ')[-1][:12]}...); "
            "bundled the one from kubernetes"
        ]
    else:
        assert warned == []
    manifest, _ = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    (entry,) = [entry for entry in manifest["rpms"] if entry["name"] == "socat"]
    assert entry["repository"] == "kubernetes" and entry["sha256"] == hashlib.sha256(socat.read_bytes()).hexdigest()


def test_host_packages_are_in_the_repository_but_not_installed_by_nodes(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    """`host_packages` (nginx for `k8s-install.pyz serve`) are resolved with what they need into the bundle's
    repository; the nodes' install list stays the release's `packages`."""
    nginx = build_rpms([FakeRpm("nginx", "1.20.1", requires=["glibc", "nginx-filesystem"]),
                        FakeRpm("nginx-filesystem", "1.20.1")], tmp_path / "nginx-rpms")  # fmt: skip
    add_rpm_section(release, rpm_graph, name="host-packages", base_rpms=[*rpm_graph.base_rpms, *nginx.values()])
    release.manifest["rpm"]["rocky9"]["host_packages"] = ["nginx"]  # type: ignore[index]
    release.write()
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    manifest, members = bundle_manifest(tmp_path / "out" / f"{TOP}.tar")
    assert versions(manifest) == {**MINIMAL_X86_64, "nginx": "1.20.1", "nginx-filesystem": "1.20.1"}
    by_name = {entry["name"]: entry for entry in manifest["rpms"]}
    assert by_name["nginx"]["path"] in members and by_name["nginx"]["requested"] is True
    assert "nginx" not in {entry["name"] for entry in manifest["rpm_repository"]["install"]}
