from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import yaml

from tests.support import session_cache
from tests.support.bundle_contract import check_built_bundles
from tests.support.faults import FAULT_CASES, totals
from tests.support.http_server import MirrorServer
from tests.support.rpm_graph import (  # noqa: F401  (session fixtures: real RPM repositories, signing keys)
    impostor,
    rpm_graph,
    signed_graph,
    signing_key,
)

pytest_plugins = ["tests.support.image_fixtures", "tests.support.cluster_files"]

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
LAB = Path(__file__).resolve().parent / "lab"

# Tiers (markers in pyproject.toml) to slice a run by: `lab` is tests/lab; `daemons` (starts real daemons) and
# `root` (network namespaces, mounts, chown, rpm --root) come from a test module's `pytestmark`, a test's own
# mark, or a fixture below that the test uses. `make test-fast` runs what has none of them.
DAEMON_FIXTURES = frozenset({"pushed_images", "registry_storage", "registry", "containerd"})
ROOT_FIXTURES = frozenset({"containerd"})
LAB_FIGURES = "lab figures (seconds)"  # a user property of the lab's reports (tests/lab/conftest.py)
LAB_TIMINGS: Dict[str, float] = {}
FAULT_LINES: List[str] = []  # one line per fault case injected (tests/support/faults.py)

# Commands the tests start by name (python -m bundler, ansible-playbook, ...) come from the environment that
# runs the tests (a venv under `make test`), not from whatever else is first on PATH.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

# Every Python the tests start (python -m bundler, the pyz under Python 3.9, ansible-playbook, the workers) keeps
# its compiled modules: a machine whose environment sets PYTHONDONTWRITEBYTECODE=1 (this project's CI machines
# do) otherwise makes each process compile the project's modules, and the pyz's, from source again. The clean
# run measured 2,104 CPU-seconds with it set and 2,044 without (docs/testing.md).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def find_python39() -> Optional[str]:
    """A Python 3.9 interpreter for running the zipapp as EL9 nodes do."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [os.environ.get("PYTHON39", "")]
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.9.*/bin/python3.9"))
    candidates += [shutil.which("python3.9") or ""]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    return None


@pytest.fixture
def python39() -> str:
    found = find_python39()
    if not found:
        pytest.skip("no Python 3.9 interpreter found (set PYTHON39 or install 3.9 with pyenv)")
    return found


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What the run builds once for every xdist worker (tests/support/session_cache.py) lives in the run's folder."""
    session_cache.FOLDER = session_cache.session_folder(tmp_path_factory.getbasetemp())


@pytest.fixture
def mirror() -> Iterator[MirrorServer]:
    server = MirrorServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_real_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never touch the user's download cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache-must-not-be-used"))
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)  # the tests' servers are on loopback: never through a proxy
    import bundler.cache

    monkeypatch.setattr(bundler.cache, "DEFAULT_CACHE", tmp_path / "default-cache-must-not-be-used")


