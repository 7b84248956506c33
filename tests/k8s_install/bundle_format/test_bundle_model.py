"""bundle.yaml as one typed contract: the model (k8s_install/bundle_format/model.py) and its published JSON Schema
(schemas/bundle.v1.schema.json) agree; the builder writes what the model writes; and both tools read YAML with
one loader (the node's pure-Python, alias-refusing one), so a file one accepts the other accepts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Type

import jsonschema
import pytest
import yaml

from bundler.commands.build import read_lock
from bundler.delta import read_base
from bundler.errors import BundlerError
from k8s_install.bundle_format import model
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.yaml_loader import dump_yaml
from k8s_install.cluster.config import load_cluster_config
from k8s_install.errors import InstallError
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.bundle_contract import bundle_schema, check_bundle_yaml
from tests.support.cluster_files import cluster_document

SHA = "a" * 64
DIGEST = "sha256:" + "b" * 64

# A bundle.yaml in the builder's own key order with every section: cluster.yaml's entry comes first, as the
# builder adds it before the sources, and the repository key after the RPMs.
FULL: Dict[str, Any] = {
    "format": 1, "kubernetes": "1.29.6", "os": "rocky9", "os_aliases": ["alma9", "rhel9"], "arch": "amd64",
    "builder": "bundler 0.1.0",
    "extras": [
        {"name": "cluster-config", "path": "cluster.yaml", "sha256": SHA, "size": 10, "cluster": "prod"},
        {"repository": "kubernetes", "path": "rpms/keys/kubernetes.asc", "sha256": SHA, "size": 3, "pinned": True,
         "fingerprint": None},
    ],
    "incomplete": ["the images kubeadm needs"],
    "artifacts": [{"name": "runc", "version": "1.1.12", "arch": "amd64", "path": "files/runc.amd64", "size": 5,
                   "sha256": SHA, "source": "https://example.invalid/runc.amd64", "pinned": True}],
    "images": [{"name": "registry.k8s.io/pause:3.9", "digest": DIGEST, "media_type": "application/json",
                "platform": "linux/amd64", "size": 7, "source_digest": DIGEST, "index_digest": DIGEST}],
    "rpm_repository": {
        "path": "rpms", "closure": "minimal",
        "policy": {"solver": "libsolv", "best": True, "weak_dependencies": False, "arches": ["x86_64", "noarch"],
                   "obsoletes": True, "conflicts": True, "closure": "minimal"},
        "gpgcheck": True, "keys": ["rpms/keys/kubernetes.asc"],
        "assumed_installed": [{"name": "glibc", "nevra": "glibc-0:2.34-100.el9.x86_64", "required": ["glibc >= 2.34"]}],
        "install": [{"name": "kubeadm", "nevra": "kubeadm-0:1.29.6-150500.1.1.x86_64", "exact": True}],
        "repositories": [{"id": "kubernetes", "url": "https://example.invalid/rpm/", "mirror": None, "revision": "1",
                          "repomd_sha256": SHA, "signature": "verified", "repomd_asc_sha256": SHA,
                          "package_signatures": "verified with rpmkeys (1 RPMs)"}],
    },
    "rpms": [{"name": "kubeadm", "nevra": "kubeadm-0:1.29.6-150500.1.1.x86_64", "evr": "1.29.6-150500.1.1",
              "arch": "x86_64", "path": "rpms/Packages/kubeadm.rpm", "sha256": SHA, "size": 9,
              "repository": "kubernetes", "requested": True, "why": "requested kubeadm"}],
    "installer": {"path": "k8s-install.pyz", "version": "0.1.0", "sha256": SHA, "size": 11},
}  # fmt: skip

MODEL_OF: Dict[str, Type[Any]] = {
    name: getattr(model, name)
    for name in ("ArtifactFile", "InstallerFile", "Image", "Rpm", "SolverPolicy", "AssumedPackage", "InstallRequest",
                 "SourceRepository", "RpmRepository", "ClusterConfigFile", "RepositoryKey", "Deb", "AptSource",
                 "DebRepository", "Chart", "PlainFile")
}  # fmt: skip


def field_names(cls: Type[Any]) -> List[str]:
    return sorted(field.name for field in dataclasses.fields(cls))


def without_defaults(cls: Type[Any]) -> List[str]:
    missing = dataclasses.MISSING
    return [f.name for f in dataclasses.fields(cls) if f.default is missing and f.default_factory is missing]


def test_the_schema_describes_every_dataclass_and_only_them() -> None:
    schema = bundle_schema()
    assert sorted(schema["$defs"]) == sorted(MODEL_OF)
    assert sorted(schema["properties"]) == field_names(BundleManifest)
    assert set(without_defaults(BundleManifest)) <= set(schema["required"])
    for name, cls in MODEL_OF.items():
        definition = schema["$defs"][name]
        assert sorted(definition["properties"]) == field_names(cls), name
        assert set(without_defaults(cls)) <= set(definition["required"]) <= set(field_names(cls)), name


def test_what_the_schema_requires_is_what_the_model_always_writes() -> None:
    schema = bundle_schema()
    full = BundleManifest.from_mapping(FULL, "test")
    written = {
        "ArtifactFile": full.artifacts[0], "InstallerFile": full.installer, "Image": model.Image("x", DIGEST),
        "Rpm": full.rpms[0], "SolverPolicy": model.SolverPolicy("minimal"),
        "AssumedPackage": model.AssumedPackage("a", "b"), "InstallRequest": model.InstallRequest("a", "b"),
        "SourceRepository": model.SourceRepository("kubernetes"), "RpmRepository": full.rpm_repository,
        "ClusterConfigFile": full.extras[0], "RepositoryKey": full.extras[1],
        "Deb": model.Deb("kubeadm", "1.29.6-1.1", "amd64", "debs/kubeadm.deb", SHA), "AptSource": model.AptSource("k"),
        "DebRepository": model.DebRepository("debs", "debs/bundle-key.gpg"),
        "Chart": model.Chart("demo", "0.1.0", "charts/demo-0.1.0.tgz", SHA, 1, "https://charts.example.invalid"),
        "PlainFile": model.PlainFile("notes.txt", "files/plain/notes.txt", SHA, 1, "notes.txt"),
    }  # fmt: skip
    for name, instance in written.items():
        assert sorted(instance.to_mapping()) == sorted(schema["$defs"][name]["required"]), name


def test_every_section_reads_and_writes_back_byte_for_byte() -> None:
    text = dump_yaml(FULL)
    manifest = check_bundle_yaml(text, "test")
    assert manifest.rpm_repository is not None and manifest.rpm_repository.install[0].exact is True
    assert manifest.cluster_config is not None and manifest.cluster_config.cluster == "prod"
    assert [key.repository for key in manifest.repository_keys] == ["kubernetes"]
    assert sorted(model.declared_files(manifest)) == [
        "cluster.yaml", "files/runc.amd64", "k8s-install.pyz", "rpms/Packages/kubeadm.rpm", "rpms/keys/kubernetes.asc"
    ]  # fmt: skip


def test_charts_and_plain_files_read_and_write_back_and_are_files_of_the_bundle() -> None:
    chart = {
        "name": "demo",
        "version": "0.1.0",
        "path": "charts/demo-0.1.0.tgz",
        "sha256": SHA,
        "size": 3,
        "source": "oci://127.0.0.1:5000/charts/demo",
        "source_digest": DIGEST,
        "images": ["docker.io/x/y:1"],
    }
    plain = {"name": "notes.txt", "path": "files/plain/notes.txt", "sha256": SHA, "size": 2, "source": "notes.txt"}
    layout = {key: value for key, value in FULL.items() if key not in ("rpm_repository", "rpms", "installer")}
    text = dump_yaml({**layout, "charts": [chart], "plain_files": [plain], "installer": FULL["installer"]})
    text = dump_yaml(BundleManifest.from_yaml(text, "test").to_mapping())  # in the model's key order
    manifest = check_bundle_yaml(text, "test")
    assert manifest.charts[0].source_digest == DIGEST and manifest.charts[0].images == ("docker.io/x/y:1",)
    assert {"charts/demo-0.1.0.tgz", "files/plain/notes.txt"} <= set(model.declared_files(manifest))
    with pytest.raises(InstallError, match=r"charts\[0\]\.sha256: must be a string"):
        BundleManifest.from_mapping({**FULL, "charts": [{**chart, "sha256": None}]}, "test")


def test_without_a_cluster_the_repository_keys_follow_the_rpms() -> None:
    keys = FULL["extras"][1:]
    layout = {key: value for key, value in FULL.items() if key not in ("extras", "incomplete", "installer")}
    text = dump_yaml({**layout, "extras": keys, "installer": FULL["installer"]})
    assert check_bundle_yaml(text, "test").to_yaml() == text
    no_rpms = {key: FULL[key] for key in ("format", "kubernetes", "os", "os_aliases", "arch", "builder")}
    bare = dump_yaml({**no_rpms, "artifacts": [], "installer": FULL["installer"]})
    assert check_bundle_yaml(bare, "test").to_yaml() == bare


@pytest.mark.parametrize(
    "change, message",
    [
        ({"artifacts": [{"path": "files/a", "sha256": SHA, "pinned": "yes"}]},
         "test: bundle.yaml: artifacts[0].pinned: must be true or false, got 'yes'"),
        ({"rpm_repository": {"install": [{"name": "a", "nevra": "b", "exact": 1}]}},
         "test: bundle.yaml: rpm_repository.install[0].exact: must be true or false, got 1"),
        ({"rpm_repository": {"keys": [{"a": 1}]}}, "test: bundle.yaml: rpm_repository.keys: must be a list of strings"),
        ({"images": [{"name": "x", "size": -1}]}, "test: bundle.yaml: images[0].size: must be a byte count, got -1"),
        ({"rpm_repository": {"policy": [1]}}, "test: bundle.yaml: rpm_repository.policy: must be a mapping"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_one_line_naming_it(change: Dict[str, Any], message: str) -> None:
    with pytest.raises(InstallError) as error:
        BundleManifest.from_mapping({**FULL, **change}, "test")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_builder_writes_bundle_yaml_from_the_model_in_one_piece() -> None:
    """No source mutates a shared record: the manifest is assembled from what each source returns."""
    sources = REPO / "bundler"
    offenders = [p.name for p in sources.rglob("*.py") if "context.record" in p.read_text(encoding="utf-8")]
    assert offenders == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        BundleManifest.from_mapping(FULL, "test").kubernetes = "1.30.0"  # type: ignore[misc]


# -- one YAML loader -----------------------------------------------------------------------------------------

TAB_MESSAGE = "line 1, column 9: a tab character, which YAML does not allow here: use spaces"


def tabbed_cluster(directory: Path) -> Path:
    """A cluster.yaml with a tab between a value and its trailing comment (libyaml takes it; pure PyYAML not)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cluster.yaml"
    text = yaml.safe_dump(cluster_document([]), sort_keys=False)
    path.write_text(text.replace("name: it\n", "name: it\t# the cluster\n", 1))
    return path


