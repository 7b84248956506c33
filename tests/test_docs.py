"""The README is the front door: its links lead somewhere, every docs/ page is reachable from it, and its
"first ten minutes" work when followed in order (issue 20, item 6).

The first-ten-minutes test runs the README's own command lines, as written, in a temporary folder. Only the
build's source changes: `--k8s 1.29.6` would download the real release, which cannot be done here, so it
builds from the test's stand-in mirror of the same version (`--manifest`, `--mirror`; the stand-in release
holds a few files only, hence `--allow-incomplete`). The install lines need a node: `make demo` and
tests/test_demo.py run them; here they are parsed by the installer's own argument parser.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from tests.conftest import REPO, StandInRelease

README = REPO / "README.md"
DOCS = REPO / "docs"
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FIRST_TEN_MINUTES = "The first ten minutes"


def markdown_files() -> List[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield re.sub(r"`[^`]*`", "", line)


def anchors(path: Path) -> List[str]:
    """GitHub's anchors for the headings of a Markdown file (lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered)."""
    found: List[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"#{1,6} (.*)", line)
        if fenced or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = sum(1 for anchor in found if re.fullmatch(re.escape(slug) + r"(-\d+)?", anchor))
        found.append(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> List[str]:
    links = []
    for line in prose(path.read_text(encoding="utf-8")):
        links += [target for target in LINK.findall(line) if not re.match(r"[a-z]+:", target)]
    return links


def test_every_relative_link_in_the_readme_and_docs_points_to_a_file_and_anchor_that_exist() -> None:
    broken = []
    checked = 0
    for source in markdown_files():
        for link in relative_links(source):
            checked += 1
            target, _, anchor = link.partition("#")
            resolved = (source.parent / target).resolve() if target else source
            where = f"{source.relative_to(REPO)}: {link}"
            if not resolved.exists():
                broken.append(f"{where} (no file {target})")
            elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
                broken.append(f"{where} (no heading #{anchor} in {resolved.relative_to(REPO)})")
    assert checked > 20 and not broken, "\n".join(broken)


def test_the_link_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n## Upgrade order\n\nSee [x](other.md), [y](#upgrade-order), [z](#nope).\n"
        "```sh\n[not a link](nowhere.md)\n```\n`[code](nowhere.md)` and [web](https://example.org).\n"
    )
    assert relative_links(page) == ["other.md", "#upgrade-order", "#nope"]
    assert anchors(page) == ["a-page", "upgrade-order"]
    assert anchors(REPO / "docs" / "json-output.md")[0] == "machine-readable-output---json"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README)}
    unlinked = [page.name for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked]
    assert DOCS.is_dir() and not unlinked, f"docs pages the README does not link: {unlinked}"


def test_the_readme_keeps_the_set_up_and_test_commands_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line for line in ci.splitlines() if not line.strip().startswith("#")]
    targets = [target for line in lines for target in re.findall(r"(?:^|\s)make ([a-z-]+)", line)]
    assert targets == ["dev", "test"]  # make dev runs in the background beside apt-get, then make test
    blocks = "\n".join(code_blocks(section(README.read_text(encoding="utf-8"), "Test")))
    assert re.search(r"^make dev\b", blocks, re.M) and re.search(r"^make test\b", blocks, re.M)


def test_the_docs_carry_no_seed_guide_wording() -> None:
    for page in markdown_files():
        assert "seed" not in page.read_text(encoding="utf-8").lower(), page.name


def section(text: str, title: str) -> str:
    """The body of the `## title` section."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"README.md has no section '## {title}'"
    return found.group(1)


def code_blocks(text: str) -> List[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


def commands_of(block: str) -> List[List[str]]:
    """Each command line of a shell block as words, comments dropped; `a && b` as two commands."""
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        while "&&" in words:
            cut = words.index("&&")
            commands.append(words[:cut])
            words = words[cut + 1 :]
        if words:
            commands.append(words)
    return commands


def stand_in_build(words: List[str], release: StandInRelease, cache: Path) -> List[str]:
    """The README's `bundler build --k8s VERSION ...` with the stand-in release of that version as its source."""
    at = words.index("--k8s")
    assert words[at + 1] == release.manifest["kubernetes"], "the README builds another version than the stand-in"
    source = ["--manifest", str(release.path), "--mirror", release.mirror.url, "--cache", str(cache)]
    return words[:at] + source + words[at + 2 :] + ["--allow-incomplete"]


