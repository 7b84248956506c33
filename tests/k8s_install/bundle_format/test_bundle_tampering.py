"""A bundle altered on its way to the node, as an unsigned bundle can be: bundle.yaml rewritten together with its
SHA256SUMS line, so that only its shape can give it away. Every command refuses it with one line, never a crash."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from tests.conftest import REPO, run_bundler
from tests.support.stand_in_bundle import stand_in_tarball
from tests.support.user_errors import one_error_line

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in bundle (built once per run: tests/support/stand_in_bundle.py), unpacked for the module."""
    work = tmp_path_factory.mktemp("tamper")
    tarball = stand_in_tarball(work / "out")
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(work)], check=True)
    return work / TOP


@pytest.fixture
def unpacked(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / TOP))


def rewrite_manifest(folder: Path, change: Callable[[str], str]) -> None:
    """bundle.yaml changed and its SHA256SUMS line with it: what SHA256SUMS alone cannot catch."""
    manifest = folder / "bundle.yaml"
    old = hashlib.sha256(manifest.read_bytes()).hexdigest()
    manifest.write_bytes(change(manifest.read_text()).encode("utf-8", "surrogateescape"))
    new = hashlib.sha256(manifest.read_bytes()).hexdigest()
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(old, new))


SHAPES = [
    ("a-list", lambda text: "- format: 1\n- kubernetes: 1.29.6\n", "bundle.yaml is not a bundle manifest"),
    ("empty", lambda text: "", "bundle.yaml is not a bundle manifest"),
    ("a-string", lambda text: "hello\n", "bundle.yaml is not a bundle manifest"),
    ("no-kubernetes", lambda text: re.sub(r"(?m)^kubernetes: .*\n", "", text), "bundle.yaml: kubernetes: must be"),
    ("kubernetes-a-list", lambda text: text.replace("kubernetes: 1.29.6", "kubernetes: [1]"), "kubernetes: must be"),
    ("format-2", lambda text: text.replace("format: 1", "format: 2"), "format: 2 is not bundle format 1"),
    (
        "artifacts-a-string",
        lambda text: re.sub(r"(?s)\nartifacts:.*?\n(?=[a-z])", "\nartifacts: none\n", text),
        "bundle.yaml: artifacts: must be a list of mappings",
    ),
    (
        "artifact-path-a-number",
        lambda text: text.replace("path: files/runc-1.0.0-linux-amd64.bin", "path: 7", 1),
        "bundle.yaml: artifacts[1].path: must be a string, got 7",
    ),
    ("not-utf8", lambda text: text + "note: \udcff\n", "bundle.yaml is not valid YAML: "),
    (
        "alias-bomb",  # nine levels of nine aliases: 9**9 strings for whoever walks the `builder` field
        lambda text: (
            "".join(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}" if n else "x"] * 9) + "]\n" for n in range(9))
            + text.replace("builder: bundler", "builder: *l8\nold_builder: bundler")
        ),
        "bundle.yaml is not valid YAML: line 2: uses the YAML alias *l0, which the builder never writes",
    ),
]


@pytest.mark.parametrize("change,message", [case[1:] for case in SHAPES], ids=[case[0] for case in SHAPES])
def test_a_bundle_yaml_of_the_wrong_shape_is_one_line(unpacked: Path, change, message: str) -> None:
    rewrite_manifest(unpacked, change)
    line = one_error_line(run_bundler("verify", str(unpacked)))
    assert message in line


