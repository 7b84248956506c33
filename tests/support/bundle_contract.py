"""Every bundle.yaml the tests build against the published contract: schemas/bundle.v1.schema.json and the
typed model (k8s_install/bundle_format/model.py), which must read it and write back the very same bytes."""

from __future__ import annotations

import json
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Sequence

import jsonschema

from k8s_install.bundle_format.layout import MANIFEST_NAME
from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.yaml_loader import load_yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "bundle.v1.schema.json"


@lru_cache(maxsize=1)
def bundle_schema() -> Dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def check_bundle_yaml(text: str, where: str) -> BundleManifest:
    """Valid against the schema, and read then written by the model byte for byte."""
    jsonschema.validate(load_yaml(text), bundle_schema())
    manifest = BundleManifest.from_yaml(text, where)
    assert manifest.to_yaml() == text, f"{where}: the model does not write back the builder's bundle.yaml"
    return manifest


def check_built_bundles(args: Sequence[str], cwd: Path) -> None:
    """After a successful `bundler build ... --output DIR`: every tarball in DIR holds a bundle.yaml that keeps
    the contract (a build without --output writes into the current folder, which is not looked at)."""
    if "--output" not in args or "--dry-run" in args:
        return
    output = cwd / args[list(args).index("--output") + 1]
    for tarball in sorted(output.glob("*.tar")):
        with tarfile.open(tarball) as archive:
            for member in archive:
                if member.isfile() and member.name.count("/") == 1 and member.name.endswith(f"/{MANIFEST_NAME}"):
                    stream = archive.extractfile(member)
                    assert stream is not None
                    check_bundle_yaml(stream.read().decode("utf-8"), f"{tarball}:{member.name}")
