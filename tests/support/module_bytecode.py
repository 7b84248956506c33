"""A bytecode cache for the Python code Ansible sends to the tests' nodes.

Ansible sends each module to a node as a zip of Python sources (AnsiballZ), and the node's Python imports it
with zipimport, which compiles every source on every run: Python keeps no bytecode for code in a zip. On the
nodes' 3.9 that is over a third of a module's CPU (`stat`: 0.34 CPU-s, 0.21 with the cache), and the Ansible
tests run some 460 modules. The tests' sshd sessions (the SSH nodes', tests/support/ssh_nodes.py, and the lab
nodes', tests/lab/ssh.py) set PYTHONPATH to a folder holding only the sitecustomize.py below. It keeps what
zipimport compiles in a cache folder, keyed by the file's path inside the zip, its source and the
interpreter's bytecode magic number, and gives each code object the file name this run's compile would have
given it: what runs is Ansible's code, compiled as it would have been. It takes its variables out of the
environment at once, so the programs a module starts (the installer) run as they would on any node. (It shadows
a sitecustomize of the interpreter's own for the first Python of a session: Debian's 3.11 has one, which only
installs Ubuntu's apport if present; pyenv's 3.9 has none.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

CACHE_VARIABLE = "K8S_TEST_ZIP_BYTECODE"

SITECUSTOMIZE = '''\
"""The tests' bytecode cache for code imported from zips (tests/support/module_bytecode.py)."""
import os


def _install():
    cache = os.environ.pop("K8S_TEST_ZIP_BYTECODE", "")
    if os.environ.get("PYTHONPATH") == os.path.dirname(os.path.abspath(__file__)):
        del os.environ["PYTHONPATH"]
    import zipimport

    compile_source = getattr(zipimport, "_compile_source", None)
    if not cache or compile_source is None:
        return
    import hashlib
    import marshal
    from importlib.util import MAGIC_NUMBER

    def named(code, filename):
        consts = tuple(named(c, filename) if hasattr(c, "co_filename") else c for c in code.co_consts)
        return code.replace(co_filename=filename, co_consts=consts)

    def cached_compile(pathname, source):
        inside = pathname.replace(os.sep, "/").rsplit(".zip/", 1)[-1]
        key = hashlib.sha256(MAGIC_NUMBER + inside.encode() + b"\\0" + source).hexdigest()
        path = os.path.join(cache, key)
        try:
            with open(path, "rb") as kept:
                return named(marshal.loads(kept.read()), pathname)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        code = compile_source(pathname, source)
        partial = "%s.%d" % (path, os.getpid())
        try:
            with open(partial, "wb") as out:
                out.write(marshal.dumps(code))
            os.replace(partial, path)
        except OSError:
            pass
        return code

    zipimport._compile_source = cached_compile


_install()
del _install
'''


def write_hook(lib: Path, cache: Path) -> None:
    """sitecustomize.py in `lib`, and the cache folder."""
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cache.mkdir(parents=True, exist_ok=True)


def session_env(lib: str, cache: str) -> Dict[str, str]:
    """The variables a session sets to use the hook, with `lib` and `cache` as the node sees them."""
    return {"PYTHONPATH": lib, CACHE_VARIABLE: cache}


def sshd_set_env(lib: str, cache: str) -> str:
    """session_env as sshd_config's SetEnv arguments (the tests' paths hold no spaces or quotes)."""
    variables = session_env(lib, cache)
    for name, value in variables.items():
        if any(character.isspace() or character in "\"'" for character in value):
            raise ValueError(f"{name}={value!r}: sshd's SetEnv would need quoting")
    return " ".join(f"{name}={value}" for name, value in variables.items())
