"""apt-get with a private configuration: its own sources, lists, cache and dpkg status under one folder, the
target's architecture, and nothing read from the builder's /etc/apt or /var/lib/dpkg.

apt never fetches from the internet here. For the upstream repositories the builder fetches and verifies
everything itself (InRelease against the pinned key with gpgv, each index against the Release's sha256) and
puts it into the private lists folder as `apt-get update` would (`add_verified_source`); the bundle's own
repository is a local folder that `apt-get update` reads with signature checking on (bundler/deb/proof.py).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from bundler.errors import BundlerError

PROGRAMS = ("apt-get",)
# Inst NAME [OLD] (VERSION ORIGINS [ARCH]) / Remv NAME [OLD]
_ACTION = re.compile(r"^(Inst|Remv) (\S+)(?: \[(\S+)\])?(?: \((\S+) (.*?) ?\[(\S+)\]\))?")


@dataclass(frozen=True)
class Action:
    kind: str  # "Inst" or "Remv"
    name: str
    version: str  # the version installed by Inst; the removed one for Remv
    arch: str
    replaces: Optional[str] = None  # the version an Inst upgrades


def parse_actions(output: str) -> List[Action]:
    actions = []
    for line in output.splitlines():
        match = _ACTION.match(line)
        if not match:
            continue
        kind, name, old, version, _, arch = match.groups()
        name = name.split(":", 1)[0]
        if kind == "Inst":
            actions.append(Action(kind, name, version or "", arch or "", old))
        else:
            actions.append(Action(kind, name, old or "", arch or ""))
    return actions


def problem_lines(output: str) -> str:
    """apt's own explanation, on one line: its E:/W: lines and the unmet dependencies it lists."""
    kept = []
    for line in output.splitlines():
        text = line.strip()
        if text.startswith(("E:", "W:")) or "Depends:" in text or "Conflicts:" in text or "Breaks:" in text:
            kept.append(" ".join(text.split()))
        elif text.startswith(("but ", "or ")) and kept:
            kept[-1] += " " + " ".join(text.split())
    if kept:
        return "; ".join(kept)
    lines = output.strip().splitlines()
    return lines[-1] if lines else "no output"


_QUOTED = set('\\|{}[]<>"^~_=!@#$%&*')


def list_file_name(path: str) -> str:
    """apt's URItoFileName for a local path: unsafe characters as %xx, then every / as _."""
    quoted = "".join(f"%{ord(c):02x}" if c in _QUOTED or ord(c) <= 0x20 or ord(c) >= 0x7F else c for c in path)
    return quoted.replace("/", "_")


class PrivateApt:
    """One apt configuration rooted at `root`; `arch` is the target's Debian architecture."""

    def __init__(self, root: Path, arch: str, install_recommends: bool = False) -> None:
        if shutil.which("apt-get") is None:
            raise BundlerError(
                "resolving Debian/Ubuntu packages needs apt-get: build Debian and Ubuntu targets on a Debian or Ubuntu "
                "machine (see the README's table of builders and targets)"
            )
        self.root = root
        self.arch = arch
        for folder in ("etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "etc/trusted.gpg.d",
                       "state/lists/partial", "cache/archives/partial", "log", "keys"):  # fmt: skip
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.status = root / "status"
        self.status.touch()
        (root / "etc/sources.list").write_text("")
        self.config = root / "apt.conf"
        settings = {
            "Dir": f"{root}/",
            "Dir::State": f"{root}/state",
            "Dir::State::status": str(self.status),
            "Dir::Cache": f"{root}/cache",
            "Dir::Etc": f"{root}/etc",
            "Dir::Etc::main": str(self.config),
            "Dir::Log": f"{root}/log",
            "APT::Architecture": arch,
            "APT::Install-Recommends": "true" if install_recommends else "false",
            "APT::Install-Suggests": "false",
            "APT::Get::List-Cleanup": "false",
            "Acquire::Languages": "none",
            "Acquire::By-Hash": "no",
            "Acquire::AllowInsecureRepositories": "false",
            "Debug::NoLocking": "true",
            # apt's fetchers run as this user, not _apt, which cannot read the private folders; what they read
            # was verified by the builder already (signature and sums)
            "APT::Sandbox::User": pwd.getpwuid(os.getuid()).pw_name,
        }
        lines = [f'{key} "{value}";' for key, value in settings.items()]
        lines.append(f'APT::Architectures {{ "{arch}"; }};')
        self.config.write_text("\n".join(lines) + "\n")

    def add_source(self, name: str, path: Path, suite: str, components: Sequence[str], key: Path) -> None:
        """A local copy of a repository at `path`, trusted only through `key` (signed-by)."""
        kept = self.root / "keys" / (name + (".asc" if key.read_bytes().lstrip().startswith(b"-----BEGIN") else ".gpg"))
        shutil.copyfile(key, kept)
        line = f"deb [signed-by={kept} arch={self.arch}] file:{path}/ {suite} {' '.join(components)}".rstrip()
        with open(self.root / "etc/sources.list", "a") as sources:
            sources.write(line + "\n")

    def add_verified_source(
        self, name: str, uri: str, suite: str, components: Sequence[str], key: Path, lists: Sequence[Tuple[str, bytes]]
    ) -> None:
        """A repository whose InRelease and indexes the builder has verified already, put straight into apt's
        lists folder under the names `apt-get update` would give them (`lists`: path under the repository's
        URI -> content, InRelease included, indexes uncompressed); apt counts a source trusted when its
        InRelease is there."""
        self.add_source(name, Path(uri), suite, components, key)
        prefix = list_file_name(f"{uri}/")
        for path, data in lists:
            (self.root / "state/lists" / (prefix + path.replace("/", "_"))).write_bytes(data)

    def write_status(self, stanzas: Iterable[str]) -> None:
        self.status.write_text("\n".join(stanzas))

    def run(self, *args: str, what: str) -> str:
        env = dict(os.environ, APT_CONFIG=str(self.config), LC_ALL="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
        result = subprocess.run(["apt-get", "-q", *args], capture_output=True, text=True, env=env)
        output = result.stdout + result.stderr
        if result.returncode != 0 or any(line.startswith(("E:", "W:")) for line in output.splitlines()):
            raise BundlerError(f"{what}: apt-get {args[0]} failed: {problem_lines(output)}")
        return output

    def update(self, what: str) -> None:
        self.run("update", what=what)

    def simulate(self, requests: Sequence[str], what: str) -> List[Action]:
        """What `apt-get install REQUESTS` would do on this configuration's dpkg status, without doing it."""
        return parse_actions(self.run("--simulate", "install", *requests, what=what))

    def download(self, requests: Sequence[str], folder: Path, what: str) -> None:
        """apt-get install --download-only into `folder`: apt checks every .deb against its index's sums."""
        (folder / "partial").mkdir(parents=True, exist_ok=True)
        self.run("--download-only", "--yes", "-o", f"Dir::Cache::archives={folder}/", "install", *requests, what=what)
