"""The shape of bundle.yaml as plain values, for callers that still hold a mapping.

The checks live with the typed model (bundle_format/model.py: `BundleManifest.from_mapping`); this module
keeps the two mapping-level entry points for code that has not moved to the types yet.
"""

from __future__ import annotations

from typing import Any, Dict

from k8s_install.bundle_format.model import BundleManifest
from k8s_install.bundle_format.yaml_loader import NoAliasDumper, load_yaml

__all__ = ["NoAliasDumper", "check_manifest_shape", "load_manifest_yaml"]


def load_manifest_yaml(data: bytes) -> Any:
    """bundle.yaml's text as Python values; raises yaml.YAMLError (an alias included)."""
    return load_yaml(data)


def check_manifest_shape(manifest: Any, where: str) -> Dict[str, Any]:
    """Return bundle.yaml's mapping, or raise one line naming the field that has the wrong shape."""
    BundleManifest.from_mapping(manifest, where)
    assert isinstance(manifest, dict)
    return manifest
