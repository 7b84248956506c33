"""Cluster templates render through the installer's one jinja2 environment (installer/k8s_install/render.py)."""

from __future__ import annotations

from typing import Any

from k8s_install import render as shared

MANAGED_BY = "managed by k8s-install: changes here are overwritten on the next run"


def render(template: str, **values: Any) -> str:
    return shared.render(template, managed_by=MANAGED_BY, **values)