def test_a_tab_in_cluster_yaml_is_refused_by_the_node_naming_line_and_column(tmp_path: Path) -> None:
    path = tabbed_cluster(tmp_path)
    with pytest.raises(InstallError) as error:
        load_cluster_config(path, "1.29.6")
    assert str(error.value) == f"{path}: not valid YAML at {TAB_MESSAGE}"


def test_the_builder_refuses_that_cluster_yaml_exactly_as_the_node(release: StandInRelease, tmp_path: Path) -> None:
    path = tabbed_cluster(tmp_path / "c")
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--cluster", str(path),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"{path}: not valid YAML at {TAB_MESSAGE}" in result.stderr and "Traceback" not in result.stderr
    assert release.mirror.requests == []  # refused before anything was downloaded


ALIASED = dump_yaml({k: v for k, v in FULL.items() if k != "os_aliases"}).replace(
    "kubernetes: 1.29.6\n", "kubernetes: &v 1.29.6\nos_aliases:\n- *v\n", 1
)


def test_the_lock_reader_refuses_aliases(tmp_path: Path) -> None:
    lock = tmp_path / "bundle.yaml"
    lock.write_text(ALIASED)
    with pytest.raises(BundlerError, match=r"the lock file is not valid YAML: line \d+: uses the YAML alias \*v"):
        read_lock(lock)


