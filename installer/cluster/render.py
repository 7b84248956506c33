"""The jinja2 environment for installer/templates (shiv unpacks the pyz, so the files are on disk)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

MANAGED_BY = "managed by k8s-install: changes here are overwritten on the next run"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("installer", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(managed_by=MANAGED_BY, **values)
