"""Real .debs and apt repositories for tests: each package built by dpkg-deb (a data file, its control
fields), indexed by apt-ftparchive, InRelease clearsigned with a throwaway key, served by the loopback
MirrorServer; and a throw-away root that apt installs into with dpkg --root (the test packages have no
maintainer scripts, so nothing runs on the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tests.support.http_server import MirrorServer
from tests.support.signing import SigningKey

TOOLS = ("dpkg-deb", "apt-ftparchive", "apt-get", "dpkg", "gpg", "gpgv")


def missing_tools() -> List[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True)
class FakeDeb:
    name: str
    version: str
    arch: str = "all"
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    conflicts: str = ""
    breaks: str = ""
    essential: bool = False
    priority: str = "optional"
    files: Tuple[Tuple[str, str], ...] = ()  # (absolute path, text) installed besides the marker; /usr/bin/* executable

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.split(':')[-1]}_{self.arch}.deb"

    def control(self) -> str:
        fields = [("Package", self.name), ("Version", self.version), ("Architecture", self.arch),
                  ("Maintainer", "test <test@example.invalid>"), ("Priority", self.priority),
                  ("Essential", "yes" if self.essential else ""), ("Depends", self.depends),
                  ("Pre-Depends", self.pre_depends), ("Provides", self.provides), ("Conflicts", self.conflicts),
                  ("Breaks", self.breaks), ("Description", "test package")]  # fmt: skip
        return "".join(f"{key}: {value}\n" for key, value in fields if value)


def build_debs(debs: Sequence[FakeDeb], out: Path) -> Dict[str, Path]:
    """filename -> built .deb, each holding /usr/share/fake-debs/<name> with its version."""
    out.mkdir(parents=True, exist_ok=True)
    built = {}
    for deb in debs:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            (root / "DEBIAN").mkdir()
            (root / "DEBIAN/control").write_text(deb.control())
            data = root / "usr/share/fake-debs" / deb.name
            data.parent.mkdir(parents=True)
            data.write_text(f"{deb.name} {deb.version}\n")
            for path, text in deb.files:
                extra = root / path.lstrip("/")
                extra.parent.mkdir(parents=True, exist_ok=True)
                extra.write_text(text)
                extra.chmod(0o755 if "/bin/" in path else 0o644)
            target = out / deb.filename
            subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(target)],
                           check=True, capture_output=True)  # fmt: skip
            built[deb.filename] = target
    return built


def _ftparchive(*args: str, cwd: Path) -> bytes:
    return subprocess.run(["apt-ftparchive", *args], cwd=cwd, check=True, capture_output=True).stdout


def _arch_of(stanza: str) -> str:
    return next((line.split(":", 1)[1].strip() for line in stanza.splitlines() if line.startswith("Architecture:")), "")


@dataclass
class AptRepo:
    """A repository's files by their path under its URL; `url` once served."""

    files: Dict[str, bytes]
    suite: str
    components: Tuple[str, ...]
    key: SigningKey
    url: str = ""


def make_repository(
    debs: Sequence[FakeDeb], key: SigningKey, suite: str = "stable", component: str = "main",
    arches: Sequence[str] = ("amd64", "arm64"), valid_until: Optional[str] = None,
) -> AptRepo:  # fmt: skip
    """A Debian-layout repository (dists/SUITE/COMPONENT/binary-ARCH, pool/), or a flat one for suite "/"."""
    flat = suite.endswith("/")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pool = root / ("" if flat else "pool")
        build_debs(debs, pool)
        dist = root if flat else root / "dists" / suite
        for arch in arches if not flat else ("",):
            index = dist if flat else dist / component / f"binary-{arch}"
            index.mkdir(parents=True, exist_ok=True)
            scanned = _ftparchive("packages", "." if flat else "pool", cwd=root).decode()
            stanzas = [s for s in scanned.split("\n\n") if s.strip()]
            kept = [s for s in stanzas if flat or _arch_of(s) in (arch, "all")]
            text = ("\n\n".join(k.strip("\n") for k in kept) + "\n").replace("Filename: ./", "Filename: ")
            (index / "Packages").write_text(text)
            subprocess.run(["gzip", "-kn9", str(index / "Packages")], check=True)
        options = ["-o", f"APT::FTPArchive::Release::Architectures={' '.join(arches)}"]
        if not flat:
            for field, value in (("Suite", suite), ("Codename", suite), ("Components", component)):
                options += ["-o", f"APT::FTPArchive::Release::{field}={value}"]
        release = _ftparchive(*options, "release", ".", cwd=dist)
        if valid_until:
            release = release.replace(b"Date:", f"Valid-Until: {valid_until}\nDate:".encode(), 1)
        (dist / "InRelease").write_bytes(key.clearsign(release))
        files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return AptRepo(files, suite, () if flat else (component,), key)


def serve(server: MirrorServer, repo: AptRepo, prefix: str) -> AptRepo:
    for path, data in repo.files.items():
        server.add(f"/{prefix}/{path}", data)
    server.add(f"/{prefix}/key.asc", repo.key.public)
    repo.url = f"{server.url}/{prefix}/"
    return repo


class ThrowawayRoot:
    """An empty root with a dpkg database; apt installs into it with dpkg --root from the given sources."""

    def __init__(self, folder: Path, arch: str, status: str = "") -> None:
        self.root = folder / "root"
        self.apt = folder / "apt"
        for path in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log"):
            (self.root / path).mkdir(parents=True, exist_ok=True)
        (self.root / "var/lib/dpkg/status").write_text(status)
        (self.root / "var/lib/dpkg/available").write_text("")
        for path in ("etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "state/lists/partial",
                     "cache/archives/partial"):  # fmt: skip
            (self.apt / path).mkdir(parents=True, exist_ok=True)
        self.sources = self.apt / "etc/sources.list"
        self.sources.write_text("")
        self.config = self.apt / "apt.conf"
        self.config.write_text(
            f'Dir "{self.apt}/"; Dir::State "{self.apt}/state"; Dir::Cache "{self.apt}/cache"; '
            f'Dir::Etc "{self.apt}/etc"; Dir::Etc::main "{self.config}"; Dir::Log "{self.root}/var/log";\n'
            f'Dir::State::status "{self.root}/var/lib/dpkg/status"; APT::Architecture "{arch}";\n'
            f'APT::Architectures {{ "{arch}"; }}; APT::Install-Recommends "false"; Acquire::Languages "none";\n'
            f'DPkg::Options {{ "--root={self.root}"; "--force-script-chrootless"; }}; Dpkg::Use-Pty "false";\n'
            'Debug::NoLocking "true"; APT::Sandbox::User "root";\n'
        )

    def add_source(self, line: str) -> None:
        with open(self.sources, "a") as sources:
            sources.write(line + "\n")

    def apt_get(self, *args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, APT_CONFIG=str(self.config), LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
        return subprocess.run(["apt-get", "-q", *args], capture_output=True, text=True, env=env)

    def installed(self) -> Dict[str, str]:
        """name -> version of every package dpkg's status says is installed."""
        found = {}
        for stanza in (self.root / "var/lib/dpkg/status").read_text().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
            if fields.get("Status") == "install ok installed":
                found[fields["Package"]] = fields["Version"]
        return found
