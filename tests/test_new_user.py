"""What a new user hits first, each run for real: `python -m bundler`, and the built k8s-install.pyz under
Python 3.9 (issue 13, "small things a new user hit")."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import jsonschema
import pytest

from bundler.zipapp import SHIV_ROOT_DEFAULT, build_installer
from tests.conftest import REPO, run_bundler
from tests.support.cluster_files import SEED_NODES, write_cluster
from tests.support.node_bundle import build_node_bundle
from tests.support.prerequisites import require
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root
from tests.support.stand_in_bundle import stand_in_tarball

BUNDLER_HELP = (
    [], ["build"], ["verify"], ["inspect"], ["images"], ["images", "push"], ["cluster"], ["cluster", "init"],
    ["cluster", "check"],
)  # fmt: skip
TOP = "k8s-bundle-1.29.6-rocky9-amd64"
PYZ_HELP = ([], ["plan"], ["preflight"], ["verify"], ["images"], ["images", "push"], ["config"], ["reset"])


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_installer(tmp_path_factory.mktemp("pyz") / "k8s-install.pyz", 1700000000)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A real bundle, built from stand-in artifacts (once per run: tests/support/stand_in_bundle.py) and unpacked."""
    tarball = stand_in_tarball(tmp_path / "out")
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    return tmp_path / TOP


def run_pyz(python39: str, pyz: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python39, str(pyz), *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=120
    )


def test_help_and_readme_explain_themselves_without_the_seed_guide(pyz: Path, python39: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    for words in BUNDLER_HELP:
        result = run_bundler(*words, "--help")
        assert result.returncode == 0, result.stderr
        assert "seed" not in result.stdout.lower(), words
    for words in PYZ_HELP:
        result = run_pyz(python39, pyz, *words, "--help", env=env)
        assert result.returncode == 0, result.stderr
        assert "seed" not in result.stdout.lower(), words
    assert "seed" not in (REPO / "README.md").read_text(encoding="utf-8").lower()


def test_the_sysctl_file_explains_its_values_without_the_seed_guide() -> None:
    from k8s_install.steps.kernel import sysctl_conf

    text = sysctl_conf()
    assert "# guides set 202808 then 52706963" in text and "seed" not in text.lower()


def test_cluster_check_of_a_missing_file_names_both_init_commands(pyz: Path, python39: str, tmp_path: Path) -> None:
    missing = tmp_path / "cluster.yaml"
    result = run_bundler("cluster", "check", str(missing))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"bundler: error: {missing}: no such file; write one with `bundler cluster init` "
        "(on a node: `k8s-install.pyz config init`)\n"
    )
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    on_node = run_pyz(python39, pyz, "config", "check", "--config", str(missing), env=env)
    assert on_node.returncode == 1
    assert "`bundler cluster init` (on a node: `k8s-install.pyz config init`)" in on_node.stderr


def test_both_tools_print_sizes_in_binary_units(bundle: Path, python39: str, tmp_path: Path) -> None:
    builder = run_bundler("verify", str(bundle))
    node = run_pyz(python39, bundle / "k8s-install.pyz", "verify", env=dict(os.environ, SHIV_ROOT=str(tmp_path / "s")))
    assert builder.returncode == 0 and node.returncode == 0, builder.stderr + node.stderr
    ok_lines = [
        [line for line in result.stdout.splitlines() if line.startswith("bundle OK: ")] for result in (builder, node)
    ]
    assert ok_lines[0] == ok_lines[1] and re.match(r"bundle OK: 6 files, \d+\.\d MiB, ", ok_lines[0][0]), ok_lines
    inspected = run_bundler("inspect", str(bundle))
    assert inspected.returncode == 0, inspected.stderr
    for text in (builder.stdout, node.stdout, inspected.stdout):
        assert not re.search(r"\d ?([KMG]B|kB|bytes)\b", text), text


INCOMPLETE = "incomplete bundle (built with --allow-incomplete), missing: "


