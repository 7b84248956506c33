"""Machine-readable output (`--json`) shared by both tools: one JSON document on stdout per command.

Every document starts with `schema` (the version of its layout, raised only when a field is removed or
changes meaning; new fields may appear without a raise) and `command` (what produced it). The fields of
each command are listed in README.md ("Machine-readable output"). Human text goes to stderr while a
command writes JSON, so stdout holds exactly one document.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Dict, Iterator

from k8s_install.bundle_format.verify import VerifyResult

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
    """The `verify` document of both tools (a failed verification is an error: exit 1, no document)."""
    return {"bundle": bundle, "ok": True, "files": result.files, "bytes": result.bytes,
            "sha256sums_sha256": result.sums_sha256, "signature": result.signature,
            "incomplete": list(result.incomplete)}  # fmt: skip
