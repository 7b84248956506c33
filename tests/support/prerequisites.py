"""Tests that drive real tools skip without them, except under CI=true, where a missing one fails."""

from __future__ import annotations

import os
import shutil

import pytest


def require(*tools: str) -> None:
    """Skip when a tool (or root) is missing; under CI=true a missing prerequisite fails instead."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"missing prerequisite(s): {', '.join(missing)}")
    pytest.skip(f"missing prerequisite(s): {', '.join(missing)}")