def run(words: List[str], cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{shlex.join(words)} (in {cwd}):\n{result.stdout}{result.stderr}"
    return result


def test_the_first_ten_minutes_work_as_written(release: StandInRelease, python39: str, tmp_path: Path) -> None:
    connected, node = code_blocks(section(README.read_text(encoding="utf-8"), FIRST_TEN_MINUTES))
    here, air_gap = tmp_path / "connected", tmp_path / "node"
    here.mkdir()
    air_gap.mkdir()
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", SHIV_ROOT=str(tmp_path / "shiv"),
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "installer")]))  # fmt: skip
    bundler = [sys.executable, "-m", "bundler"]
    ran: List[str] = []
    sums_printed: Optional[re.Match] = None
    for words in commands_of(connected):
        if words[0] == "$EDITOR":
            continue  # the file cluster init writes is a valid example as it stands (cluster check below)
        assert words[0] == "bundler", words
        if words[1] == "build":
            words = stand_in_build(words, release, tmp_path / "cache")
        result = run(bundler + words[1:], here, env)
        ran.append(" ".join(words[:3]))
        sums_printed = re.search(r"SHA256SUMS sha256: ([0-9a-f]{64})", result.stderr + result.stdout) or sums_printed
    assert ran == ["bundler cluster init", "bundler cluster check", "bundler build --manifest"]
    assert sums_printed is not None, "the build did not print the sha256 of SHA256SUMS"

    tarballs = list((here / "out").glob("*.tar"))
    assert len(tarballs) == 1
    shutil.copy(tarballs[0], air_gap)  # carried
    cwd = air_gap
    installs: List[Tuple[str, List[str]]] = []
    for words in commands_of(node):
        if words[0] == "cd":
            cwd = cwd / words[1]
        elif words[0] == "./k8s-install.pyz" and words[1] != "verify":
            installs.append((str(cwd), words[1:]))
        else:
            command = [python39, *words] if words[0] == "./k8s-install.pyz" else words
            result = run(command, cwd, env)
            if words[0] == "sha256sum":
                assert result.stdout.split()[0] == sums_printed.group(1)
                assert hashlib.sha256((cwd / "SHA256SUMS").read_bytes()).hexdigest() == sums_printed.group(1)
    packed = (cwd / "cluster.yaml").read_text(encoding="utf-8")
    assert packed == (here / "mycluster" / "cluster.yaml").read_text(encoding="utf-8")

    from k8s_install.main import build_parser

    secrets_files = set()
    for _, words in installs:
        parsed = build_parser().parse_args(words)  # exits (status 2) on an option the installer does not have
        secrets_files.add(Path(parsed.secrets).name)
    roles = [(words[0] if words[0] == "plan" else "install", words[words.index("--role") + 1]) for _, words in installs]
    assert roles == [("plan", "control-plane"), ("install", "control-plane"), ("install", "control-plane"),
                     ("install", "worker")]  # fmt: skip
    written = {path.name for path in (here / "mycluster").iterdir()}
    assert secrets_files == {"cluster-secrets.yaml", "cluster-secrets-worker.yaml"} <= written


def test_cluster_init_for_the_readme_version_passes_cluster_check(tmp_path: Path) -> None:
    """The file `cluster init --k8s 1.29.6` writes is accepted by `cluster check` as it stands, whatever
    the default version of `cluster init` is."""
    version = "1.29.6"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "installer")]))
    bundler = [sys.executable, "-m", "bundler"]
    run(bundler + ["cluster", "init", "--dir", "site", "--k8s", version], tmp_path, env)
    checked = run(bundler + ["cluster", "check", "site/cluster.yaml", "--k8s", version, "--secrets",
                             "site/cluster-secrets.yaml"], tmp_path, env)  # fmt: skip
    assert "Traceback" not in checked.stderr
    assert f"kubernetes_version: {version}" in (tmp_path / "site" / "cluster.yaml").read_text(encoding="utf-8")
