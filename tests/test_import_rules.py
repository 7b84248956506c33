"""The layering rules, as tests instead of comments.

- The installer (`k8s_install`) runs on the nodes with the standard library, PyYAML and Jinja2 only: every one
  of its modules imports with the builder's dependencies (and the builder itself) made unimportable.
- The installer's command line parses without Jinja2 (`--help`, `verify`, `status` never render a template), and a
  command imports only its own module (`verify` loads no step, Jinja2 or registry client).
- A step never imports a command: commands compose steps, not the other way round.
- `bundler/pyz_main.py` (the zipapp's `__main__`, run by the node's Python) is standard library only, and no
  builder module imports it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from tests.conftest import REPO

INSTALLER = REPO / "installer" / "k8s_install"
BUILDER = REPO / "bundler"
FROM_THE_ZIPAPP = frozenset({"k8s_install", "_bootstrap"})  # the installer and shiv's bootstrap, inside the zip
BUILDER_ONLY = ("requests", "tqdm", "shiv", "solv", "zstandard", "bundler")

BLOCKER = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ImportError(f"{name} may not be imported here (blocked by tests/test_import_rules.py)")
        return None

sys.meta_path.insert(0, Blocked(sys.argv[1].split(",")))
"""


def run_blocked(blocked: Tuple[str, ...], body: str) -> subprocess.CompletedProcess:
    """Run `body` in a fresh interpreter where importing any of `blocked` (or a submodule) raises ImportError."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + body, ",".join(blocked)],
        cwd=REPO / "installer", capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_every_installer_module_imports_without_the_builders_dependencies() -> None:
    result = run_blocked(
        BUILDER_ONLY,
        """
import importlib, json, pkgutil
import k8s_install
found = pkgutil.walk_packages(k8s_install.__path__, "k8s_install.")
names = sorted(info.name for info in found if not info.name.endswith(".__main__"))  # that one runs the tool
for name in names:
    importlib.import_module(name)
print(json.dumps(names))
""",
    )
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    on_disk = {module_name(path, INSTALLER.parent) for path in INSTALLER.rglob("*.py")} - {"k8s_install"}
    assert on_disk <= set(imported) | {name for name in on_disk if name.endswith(".__main__")}


def test_no_installer_module_imports_a_builder_dependency_anywhere() -> None:
    """Imports inside functions run only on some paths: the source is the proof for them."""
    found = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in INSTALLER.rglob("*.py")
        for line, name in imported_names(path, INSTALLER.parent)
        if name.partition(".")[0] in BUILDER_ONLY
    ]
    assert found == []


def test_the_installers_parser_builds_without_jinja2() -> None:
    result = run_blocked(
        ("jinja2",) + BUILDER_ONLY,
        """
from k8s_install.main import build_parser
parser = build_parser()
for argv in (["status", "--json"], ["verify", "--jobs", "2"], ["plan", "--role", "worker"], ["config", "check"]):
    parser.parse_args(argv)
print("ok")
""",
    )
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_a_command_imports_only_its_own_module() -> None:
    """`verify` (run before every install by the playbooks) loads no step, template engine or registry client:
    main.py imports the module of the command that runs, not every command's."""
    result = run_blocked(
        ("jinja2", "k8s_install.steps", "k8s_install.images.registry_client") + BUILDER_ONLY,
        """
import sys
from k8s_install.main import main
sys.exit(main(["verify", "--bundle", "/nonexistent-bundle"]))
""",
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == "k8s-install.pyz: error: /nonexistent-bundle: no such bundle folder"


def test_every_command_has_a_handler() -> None:
    result = run_blocked(
        BUILDER_ONLY,
        """
from k8s_install.main import COMMAND_HELP, handler_for
missing = [name for name in [*COMMAND_HELP, "config"] if not callable(handler_for(name))]
print(missing, handler_for("no-such-command"))
""",
    )
    assert (result.returncode, result.stdout.strip()) == (0, "[] None"), result.stderr


def test_no_step_imports_a_command() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in sorted((INSTALLER / "steps").glob("*.py"))
        for line, name in imported_names(path, INSTALLER.parent)
        if name == "k8s_install.commands" or name.startswith("k8s_install.commands.")
    ]
    assert found == [], "a step reaches up into a command; move what it needs below both (node/, cluster/)"


def test_the_zipapp_entry_point_is_standard_library_only_and_unused_by_the_builder() -> None:
    entry = BUILDER / "pyz_main.py"
    outside = [
        name
        for _line, name in imported_names(entry, REPO)
        if name.partition(".")[0] not in sys.stdlib_module_names | FROM_THE_ZIPAPP
    ]
    assert outside == []
    users = [
        str(path.relative_to(REPO))
        for path in BUILDER.rglob("*.py")
        if any(name == "bundler.pyz_main" for _line, name in imported_names(path, REPO))
    ]
    assert users == []


def test_no_import_cycles() -> None:
    """Among the modules of both packages, imports inside functions included (a cycle there only waits for the
    call that closes it), imports for type checking only left out."""
    roots = {path: REPO for path in BUILDER.rglob("*.py")} | {
        path: INSTALLER.parent for path in INSTALLER.rglob("*.py")
    }
    modules = {module_name(path, root): (path, root) for path, root in roots.items()}

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {
        module: {known(name) for _line, name in imported_names(path, root, runtime_only=True)} - {"", module}
        for module, (path, root) in modules.items()
    }
    assert cycles(graph) == []


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_cycles_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("source,expected", [
    ("import k8s_install.commands.node", ["k8s_install.commands.node"]),
    ("from k8s_install.commands import node", ["k8s_install.commands", "k8s_install.commands.node"]),
    ("from ..commands.node import x", ["k8s_install.commands.node", "k8s_install.commands.node.x"]),
    ("def f():\n    from k8s_install import commands", ["k8s_install", "k8s_install.commands"]),
])  # fmt: skip
def test_imported_names_sees_every_form(tmp_path: Path, source: str, expected: List[str]) -> None:
    """The AST reader the rules rely on: absolute, from, relative, and imports inside functions."""
    path = tmp_path / "k8s_install" / "steps" / "example.py"
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n")
    assert [name for _line, name in imported_names(path, tmp_path)] == expected


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path, runtime_only: bool = False) -> Iterator[Tuple[int, str]]:
    """Every module name `path` may import, wherever the import statement is (top level or in a function):
    `from A import b` yields A and A.b, since b may be a submodule. `runtime_only` leaves out the imports
    under `if TYPE_CHECKING:`."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in statements(ast.parse(path.read_text(encoding="utf-8"), str(path)), runtime_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def statements(tree: ast.AST, runtime_only: bool) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if runtime_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        yield from statements(node, runtime_only)
