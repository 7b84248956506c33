"""One installer run at a time on a node: the commands that change it hold an exclusive lock on
/var/lib/k8s-install/run.lock (under --root, in the image) for the whole run.

The lock is `flock` on an open file: the kernel drops it when the holder exits, however it exits (a crash,
SIGKILL, a power cut), so a lock is never left stale and nobody has to remove a file by hand. The holder
writes its PID, command and start time into the file, only so that a second run can say who holds it.
A second run refuses at once with one line naming the holder, or with `--wait` waits for it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
from pathlib import Path
from typing import Callable, Iterator, List

from k8s_install.errors import InstallError
from k8s_install.node.host import STATE_DIR, Host

LOCK_FILE = f"{STATE_DIR}/run.lock"


def holder_of(descriptor: int) -> str:
    """Who holds the lock, as its holder wrote it ("PID 123, `install`, since 09:41:02 UTC")."""
    try:
        text = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if "pid" not in fields:
        return "a run that has not written its PID yet"
    return f"PID {fields['pid']}, `{fields.get('command', '?')}`, since {fields.get('since', '?')}"


@contextlib.contextmanager
def run_lock(host: Host, command: str, wait: bool = False, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the node's run lock while the block runs; refuse (or with `wait`, wait) while another run holds it.

    On a node the installer has never changed, the folders the lock needed are removed again when the run
    leaves nothing else in them: a run refused before any change (a bad bundle) changes nothing, not even that."""
    path = host.path(LOCK_FILE)
    created = missing_folders(path.parent)
    descriptor = locked_descriptor(path, command, wait, say)
    try:
        yield
    finally:
        os.ftruncate(descriptor, 0)  # no holder named once it is done (a crash leaves it: harmless)
        if created:
            remove_if_alone(path, created)  # still holding the lock: a waiter finds the file gone and retries
        os.close(descriptor)  # closing the last descriptor drops the lock


def missing_folders(folder: Path) -> List[Path]:
    """The folders from `folder` up that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_if_alone(path: Path, created: List[Path]) -> None:
    """Remove the lock file and the folders this run made for it, unless the run put something else there."""
    try:
        if [entry.name for entry in path.parent.iterdir()] != [path.name]:
            return
        path.unlink()
        for folder in created:
            folder.rmdir()
    except OSError:
        pass  # another run's files arrived meanwhile: they stay


def locked_descriptor(path: Path, command: str, wait: bool, say: Callable[[str], None]) -> int:
    """An open descriptor of the lock file, locked, with this run recorded as its holder."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(str(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise InstallError(f"{path}: cannot open the installer's run lock: {error.strerror}") from None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = holder_of(descriptor)
                if not wait:
                    raise InstallError(
                        f"another k8s-install run is changing this node ({holder}; lock {LOCK_FILE}): let it "
                        "finish and run again, or add --wait to wait for it; nothing was changed"
                    ) from None
                say(f"waiting for the other k8s-install run ({holder}) to finish...")
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            if not same_file(descriptor, path):  # the holder removed it on its way out: lock the new one
                os.close(descriptor)
                continue
        except BaseException:
            os.close(descriptor)
            raise
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = f"pid={os.getpid()} command={command.replace(' ', '-')} since={since}\n".encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record, 0)
        return descriptor


def same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.fstat(descriptor).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