def test_the_from_reader_refuses_aliases(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(ALIASED)
    with pytest.raises(BundlerError, match=r"--from .*: not valid YAML: line \d+: uses the YAML alias \*v"):
        read_base(old)


def test_the_lock_reader_takes_a_bundle_yaml_the_model_wrote(tmp_path: Path) -> None:
    lock = tmp_path / "bundle.yaml"
    lock.write_text(dump_yaml(FULL))
    read = read_lock(lock)
    assert read == BundleManifest.from_mapping(FULL, "x") and read.images[0].source_digest == DIGEST
    jsonschema.validate(FULL, bundle_schema())


def test_the_package_plan_reads_the_manifest_it_is_given_not_the_folder(tmp_path: Path) -> None:
    """bundle.yaml is read once per run (load_bundle); the packages plan takes that, never the file again."""
    import subprocess

    from k8s_install.bundle_format.bundle import Bundle
    from k8s_install.packages.dnf import plan_packages

    def rpm_query(command: List[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 0, "kubeadm|0|1.29.5|150500.1.1|x86_64\n", "")

    bundle = Bundle(tmp_path, BundleManifest.from_mapping(FULL, "test"))  # no bundle.yaml in tmp_path
    (change,) = plan_packages(bundle, tmp_path, rpm_query)
    assert change.describe() == "replace kubeadm-0:1.29.5-150500.1.1.x86_64 with kubeadm-0:1.29.6-150500.1.1.x86_64"
