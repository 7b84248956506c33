"""Machine-readable output (`--json`) shared by both tools: one JSON document on stdout per command.

Every document starts with `schema` (the version of its layout, raised only when a field is removed or
changes meaning; new fields may appear without a raise) and `command` (what produced it). The fields of
each command are listed in docs/json-output.md. Human text goes to stderr while a
command writes JSON, so stdout holds exactly one document.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Dict, Iterator

from k8s_install.bundle_format.verify import VerificationFailed, VerifyResult, without_where
from k8s_install.errors import InstallError

SCHEMA_VERSION = 1


def document(command: str, body: Dict[str, Any]) -> Dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "command": command, **body}


def emit(command: str, body: Dict[str, Any]) -> None:
    json.dump(document(command, body), sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


@contextlib.contextmanager
def text_to_stderr(active: bool) -> Iterator[None]:
    """While a command builds its JSON document, keep its human text off stdout."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def verify_body(bundle: str, result: VerifyResult) -> Dict[str, Any]:
    """The `verify` document of both tools for a bundle that checks out."""
    return {"bundle": bundle, "ok": True, "files": result.files, "bytes": result.bytes,
            "sha256sums_sha256": result.sums_sha256, "signature": result.signature,
            "incomplete": list(result.incomplete)}  # fmt: skip


def verify_failed(bundle: str, error: InstallError, as_json: bool) -> InstallError:
    """A verification that failed, reported as `verify` of both tools does, like `sha256sum -c`: every
    problem on stdout (with --json, the document with `ok: false` and `problems`), then the one-line error
    this returns, for the caller to raise (exit 1)."""
    if isinstance(error, VerificationFailed):
        problems, line = error.problems, error.summary()
    else:  # found before the files were compared (no SHA256SUMS, a bad signature, an escaping path): one
        problems, line = [without_where(str(error), bundle)], str(error)
    if as_json:
        emit("verify", {"bundle": bundle, "ok": False, "problems": problems})
    elif isinstance(error, VerificationFailed):
        print("\n".join(problems), flush=True)
    return InstallError(line)