def test_every_reader_of_an_incomplete_bundle_says_so(bundle: Path, python39: str, tmp_path: Path) -> None:
    """A bundle built with --allow-incomplete: both tools' verify and bundler inspect, text and JSON, say what
    it lacks (the same list bundle.yaml records)."""
    import yaml

    missing = yaml.safe_load((bundle / "bundle.yaml").read_text())["incomplete"]
    assert missing and "kubeadm (a file or an RPM named kubeadm)" in missing
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "s"))
    pyz = bundle / "k8s-install.pyz"
    for result in (run_bundler("verify", str(bundle)), run_pyz(python39, pyz, "verify", env=env)):
        assert result.returncode == 0, result.stderr
        assert f"warning: {INCOMPLETE}{'; '.join(missing)}" in result.stdout.splitlines()
    inspected = run_bundler("inspect", str(bundle))
    assert f"complete: no, {INCOMPLETE}{'; '.join(missing)}" in inspected.stdout.splitlines()
    for command, result in (
        ("verify", run_bundler("verify", "--json", str(bundle))),
        ("verify", run_pyz(python39, pyz, "verify", "--json", env=env)),
        ("inspect", run_bundler("inspect", "--json", str(bundle))),
    ):
        doc = json.loads(result.stdout)
        assert doc["incomplete"] == missing, command
        jsonschema.validate(doc, json.loads((REPO / f"schemas/{command}.schema.json").read_text()))


