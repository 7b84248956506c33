"""Resolution questions, each on its own real repository: the bundle's set equals dnf's own answer for the
same request and installed set, and the bundle installs with dnf from its own repository alone. Scenarios
that cannot be satisfied fail the build (and dnf agrees they cannot be installed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Set

import pytest
import yaml

from bundler.errors import BundlerError
from bundler.rpm.deps import parse_simple
from bundler.rpm.solver import Policy, RepoMetadata, prove_installable, resolve
from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.engine import Node
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps.preflight import check_assumed_rpms
from tests.conftest import StandInRelease, run_bundler
from tests.support.rpm_release import add_cni_plugins
from tests.support.rpm_repo import FakeRpm, build_rpms, make_repo, serve_directory
from tests.support.rpm_scenarios import (
    ASSUMED,
    SCENARIOS,
    BuiltScenario,
    Scenario,
    build_scenarios,
    dnf_install,
    installed,
    missing_tools,
    node_root,
)
from tests.support.rpm_scenarios import rpm as rpm_
from tests.support.unpack import unpack_tarball

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
HOST = "scenarios.example.invalid"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, BuiltScenario]:
    missing = missing_tools()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install rpm createrepo-c dnf)")
    return build_scenarios(tmp_path_factory.mktemp("rpm-scenarios"))


def build_bundle(release: StandInRelease, built: BuiltScenario, tmp_path: Path, *extra: str, requests=None):  # type: ignore[no-untyped-def]
    scenario = built.scenario
    repositories = []
    for repo_id, directory in built.repos.items():
        serve_directory(release.mirror, f"/{HOST}/{scenario.id}/{repo_id}", directory)
        repositories.append({"id": repo_id, "baseurl": f"https://{HOST}/{scenario.id}/{repo_id}/"})
    release.manifest["rpm"] = {
        "rocky9": {"repositories": repositories, "packages": list(requests or scenario.requests),
                   "assumed_installed": list(scenario.assumed)}
    }  # fmt: skip
    add_cni_plugins(release)
    release.write()
    return run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--retries", "1",
        "--allow-incomplete", *extra,
    )  # fmt: skip


def unpack(tmp_path: Path) -> Path:
    unpack_tarball(tmp_path / "out" / f"{TOP}.tar", tmp_path / "unpacked")
    return tmp_path / "unpacked" / TOP


def bundle_set(manifest: dict) -> Set[str]:
    found = set()
    for entry in manifest["rpms"]:
        version = entry["evr"].rsplit("-", 1)[0]
        found.add(f"{entry['name']} {version}.{entry['arch']}")
    return found


def matches(found: Set[str], expected: Dict[str, str]) -> bool:
    names = {item.split(" ")[0]: item.split(" ")[1] for item in found}
    return set(names) == set(expected) and all(
        names[name] == version or names[name].rsplit(".", 1)[0] == version for name, version in expected.items()
    )


@pytest.mark.root
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_bundle_equals_dnfs_answer_and_installs_from_itself(
    scenario: Scenario, built: Dict[str, BuiltScenario], release: StandInRelease, tmp_path: Path
) -> None:
    this = built[scenario.id]
    result = build_bundle(release, this, tmp_path)
    dnf_root = node_root(tmp_path / "dnf-root", this.assumed_rpms())
    before = installed(dnf_root)
    theirs = dnf_install(dnf_root, this.repos, scenario.requests)

    if scenario.fails:
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("bundler: error: cannot resolve the RPMs: ") and scenario.fails in last, last
        assert "Traceback" not in result.stderr and not (tmp_path / "out" / f"{TOP}.tar").exists()
        assert theirs.returncode != 0, "dnf installed what the builder refused"
        return

    assert result.returncode == 0, result.stderr
    assert theirs.returncode == 0, theirs.stderr
    dnf_answer = installed(dnf_root) - before
    bundle = unpack(tmp_path)
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    ours = bundle_set(manifest)
    assert ours == dnf_answer
    if scenario.expected is not None:
        assert matches(ours, scenario.expected), ours
    policy = manifest["rpm_repository"]["policy"]
    assert policy == {"solver": "libsolv", "best": True, "weak_dependencies": False,
                      "arches": ["x86_64", "noarch"], "obsoletes": True, "conflicts": True,
                      "closure": "minimal"}  # fmt: skip
    assert [a["nevra"] for a in manifest["rpm_repository"]["assumed_installed"]] == [
        "bash-0:5.1.8-1.x86_64", "glibc-0:2.34-1.x86_64",
    ]  # fmt: skip

    node = node_root(tmp_path / "node", this.assumed_rpms())
    from_bundle = dnf_install(node, {"k8s-bundle": bundle / "rpms"}, scenario.requests)
    assert from_bundle.returncode == 0, from_bundle.stderr
    assert installed(node) - before == ours


@pytest.mark.root
def test_preflight_checks_the_nodes_own_versions_of_assumed_packages(release: StandInRelease, tmp_path: Path) -> None:
    """A bundle built against glibc 2.34 whose RPM needs glibc >= 2.34 and libc.so.6: a node with 2.34 passes,
    a node with 2.30 is told to update glibc or use the full closure (rpm's own database, read with rpm -q)."""
    if missing_tools():
        pytest.skip(f"{', '.join(missing_tools())} not installed")
    needs = ["glibc >= 2.34", "libc.so.6()(64bit)", "bash", "/usr/bin/bash"]
    scenario = Scenario("node-versions", (rpm_("needs-new", requires=needs),), ("needs-new",))
    this = BuiltScenario(scenario, tmp_path / "rpms")
    result = build_bundle(release, this, tmp_path)
    assert result.returncode == 0, result.stderr
    bundle = unpack(tmp_path)
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    assumed = {a["name"]: a for a in manifest["rpm_repository"]["assumed_installed"]}
    assert assumed["glibc"] == {"name": "glibc", "nevra": "glibc-0:2.34-1.x86_64",
                                "required": ["glibc >= 2.34", "libc.so.6()(64bit)"]}  # fmt: skip
    assert assumed["bash"]["required"] == ["/usr/bin/bash", "bash"]

    current = node_root(tmp_path / "current", this.assumed_rpms())
    assert check_assumed_rpms(preflight_node(current, bundle, manifest)) is None
    older = build_rpms([FakeRpm("glibc", "2.30", arches=("x86_64",))], tmp_path / "older")
    bash = [p for p in this.assumed_rpms() if p.name.startswith("bash-")]
    old_node = node_root(tmp_path / "old", [*older.values(), *bash])
    assert check_assumed_rpms(preflight_node(old_node, bundle, manifest)) == (
        "this node's packages do not meet what the bundle's RPMs require: glibc >= 2.34 (glibc: built against "
        "glibc-0:2.34-1.x86_64); libc.so.6()(64bit) (glibc: built against glibc-0:2.34-1.x86_64): update the "
        "node (dnf update glibc) or use a bundle built with --rpm-closure full"
    )
    no_bash = node_root(tmp_path / "no-bash", list(older.values()))
    message = str(check_assumed_rpms(preflight_node(no_bash, bundle, manifest)))
    assert "/usr/bin/bash (bash: not installed); bash (bash: not installed)" in message


def preflight_node(root: Path, bundle: Path, manifest: dict) -> Node:
    host = Host(root)
    settings = NodeSettings(role="worker", first=False, name="n1", ip="10.213.0.5")
    return Node(host, State(host), Bundle(bundle, BundleManifest.from_mapping(manifest, str(bundle))), settings)


def test_proof_fails_when_the_bundle_repository_lacks_a_needed_package(
    built: Dict[str, BuiltScenario], tmp_path: Path
) -> None:
    """The proof solves against the bundle's own repodata: one package left out and it names the chain."""
    this = built["file-requirement-only-in-filelists"]
    repo = this.repos["one"]
    metadata = [RepoMetadata("one", _metadata_file(repo, "primary"), lambda: _metadata_file(repo, "filelists"))]
    requests = [parse_simple(r) for r in this.scenario.requests]
    resolution = resolve(metadata, requests, {}, ASSUMED, Policy("x86_64", "minimal"), "test")
    assert {p.name for p in resolution.packages} == {"app", "thing"}
    without = [p for name, p in this.first.items() if name.startswith("app-")]
    partial = make_repo(tmp_path / "partial", without)
    repodata = {f"repodata/{p.name}": p.read_bytes() for p in (partial / "repodata").iterdir()}
    with pytest.raises(BundlerError) as raised:
        prove_installable(repodata, requests, resolution, "x86_64")
    assert str(raised.value) == (
        "the bundle's RPM repository would not install on a node with the assumed packages: requested app -> "
        "app-1.0-1.noarch requires /usr/share/thing/data, which nothing in the repositories (k8s-bundle) provides"
    )
    whole = {f"repodata/{p.name}": p.read_bytes() for p in (repo / "repodata").iterdir()}
    prove_installable(whole, requests, resolution, "x86_64")


def _metadata_file(repo: Path, kind: str):  # type: ignore[no-untyped-def]
    path = next((repo / "repodata").glob(f"*-{kind}.xml.gz"))
    return path, path.name


@pytest.mark.root
def test_full_closure_equals_dnfs_answer_on_an_empty_root(
    built: Dict[str, BuiltScenario], release: StandInRelease, tmp_path: Path
) -> None:
    """--rpm-closure full takes nothing as installed: the requested bash is bundled, as dnf installs it into an
    empty root."""
    this = built["file-requirement-only-in-filelists"]
    requests = ("app", "bash")
    result = build_bundle(release, this, tmp_path, "--rpm-closure", "full", requests=requests)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((unpack(tmp_path) / "bundle.yaml").read_text())
    assert manifest["rpm_repository"]["policy"]["closure"] == "full"
    assert manifest["rpm_repository"]["assumed_installed"] == []
    root = node_root(tmp_path / "empty", [])
    assert dnf_install(root, this.repos, requests).returncode == 0
    assert bundle_set(manifest) == installed(root) == {
        "app 1.0.noarch", "thing 1.0.noarch", "bash 5.1.8.x86_64"
    }  # fmt: skip