class StandInRelease:
    """Generated stand-in artifacts served by the mirror, and a manifest naming them by upstream URL."""

    def __init__(self, mirror: MirrorServer, root: Path, sizes: Optional[Dict[str, int]] = None) -> None:
        self.mirror = mirror
        self.root = root
        self.sizes = sizes or {"containerd": 3_000_000, "runc": 120_000, "calico-manifest": 5_000}
        self.data: Dict[str, bytes] = {}
        files = []
        for name, size in self.sizes.items():
            noarch = name == "calico-manifest"
            entry: Dict[str, object] = {"name": name, "version": "1.0.0"}
            url_path = f"/releases/{name}/{name}-1.0.0-linux-{{arch}}.bin"
            entry["url"] = f"https://downloads.example.invalid{url_path}"
            sums = {}
            for arch in ("noarch",) if noarch else ("amd64", "arm64"):
                data = hashlib.sha512(f"{name}-{arch}".encode()).digest() * (size // 64 + 1)
                data = data[:size]
                concrete = url_path.replace("{arch}", arch)
                mirror.add(f"/downloads.example.invalid{concrete}", data)
                self.data[f"{name}-{arch}"] = data
                sums[arch] = hashlib.sha256(data).hexdigest()
            if noarch:
                entry["arch"] = "noarch"
                entry["url"] = entry["url"].replace("{arch}", "noarch")  # type: ignore[union-attr]
                entry["sha256"] = sums["noarch"]
            else:
                entry["sha256"] = sums
            files.append(entry)
        self.manifest = {
            "kubernetes": "1.29.6",
            "os": {"rocky9": {"rpms": True, "aliases": ["alma9"]}, "linux": {"rpms": False}},
            "arches": ["amd64", "arm64"],
            "files": files,
        }
        self.write()

    def set_images(self, images: List[str], calico_yaml: Optional[str] = None) -> Path:
        """Name container images in the manifest; `calico_yaml` replaces the calico-manifest stand-in and is
        read for more images through `images_from_files`."""
        self.manifest["images"] = list(images)
        if calico_yaml is not None:
            data = calico_yaml.encode()
            self.mirror.add(self.served_path("calico-manifest"), data)
            self.data["calico-manifest-noarch"] = data
            files: List[Dict[str, object]] = self.manifest["files"]  # type: ignore[assignment]
            for entry in files:
                if entry["name"] == "calico-manifest":
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
            self.manifest["images_from_files"] = ["calico-manifest"]
        return self.write()

    def write(self) -> Path:
        self.path = self.root / "release.yaml"
        self.path.write_text(yaml.safe_dump(self.manifest, sort_keys=False))
        return self.path

    def served_path(self, name: str, arch: str = "amd64") -> str:
        arch = "noarch" if name == "calico-manifest" else arch
        return f"/downloads.example.invalid/releases/{name}/{name}-1.0.0-linux-{arch}.bin"


@pytest.fixture
def release(mirror: MirrorServer, tmp_path: Path) -> StandInRelease:
    return StandInRelease(mirror, tmp_path)


def run_bundler(*args: str, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None):
    full_env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    full_env.update(env or {})
    result = subprocess.run(
        ["python", "-m", "bundler", *args], cwd=cwd or REPO, env=full_env, capture_output=True, text=True
    )
    if args[:1] == ("build",) and result.returncode == 0:
        check_built_bundles(args, cwd or REPO)  # every bundle a test builds keeps the published bundle.yaml contract
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under CI (CI=true) a skipped test is a failed one: a green CI run must mean every test ran.
    Expected failures (xfail) are not skips and stay as they are."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {reason}"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks (and -m the tiers)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Tier markers from the folder and the fixtures; under pytest-xdist, a module's tests stay together (its
    module fixtures are made once) and the lab in one worker (its nodes are shared session fixtures), but for a
    lab module that boots nodes of its own and says so with `pytestmark = pytest.mark.xdist_group(NAME)`."""
    parallel = config.pluginmanager.hasplugin("xdist")
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        in_lab = LAB in item.path.parents
        if in_lab:
            item.add_marker(pytest.mark.lab)
        if in_lab or fixtures & DAEMON_FIXTURES:
            item.add_marker(pytest.mark.daemons)
        if in_lab or fixtures & ROOT_FIXTURES:
            item.add_marker(pytest.mark.root)
        if parallel and not item.get_closest_marker("xdist_group"):  # a lab module may name a group of its own
            item.add_marker(pytest.mark.xdist_group("lab" if in_lab else item.path.stem))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """`--dist loadgroup` hands out the longest groups first (tests/support/scheduling.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.support.scheduling import LongestFirst

    return LongestFirst(config, log)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the lab's figures (tests/lab/conftest.py), which arrive with the reports (from a worker or not)."""
    for name, value in report.user_properties:
        if name == LAB_FIGURES:
            LAB_TIMINGS.update(value)  # type: ignore[arg-type]
        if name == FAULT_CASES and report.when == "call":
            FAULT_LINES.append(str(value))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if FAULT_LINES:
        terminalreporter.write_sep("-", FAULT_CASES)
        for line in sorted(FAULT_LINES):
            terminalreporter.write_line(line)
        terminalreporter.write_line(totals(FAULT_LINES))
    if LAB_TIMINGS:
        terminalreporter.write_sep("-", LAB_FIGURES)
        for what, seconds in LAB_TIMINGS.items():
            terminalreporter.write_line(f"{what:40s} {seconds:7.1f}")