@pytest.mark.parametrize("command", [["verify"], ["plan", "--role", "worker"], ["upgrade", "plan", "--role", "worker"]])
def test_every_node_command_refuses_it_under_python39(
    unpacked: Path, python39: str, tmp_path: Path, command: list
) -> None:
    rewrite_manifest(unpacked, lambda text: "- a list\n")
    env = dict(os.environ, SHIV_ROOT=str(tmp_path / "shiv"))
    (tmp_path / "root").mkdir()
    result = subprocess.run(
        [python39, str(unpacked / "k8s-install.pyz"), "--root", str(tmp_path / "root"), *command],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert "bundle.yaml is not a bundle manifest" in one_error_line(result)


def test_the_real_bundle_yaml_has_the_shape(pristine: Path) -> None:
    from k8s_install.bundle_format.shape import check_manifest_shape

    manifest = yaml.safe_load((pristine / "bundle.yaml").read_text())
    assert check_manifest_shape(manifest, str(pristine)) is manifest


@pytest.fixture
def readable_copy(pristine: Path) -> Iterator[Path]:
    """A copy of the bundle another user can reach (pytest's tmp_path is root's alone), run with Debian's python3
    (pyenv's are under /root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the check as another user")
    where = Path(tempfile.mkdtemp(prefix="bundle-perm-", dir="/tmp"))
    try:
        where.chmod(0o755)
        copy = Path(shutil.copytree(pristine, where / TOP))
        subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
        (where / "sh").mkdir()
        (where / "sh").chmod(0o777)  # the pyz unpacks itself here as the other user
        yield copy
    finally:
        shutil.rmtree(where)


@pytest.mark.parametrize("relative,mode", [("files/runc-1.0.0-linux-amd64.bin", 0o600), ("files", 0o700)])
def test_a_bundle_copied_with_wrong_permissions_says_so(readable_copy: Path, relative: str, mode: int) -> None:
    (readable_copy / relative).chmod(mode)
    result = subprocess.run(
        ["/usr/bin/python3", str(readable_copy / "k8s-install.pyz"), "verify"],
        capture_output=True, text=True, user=65534, group=65534, extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "HOME": str(readable_copy.parent), "SHIV_ROOT": str(readable_copy.parent / "sh")},
    )  # fmt: skip
    line = one_error_line(result)
    assert f"{relative}: cannot read it (Permission denied): copy the bundle again keeping its permissions" in line


def test_a_compressed_tarball_is_named_as_such(pristine: Path, tmp_path: Path) -> None:
    tarball = pristine.parent / "out" / f"{TOP}.tar"
    compressed = tmp_path / f"{TOP}.tar.gz"
    with open(compressed, "wb") as out:
        subprocess.run(["gzip", "-c", str(tarball)], stdout=out, check=True)
    line = one_error_line(run_bundler("verify", str(compressed)))
    assert line.endswith("it is compressed with gzip: unpack it with `tar -xf` and verify the folder")


def test_the_builder_writes_a_shared_value_twice_never_as_an_alias() -> None:
    from k8s_install.bundle_format.shape import NoAliasDumper, load_manifest_yaml

    shared = ["alma9", "rhel9"]
    text = yaml.dump({"os_aliases": shared, "again": shared}, Dumper=NoAliasDumper)
    assert "&" not in text and "*" not in text
    assert load_manifest_yaml(text.encode()) == {"os_aliases": shared, "again": shared}


@pytest.mark.parametrize(
    "given,message",
    [("tarball", "a file, not the unpacked bundle folder: unpack it with `tar -xf`, use the folder"),
     ("nothing", "no such bundle folder")],
)  # fmt: skip
def test_bundle_that_is_a_tarball_or_nothing_says_so(pristine: Path, tmp_path: Path, given: str, message: str) -> None:
    bundle = pristine.parent / "out" / f"{TOP}.tar" if given == "tarball" else tmp_path / "nothing"
    result = subprocess.run(
        [sys.executable, "-m", "k8s_install", "--bundle", str(bundle), "verify"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert one_error_line(result).endswith(f"{bundle}: {message}")


@pytest.mark.parametrize(
    "member,message",
    [(f"{TOP}/files/../../escaped", "escapes the bundle folder"),
     (f"./{TOP}/files/extra", f"is not in the builder's form ('{TOP}/files/extra'); use the tarball or folder"),
     (f"/{TOP}/files/extra", "is not a relative path inside the bundle")],
)  # fmt: skip
def test_member_names_a_tar_writes_only_when_repacked_or_forged(
    pristine: Path, tmp_path: Path, member: str, message: str
) -> None:
    tarball = tmp_path / "odd.tar"
    with tarfile.open(pristine.parent / "out" / f"{TOP}.tar") as source, tarfile.open(tarball, "w") as out:
        for info in source.getmembers():
            out.addfile(info, source.extractfile(info) if info.isfile() else None)
        extra = tarfile.TarInfo(member)
        extra.size = 3
        out.addfile(extra, io.BytesIO(b"odd"))
    assert message in one_error_line(run_bundler("verify", str(tarball)))
