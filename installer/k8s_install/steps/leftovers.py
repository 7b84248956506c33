"""Temporary files a killed run left: every file is written to `.NAME.XXXXXXXX` beside it and renamed, so
a SIGKILL in between leaves that temporary behind. The run after it removes them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List

from k8s_install.engine import Change, Node, Step
from k8s_install.node.atomic import leftover_temporaries, temporaries_under
from k8s_install.node.host import Host
from k8s_install.node.state import BACKUP_DIR, STATE_FILE, State, ours_path_for


def written_paths(state: State) -> List[str]:
    """Every file the installer writes atomically: its managed files (recorded before they are written), the
    copies it keeps of them, and its state file."""
    paths = [STATE_FILE]
    for path, record in sorted(state.files().items()):
        paths.append(path)
        if record.get("backup"):
            paths.append(ours_path_for(path))
    return paths


def leftovers(host: Host, state: State) -> List[Path]:
    found: List[Path] = []
    for path in written_paths(state):
        found += leftover_temporaries(host.path(path))
    # a copy of an original is written before the file it keeps is recorded: the backups are all ours
    return found + [path for path in temporaries_under(host.path(BACKUP_DIR)) if path not in found]


class Leftovers(Step):
    name = "leftovers"
    title = "temporary files of an interrupted run"

    def plan(self, node: Node) -> List[Change]:
        return [Change(f"remove {on_node(node, path)}", _unlinker(path)) for path in leftovers(node.host, node.state)]


def on_node(node: Node, path: Path) -> str:
    return "/" + str(path.relative_to(node.host.root))


def _unlinker(path: Path) -> Callable[[], None]:
    return lambda: path.unlink()