@pytest.mark.parametrize("command", [[], ["plan"], ["preflight"], ["upgrade"], ["upgrade", "plan"]])
def test_the_node_refuses_an_incomplete_bundle_before_any_change(
    command: List[str], bundle: Path, python39: str, tmp_path: Path
) -> None:
    root = tmp_path / "image"
    root.mkdir()
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "s"))
    pyz = bundle / "k8s-install.pyz"
    yes = ["--yes"] if command in ([], ["upgrade"]) else []
    refused = run_pyz(python39, pyz, *command, "--role", "worker", "--root", str(root), *yes, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert line.startswith(f"k8s-install.pyz: error: {bundle}: {INCOMPLETE}kubeadm (a file or an RPM named kubeadm); ")
    assert line.endswith(
        "nothing was changed: use a complete bundle (bundler build without --allow-incomplete), "
        "or pass --allow-incomplete to go on with what it holds"
    )
    assert "more (bundler inspect lists them all)" in line and "\n" not in line
    assert list(root.iterdir()) == []
    allowed = run_pyz(python39, pyz, *command, "--role", "worker", "--root", str(root), *yes, "--allow-incomplete",
                      env=env)  # fmt: skip
    assert f"warning: {INCOMPLETE}kubeadm" in allowed.stdout + allowed.stderr
    assert INCOMPLETE not in allowed.stderr.strip().splitlines()[-1]  # it went on (to the next problem)


def carried_with_cluster(bundle: Path, tmp_path: Path) -> Path:
    """A copy of `bundle` holding a cluster.yaml listed in SHA256SUMS, as `bundler build --cluster` packs it."""
    import hashlib

    import yaml

    from tests.support.cluster_files import cluster_document

    copy = tmp_path / "carried" / bundle.name
    shutil.copytree(bundle, copy)
    data = yaml.safe_dump(cluster_document(SEED_NODES), sort_keys=False).encode()
    (copy / "cluster.yaml").write_bytes(data)
    with open(copy / "SHA256SUMS", "a") as sums:
        sums.write(f"{hashlib.sha256(data).hexdigest()}  cluster.yaml\n")
    return copy


def run_node(capsys: pytest.CaptureFixture, *args: str) -> Tuple[int, str]:
    from k8s_install.main import main

    code = main(list(args))
    return code, capsys.readouterr().err.strip()


def test_an_edited_cluster_yaml_in_the_bundle_says_to_edit_a_copy(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = carried_with_cluster(bundle, tmp_path)
    assert run_node(capsys, "--bundle", str(copy), "verify")[0] == 0
    with open(copy / "cluster.yaml", "a") as edited:
        edited.write("# interface: ens33\n")
    code, error = run_node(capsys, "--bundle", str(copy), "verify")
    assert code == 1
    assert error.startswith(f"k8s-install.pyz: error: {copy}: cluster.yaml was changed after the build (sha256 ")
    assert error.endswith(
        "the bundle's copy is checked like every file: put the original back (re-copy it from the bundle tarball) "
        "and edit a copy outside the bundle folder, passed with --config FILE"
    )


@pytest.mark.parametrize("name", ["cluster-secrets.yaml", "cluster-secrets-worker.yaml"])
def test_secrets_inside_the_bundle_folder_are_sent_beside_it(
    name: str, bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = bundle  # this test's own
    (copy / name).write_text("cluster: demo\n")
    code, error = run_node(capsys, "--bundle", str(copy), "verify")
    assert (code, error) == (1, (
        f"k8s-install.pyz: error: {copy}: {name} does not belong inside the bundle folder (secrets never travel "
        "in a bundle): move it beside the folder, where the installer looks for it, or pass --secrets FILE"
    ))  # fmt: skip


def test_a_hint_to_set_a_cluster_yaml_field_names_the_copy_to_edit(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The bundle's cluster.yaml lacks a control plane's interface: the hint says to set it in a copy."""
    copy = carried_with_cluster(bundle, tmp_path)
    (tmp_path / "image").mkdir()
    code, error = run_node(
        capsys, "--bundle", str(copy), "--root", str(tmp_path / "image"), "--node", "k8s-mn02", "--allow-incomplete",
        "plan",
    )  # fmt: skip
    assert code == 1
    assert "set nodes[].interface (e.g. ens33)" in error
    assert error.endswith(
        f"; edit a copy, not the bundle's cluster.yaml (checked like every file of the bundle): "
        f"cp {copy}/cluster.yaml {copy.parent}/cluster.yaml, then pass --config {copy.parent}/cluster.yaml"
    )


def test_a_worker_without_secrets_is_told_its_own_file(
    node_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    copy = carried_with_cluster(node_bundle, tmp_path)
    (tmp_path / "image").mkdir()
    code, error = run_node(
        capsys, "--bundle", str(copy), "--root", str(tmp_path / "image"), "--node", "k8s-wn01", "--allow-incomplete",
        "plan",
    )  # fmt: skip
    assert code == 1
    assert error.startswith(
        "k8s-install.pyz: error: no cluster-secrets-worker.yaml (or cluster-secrets.yaml): copy the file "
        "`bundler cluster init` wrote to this node (0600) and pass --secrets FILE, or put it beside the bundle folder"
    ), error


BAD_BUNDLER_ARGS = {
    "unknown command": ["bild"],
    "no command": [],
    "missing value": ["build", "--k8s"],
    "bad choice": ["build", "--k8s", "1.29.6", "--arch", "sparc"],
    "neither --k8s nor --manifest": ["build"],
    "unsupported --k8s": ["build", "--k8s", "1.99.0"],
    "unsupported --k8s with v": ["build", "--k8s", "v1.99.0"],
    "unknown --os": ["build", "--k8s", "1.29.6", "--os", "ubuntu22"],
    "missing --lock file": ["build", "--k8s", "1.29.6", "--lock", "/nope.yaml"],
    "hosts without a release": ["hosts"],
    "registry-auth shape": ["build", "--k8s", "1.29.6", "--registry-auth", "registry.example"],
    "registry-mirror shape": ["build", "--k8s", "1.29.6", "--registry-mirror", "docker.io"],
    "plain-http mirror without --insecure-registry": [
        "build",
        "--k8s",
        "1.29.6",
        "--registry-mirror",
        "docker.io=http://127.0.0.1:5000",
    ],  # fmt: skip
    "timeout 0": ["build", "--k8s", "1.29.6", "--timeout", "0"],
    "negative jobs": ["verify", "--jobs", "-1", "."],
    "missing action": ["images"],
    "missing positional": ["images", "push", "bundle.tar"],
    "bad push prefix": ["images", "push", "bundle.tar", "127.0.0.1:5000", "--prefix", "Mirror"],
    "plain http with a CA file": ["images", "push", "bundle.tar", "127.0.0.1:5000", "--plain-http", "--ca-file", "ca"],
    "cluster init of an unsupported version": ["cluster", "init", "--k8s", "1.99.0"],
}


@pytest.mark.parametrize("args", BAD_BUNDLER_ARGS.values(), ids=BAD_BUNDLER_ARGS.keys())
def test_bundler_bad_arguments_exit_2_before_doing_anything(args: list, tmp_path: Path) -> None:
    # --output/--dir/--cache point into tmp_path where the command takes them: nothing may appear there
    if args[:1] == ["build"]:
        args = [*args, "--mirror", "http://127.0.0.1:9"]  # were the check to miss, nothing leaves this machine
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    result = run_bundler(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"bundler( [a-z]+)*: error: ", last) and "Traceback" not in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == [], "a bad command line wrote something"


BAD_PYZ_ARGS = {
    "unknown command": ["instal"],
    "missing value": ["--role"],
    "bad choice": ["--role", "master"],
    "--first with --role worker": ["--first", "--role", "worker"],
    "unknown check to ignore": ["preflight", "--ignore-preflight", "cpu"],
    "negative jobs": ["verify", "--jobs", "-2"],
    "missing registry": ["images", "push"],
    "bad prefix": ["images", "push", "registry.example:5000", "--prefix", "Mirror"],
    "plain http with a CA file": ["images", "push", "127.0.0.1:5000", "--plain-http", "--ca-file", "ca.pem"],
    "missing config action": ["config"],
    "bad certs action": ["certs", "renoo"],
    "an option verify does not take": ["verify", "--firewall", "disable", "--yes"],
    "the same, before the command": ["--firewall", "disable", "verify"],
    "plan does not change: no --yes": ["plan", "--yes"],
    "status takes no node": ["status", "--role", "worker"],
}


def test_an_option_a_command_does_not_take_is_refused_in_one_line(pyz: Path, python39: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    result = run_pyz(python39, pyz, "verify", "--firewall", "disable", "--yes", env=env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "k8s-install.pyz: error: verify does not take --yes, --firewall (see k8s-install.pyz verify --help)\n"
    )


@pytest.mark.parametrize(
    "command, takes, not_listed",
    [
        (
            ["verify"],
            ["--bundle", "--root", "--trusted-signers", "--jobs", "--base", "--json"],
            ["--firewall", "--yes"],
        ),
        (["status"], ["--bundle", "--root", "--containerd-address", "--json"], ["--role", "--config", "--yes"]),
        (["reset"], ["--root", "--yes"], ["--bundle", "--role", "--firewall"]),
        (["plan"], ["--role", "--first", "--config", "--firewall", "--allow-incomplete"], ["--yes"]),
        (["upgrade"], ["--role", "--yes", "--allow-incomplete", "--no-delete-emptydir-data"], []),
    ],
)
def test_each_command_s_help_lists_only_its_options(
    command: List[str], takes: List[str], not_listed: List[str], pyz: Path, python39: str, tmp_path: Path
) -> None:
    help_text = run_pyz(python39, pyz, *command, "--help", env=dict(os.environ, SHIV_ROOT=str(tmp_path / "s"))).stdout
    for option in takes:
        assert f"  {option}" in help_text, (command, option)
    for option in not_listed:
        assert f"  {option}" not in help_text and f"[{option}" not in help_text, (command, option)


@pytest.mark.parametrize("args", BAD_PYZ_ARGS.values(), ids=BAD_PYZ_ARGS.keys())
def test_pyz_bad_arguments_exit_2(args: list, pyz: Path, python39: str, tmp_path: Path) -> None:
    result = run_pyz(python39, pyz, *args, env=dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv")))
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"k8s-install\.pyz( [a-z]+)*: error: ", last) and "Traceback" not in result.stderr, result.stderr


NOBODY = 65534
# Run a command as nobody in a private mount namespace. A Python under /root (pyenv) stays reachable: a tmpfs
# (0755) covers /root in the namespace only, and the interpreter's folder is bound back at its own path.
AS_NOBODY = """
set -e
if [ "${PREFIX#/root/}" != "$PREFIX" ]; then
    mkdir -p "$STAGE" && mount --bind "$PREFIX" "$STAGE"
    mount -t tmpfs -o mode=0755 tmpfs /root
    mkdir -p "$PREFIX" && mount --bind "$STAGE" "$PREFIX"
fi
exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
"""


@pytest.fixture
def public(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can read (pytest's own are root's alone)."""
    require("unshare", "setpriv", "mount")
    folder = Path(tempfile.mkdtemp(prefix="k8s-new-user-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def run_as_nobody(python39: str, command: List[str], home: str, public: Path) -> subprocess.CompletedProcess:
    tmp = public / "tmp"
    tmp.mkdir(mode=0o1777, exist_ok=True)
    tmp.chmod(0o1777)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "TMPDIR": str(tmp), "LANG": "C.UTF-8",
           "PREFIX": str(Path(python39).resolve().parents[1]), "STAGE": str(public / "python-prefix")}  # fmt: skip
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", AS_NOBODY, "sh", python39, *command],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def readable_copy(bundle: Path, public: Path) -> Path:
    copy = public / bundle.name
    shutil.copytree(bundle, copy)
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


@pytest.mark.root
def test_verify_by_a_user_who_is_not_root_just_works(bundle: Path, python39: str, public: Path) -> None:
    """shiv would extract under the root-owned /var/lib/k8s-install/shiv and fail with a traceback; the pyz's
    launcher sends other users to their own cache folder, else to a private temporary one it removes."""
    copy = readable_copy(bundle, public)
    home = public / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    for home_dir in ("/nonexistent", str(home)):
        result = run_as_nobody(python39, [str(copy / "k8s-install.pyz"), "verify"], home_dir, public)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
        assert "\nbundle OK: 6 files" in result.stdout
        assert list((public / "tmp").iterdir()) == [], "the temporary extraction was left behind"
    extracted = list((home / ".cache" / "k8s-install" / "shiv").iterdir())
    expected = f"k8s-install.pyz_{build_id(copy / 'k8s-install.pyz')}"
    assert [path.name for path in extracted if path.is_dir()] == [expected]
    assert all(path.stat().st_uid == NOBODY for path in extracted)


@pytest.mark.root
def test_a_user_who_is_not_root_gets_one_line_for_a_user_error(python39: str, pyz: Path, public: Path) -> None:
    shutil.copy(pyz, public / "k8s-install.pyz")
    (public / "k8s-install.pyz").chmod(0o755)
    result = run_as_nobody(python39, [str(public / "k8s-install.pyz"), "verify"], "/nonexistent", public)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"k8s-install.pyz: error: {public}: no SHA256SUMS")


def build_id(pyz: Path) -> str:
    with zipfile.ZipFile(pyz) as archive:
        return str(json.loads(archive.read("environment.json"))["build_id"])


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["verify", "--help"], ["images", "push", "-h"]])
def test_help_and_version_write_nothing(args: List[str], pyz: Path, python39: str, tmp_path: Path) -> None:
    """--help and --version run straight from the zip: no extraction, not in SHIV_ROOT, not in the default."""
    watched = tmp_path / "shiv"
    default = Path(SHIV_ROOT_DEFAULT) / f"{pyz.name}_{build_id(pyz)}"
    existed = default.exists()
    result = run_pyz(python39, pyz, *args, env=dict(os.environ, SHIV_ROOT=str(watched)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("usage: k8s-install.pyz", "k8s-install.pyz 0."))
    assert not watched.exists()
    without = {key: value for key, value in os.environ.items() if key != "SHIV_ROOT"}
    assert run_pyz(python39, pyz, *args, env=without).returncode == 0
    assert default.exists() == existed, f"{args} extracted into {default}"


@pytest.fixture(scope="module")
def node_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.http_server import MirrorServer

    mirror = MirrorServer().start()
    try:
        return build_node_bundle(mirror, tmp_path_factory.mktemp("node-bundle"))
    finally:
        mirror.stop()


def prepare_image(python39: str, bundle: Path, root: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    """The real pyz on an EL9 image for another machine: in a network namespace holding no address at all, so
    no node IP is on "this machine" and nothing can be reached."""
    require("ip")
    if not root.exists():
        make_el9_root(root)
        add_kubelet_unit(root)
    with NetNamespace() as namespace:
        command = namespace.prefix() + [
            python39, str(bundle / "k8s-install.pyz"), "--root", str(root), "--config", str(site / "cluster.yaml"),
            "--secrets", str(site / "cluster-secrets.yaml"), "--allow-incomplete", *args,
        ]  # fmt: skip
        env = dict(os.environ, SHIV_ROOT=str(root.parent / "shiv"))
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.root
def test_root_prepares_an_image_for_a_node_whose_addresses_are_elsewhere(  # type: ignore[no-untyped-def]
    python39: str, node_bundle: Path, cluster_secrets, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    planes = [dict(node, interface="ens33") if node["role"] == "control-plane" else node for node in SEED_NODES]
    write_cluster(site, cluster_secrets, planes)
    first = prepare_image(python39, node_bundle, tmp_path / "mn01", site, "--node", "k8s-mn01", "--first", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "interface ens33" in (tmp_path / "mn01" / "etc/keepalived/keepalived.conf").read_text()
    worker = prepare_image(python39, node_bundle, tmp_path / "wn01", site, "--node", "k8s-wn01", "--yes")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "k8s-wn01" in (tmp_path / "wn01" / "etc/hostname").read_text()


@pytest.mark.root
def test_root_for_a_control_plane_without_an_interface_asks_for_one(  # type: ignore[no-untyped-def]
    python39: str, node_bundle: Path, cluster_secrets, tmp_path: Path
) -> None:
    write_cluster(tmp_path / "site", cluster_secrets)
    result = prepare_image(python39, node_bundle, tmp_path / "mn02", tmp_path / "site", "--node", "k8s-mn02", "plan")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        "k8s-install.pyz: error: cluster.yaml: node k8s-mn02: set nodes[].interface (e.g. ens33): with --root this "
        "machine's interfaces say nothing about the image's, and keepalived puts the API VIP on it"
    )


@pytest.mark.root
def test_preflight_lists_the_checks_it_ran(  # type: ignore[no-untyped-def]
    python39: str, node_bundle: Path, cluster_secrets, tmp_path: Path
) -> None:
    from k8s_install.steps.preflight import CHECK_NAMES

    write_cluster(tmp_path / "site", cluster_secrets)
    image, site = tmp_path / "wn01", tmp_path / "site"
    args = ("--node", "k8s-wn01", "preflight", "--ignore-preflight", "cpus")
    result = prepare_image(python39, node_bundle, image, site, *args)
    assert "Traceback" not in result.stderr
    listed = [line.split(":")[0].split()[-1] for line in result.stdout.splitlines() if line.startswith("  preflight ")]
    assert listed == list(CHECK_NAMES), result.stdout
    assert "  preflight cpus: ignored (--ignore-preflight cpus)" in result.stdout
    assert "  preflight os: ok" in result.stdout and "  preflight arch: ok" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"preflight: all checks passed ({len(CHECK_NAMES) - 1} run, 1 ignored)"


@pytest.mark.root
def test_plan_marks_what_root_only_logs(  # type: ignore[no-untyped-def]
    python39: str, node_bundle: Path, cluster_secrets, tmp_path: Path
) -> None:
    """Under --root, actions on the running machine (modprobe, sysctl, firewall-cmd, kubeadm, restarts) are only
    logged: plan says so for each, in text and JSON, instead of reporting the step as simply ok."""
    site = tmp_path / "site"
    write_cluster(site, cluster_secrets, [dict(node, interface="ens33") for node in SEED_NODES])
    args = ("--node", "k8s-mn01", "--first", "plan")
    text = prepare_image(python39, node_bundle, tmp_path / "mn01", site, *args)
    assert text.returncode == 0, text.stdout + text.stderr
    marked = [line for line in text.stdout.splitlines() if "--root: only logged, not run:" in line]
    for action in ("modprobe overlay", "sysctl -e -p /etc/sysctl.d/90-k8s.conf", "kubeadm init --config"):
        assert any(action in line for line in marked), (action, text.stdout)
    assert "would create /etc/containerd/config.toml (--root: restart of containerd only logged)" in text.stdout
    summary = text.stdout.splitlines()[-1]
    logged = r"\d+ action\(s\) on the running machine only logged \(--root\)"
    assert re.fullmatch(rf"plan: \d+ change\(s\) pending; nothing was changed; {logged}", summary), summary
    as_json = prepare_image(python39, node_bundle, tmp_path / "mn01", site, *args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    steps = {step["name"]: step for step in json.loads(as_json.stdout)["steps"]}
    assert any(entry.startswith("modprobe overlay") for entry in steps["kernel-modules"]["recorded_only"])
    jsonschema.validate(json.loads(as_json.stdout), json.loads((REPO / "schemas/plan.schema.json").read_text()))


def test_an_unwritable_shiv_root_is_one_line(pyz: Path, python39: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = run_pyz(python39, pyz, "verify", env=dict(os.environ, SHIV_ROOT=str(tmp_path / "a-file" / "shiv")))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == (
        f"k8s-install.pyz: error: cannot unpack into {tmp_path / 'a-file' / 'shiv'} (Not a directory): "
        "set SHIV_ROOT to a folder you can write\n"
    )
