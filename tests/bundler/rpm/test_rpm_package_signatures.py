"""Every bundled RPM's signature checked at build time with rpmkeys against its repository's key, and
repositories that publish no repomd.xml.asc (Rocky Linux, Fedora, EPEL, RHEL) marked `metadata_signed: false`
while their key stays pinned. Real rpmbuild/rpmsign/gpg/createrepo_c repositories; the bundle then installs
with dnf --installroot and gpgcheck=1."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest
import yaml

from bundler.errors import BundlerError
from bundler.rpm import package_signatures
from bundler.rpm.package_signatures import PackageFile, RepositoryPackages, verify_signatures
from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.packages.dnf import install_packages
from tests.conftest import StandInRelease, run_bundler
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_node import OfflineRunner, build_and_unpack, installed, minimal_node
from tests.support.rpm_release import HOST, add_rpm_section
from tests.support.signing import SigningKey, missing_tools, tamper_signature

pytestmark = pytest.mark.skipif(
    bool(missing_tools()) or not shutil.which("dnf") or not shutil.which("rpmkeys"),
    reason=f"needs dnf, rpmkeys and {', '.join(missing_tools())}",
)

KUBECTL = "kubectl-1.29.6-150500.1.1.x86_64.rpm"
KUBECTL_NEVRA = "kubectl-0:1.29.6-150500.1.1.x86_64"


def build(release: StandInRelease, work: Path):  # type: ignore[no-untyped-def]
    return run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(work / "cache"), "--output", str(work / "out"), "--retries", "0",
    )  # fmt: skip


def last_line(result) -> str:  # type: ignore[no-untyped-def]
    return result.stderr.strip().splitlines()[-1]


def unsigned_metadata(release: StandInRelease, name: str, mark: bool) -> None:
    """The base repository as Rocky publishes it: no repomd.xml.asc; with `mark`, the manifest says so."""
    for arch in ("x86_64", "aarch64"):
        del release.mirror.files[f"/{HOST}/{name}/base/{arch}/repodata/repomd.xml.asc"]
    if mark:
        base = release.manifest["rpm"]["rocky9"]["repositories"][1]
        assert base["id"] == "base"
        base["metadata_signed"] = False
        release.write()


@pytest.mark.root
def test_unsigned_metadata_builds_when_the_pinned_key_signed_every_package_and_installs_with_gpgcheck(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, signed_graph, name="rocky-like", signer=signing_key, pin="fingerprint")
    unsigned_metadata(release, "rocky-like", mark=True)
    bundle = build_and_unpack(release, tmp_path)
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    repositories = {r["id"]: r for r in manifest["rpm_repository"]["repositories"]}
    assert repositories["kubernetes"]["signature"] == f"verified ({signing_key.fingerprint})"
    assert repositories["base"]["signature"] == "not published (metadata_signed: false)"
    assert "repomd_asc_sha256" not in repositories["base"]
    by_repository = {r: sum(1 for e in manifest["rpms"] if e["repository"] == r) for r in repositories}
    for repository, count in by_repository.items():
        assert count and repositories[repository]["package_signatures"] == f"verified with rpmkeys ({count} RPMs)"
    assert manifest["rpm_repository"]["gpgcheck"] is True

    root = minimal_node(tmp_path / "root", signed_graph)
    runner = OfflineRunner()
    install_packages(load_bundle(bundle), root, releasever="9", run=runner)  # dnf --installroot, gpgcheck on by default
    dnf = [command for command in runner.commands if command[0] == "dnf"]
    assert len(dnf) == 1 and "--setopt=k8s-bundle.gpgcheck=1" in dnf[0]
    assert "kubelet-0:1.29.6-150500.1.1.x86_64" in installed(root)


def test_missing_metadata_signature_names_the_field_to_set(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, signed_graph, name="rocky-unmarked", signer=signing_key, pin="fingerprint")
    unsigned_metadata(release, "rocky-unmarked", mark=False)
    result = build(release, tmp_path)
    assert result.returncode == 1
    line = last_line(result)
    assert line.startswith(
        "bundler: error: repository base: its key is pinned, so repomd.xml must be signed, but "
        f"https://{HOST}/rocky-unmarked/base/x86_64/repodata/repomd.xml.asc could not be fetched ("
    ), line
    assert line.endswith(
        f"set `metadata_signed: false` on repository base in {release.path}: the pinned key then checks every "
        "package's signature instead"
    ), line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_metadata_signed_true_demands_the_signature_of_an_unpinned_key(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, signed_graph, name="declared-signed", signer=signing_key)
    kubernetes = release.manifest["rpm"]["rocky9"]["repositories"][0]
    del kubernetes["gpgkey_sha256"]  # the key is fetched but not pinned
    kubernetes["metadata_signed"] = True
    release.write()
    del release.mirror.files[f"{prefixes['kubernetes']}/repodata/repomd.xml.asc"]
    result = build(release, tmp_path)
    assert result.returncode == 1
    assert last_line(result).startswith(
        f"bundler: error: repository kubernetes: {release.path} says metadata_signed: true, so repomd.xml must be "
        "signed, but "
    ), last_line(result)


def spoil_kubectl(graph: RpmGraph, original: RpmGraph, how: str, impostor: SigningKey) -> None:
    """kubectl (x86_64) unsigned, signed by another key, or with a signature that no longer verifies."""
    path = graph.rpms[KUBECTL]
    if how in ("unsigned", "another key"):
        shutil.copy2(original.rpms[KUBECTL], path)
        if how == "another key":
            impostor.sign_rpms([path])
    else:
        tamper_signature(path)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("unsigned", "is not signed, but dnf on the node installs only packages signed by the repository's key "
                     "{fingerprint} (gpgcheck)"),
        ("another key", "is signed by key ID {impostor_id}, not by the repository's key {fingerprint}: dnf on the "
                        "node would refuse it"),
        ("tampered", "has a signature that does not verify with the repository's key {fingerprint} (rpmkeys: BAD): "
                     "the package was changed after it was signed"),
    ],
)  # fmt: skip
def test_a_package_not_signed_by_its_repository_key_fails_the_build_naming_it(
    how: str, expected: str, release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey,
    impostor: SigningKey, tmp_path: Path,
) -> None:  # fmt: skip
    graph = rpm_graph.copy(tmp_path / "graph")
    signing_key.sign_rpms(list(graph.rpms.values()))
    spoil_kubectl(graph, rpm_graph, how, impostor)
    add_rpm_section(release, graph, name=f"spoiled-{how.replace(' ', '-')}", signer=signing_key, pin="fingerprint")
    result = build(release, tmp_path)
    assert result.returncode == 1, result.stderr
    line = last_line(result)
    assert line.startswith(f"bundler: error: RPM {KUBECTL_NEVRA} from repository kubernetes "), line
    message = expected.format(fingerprint=signing_key.fingerprint, impostor_id=impostor.fingerprint[-8:].lower())
    assert message in line
    assert "more RPM(s)" not in line  # only the spoiled one fails
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("*")), "nothing may be written"


def test_a_repository_without_a_key_is_built_with_a_warning(
    release: StandInRelease, rpm_graph: RpmGraph, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph, name="keyless")
    result = build(release, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "names no gpgkey" in line]
    assert [w.split(":")[0:2] for w in warnings] == [["warning", " repository kubernetes names no gpgkey"],
                                                     ["warning", " repository base names no gpgkey"]]  # fmt: skip
    assert "the node's dnf refuses them unless the installer runs with --no-gpgcheck" in warnings[0]


# -- verify_signatures itself: rpm's verdicts, many packages per rpmkeys process ------------------------------------


def packages_of(graph: RpmGraph) -> List[PackageFile]:
    return [PackageFile(name[: -len(".rpm")], path) for name, path in sorted(graph.rpms.items())]


def test_one_rpmkeys_process_checks_many_packages(
    signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key.asc"
    key.write_bytes(signing_key.public)
    packages = packages_of(signed_graph)
    half = len(packages) // 2
    groups = [RepositoryPackages("one", key, "the key", tuple(packages[:half])),
              RepositoryPackages("two", key, "the key", tuple(packages[half:]))]  # fmt: skip
    runs: List[List[str]] = []
    real_run = subprocess.run

    def counting_run(command, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(list(command))
        return real_run(command, **kwargs)

    monkeypatch.setattr(package_signatures.subprocess, "run", counting_run)
    assert verify_signatures(groups) == len(packages) > 20
    checks = [run for run in runs if "--checksig" in run and "--verbose" not in run]
    assert len(checks) == 2  # one per repository, not one per package
    assert sum(len([a for a in run if a.endswith(".rpm")]) for run in checks) == len(packages)
    hashes = [run for run in runs if "--checksig" in run and "--verbose" in run]
    assert len(hashes) == 2  # and one more, for the signatures' hash algorithm
    assert sum(len([a for a in run if a.endswith(".rpm")]) for run in hashes) == len(packages)


def test_a_package_signed_with_sha1_fails_the_build_as_el9_would(
    rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    """EL9's DEFAULT crypto policy makes rpm refuse SHA-1 signatures; rpm here accepts them, so the build
    reads the hash from rpmkeys' verbose lines and refuses the package."""
    graph = rpm_graph.copy(tmp_path / "graph")
    signing_key.sign_rpms(list(graph.rpms.values()))
    shutil.copy2(rpm_graph.rpms[KUBECTL], graph.rpms[KUBECTL])
    signing_key.sign_rpms([graph.rpms[KUBECTL]], digest="sha1")
    key = tmp_path / "key.asc"
    key.write_bytes(signing_key.public)
    with pytest.raises(BundlerError) as raised:
        verify_signatures([RepositoryPackages("kubernetes", key, "FPR", tuple(packages_of(graph)))])
    message = str(raised.value)
    assert message.startswith(f"RPM {KUBECTL[: -len('.rpm')]} from repository kubernetes is signed with SHA-1 ("), (
        message
    )
    assert "/SHA1 Signature, key ID" in message and "EL9's default crypto policy refuses" in message
    assert message.endswith("(1 RPM(s) so signed)")


def test_every_failing_package_is_counted_in_the_one_line(
    rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    key = tmp_path / "key.asc"
    key.write_bytes(signing_key.public)
    packages = packages_of(rpm_graph)  # none signed
    with pytest.raises(BundlerError) as raised:
        verify_signatures([RepositoryPackages("base", key, "FPR", tuple(packages))])
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"RPM {packages[0].nevra} from repository base is not signed")
    assert f"({len(packages) - 1} more RPM(s) fail rpmkeys --checksig too: {packages[1].nevra} (base), " in message


def test_a_key_rpm_cannot_read_is_one_clear_line(signed_graph: RpmGraph, tmp_path: Path) -> None:
    key = tmp_path / "key.asc"
    key.write_bytes(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n")
    with pytest.raises(BundlerError, match=r"^repository base: rpm cannot import its key FPR \("):
        verify_signatures([RepositoryPackages("base", key, "FPR", tuple(packages_of(signed_graph)[:1]))])
