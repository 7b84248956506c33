"""tests/support/module_bytecode.py: the bytecode cache the test nodes' sessions keep for Ansible's zipped
modules, run with the Python 3.9 the nodes use."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from tests.support.module_bytecode import CACHE_VARIABLE, session_env, sshd_set_env, write_hook

MODULE = """\
import os, sys, traceback
def fail():
    raise RuntimeError("boom")
try:
    fail()
except RuntimeError:
    print("traceback names", traceback.extract_tb(sys.exc_info()[2])[-1].filename)
print("file", __file__)
print("child sees", os.environ.get("PYTHONPATH"), os.environ.get("K8S_TEST_ZIP_BYTECODE"))
"""


def run_from_zip(python: str, zip_path: Path, variables: Dict[str, str]) -> List[str]:
    """Import `payload` from `zip_path`, as AnsiballZ imports a module, in a session with `variables`."""
    env = {"PATH": os.environ["PATH"], **variables}
    code = f"import sys; sys.path.insert(0, {str(zip_path)!r}); import payload"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=True)
    return result.stdout.splitlines()


def payload_zip(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "ansible_stat_payload.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("payload.py", MODULE)
    return path


def test_code_from_a_zip_is_compiled_once_and_named_after_the_zip_it_came_from(python39: str, tmp_path: Path) -> None:
    write_hook(tmp_path / "lib", tmp_path / "cache")
    variables = session_env(str(tmp_path / "lib"), str(tmp_path / "cache"))
    first = payload_zip(tmp_path / "run1")
    lines = run_from_zip(python39, first, variables)
    assert lines == [
        f"traceback names {first}/payload.py",
        f"file {first}/payload.py",
        "child sees None None",  # the installer a module starts runs in a node's plain environment
    ]
    (kept,) = (tmp_path / "cache").iterdir()

    # another run's zip (another temporary folder): the kept code runs, named after this run's zip (the entry is
    # swapped for code that says so, compiled by the same Python: bytecode is the interpreter's own)
    swap = "import marshal, sys; open(sys.argv[1], 'wb').write(marshal.dumps(compile(sys.argv[2], 'x.py', 'exec')))"
    subprocess.run([python39, "-c", swap, str(kept), MODULE + "print('from the cache')\n"], check=True)
    second = payload_zip(tmp_path / "run2")
    lines = run_from_zip(python39, second, variables)
    assert lines == [
        f"traceback names {second}/payload.py",
        f"file {second}/payload.py",
        "child sees None None",
        "from the cache",
    ]


def test_without_the_cache_variable_nothing_is_kept(python39: str, tmp_path: Path) -> None:
    write_hook(tmp_path / "lib", tmp_path / "cache")
    variables = session_env(str(tmp_path / "lib"), str(tmp_path / "cache"))
    del variables[CACHE_VARIABLE]
    lines = run_from_zip(python39, payload_zip(tmp_path / "run"), variables)
    assert lines[-1] == "child sees None None" and not list((tmp_path / "cache").iterdir())


def test_sshd_set_env_refuses_a_value_it_would_split() -> None:
    assert sshd_set_env("/lib", "/cache") == f"PYTHONPATH=/lib {CACHE_VARIABLE}=/cache"
    with pytest.raises(ValueError, match="quoting"):
        sshd_set_env("/a b", "/cache")
