"""The unpacked bundle as the installer sees it: its folder and what bundle.yaml says is inside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import yaml

from k8s_install.bundle_format.layout import INSTALLER_NAME, MANIFEST_NAME
from k8s_install.bundle_format.shape import check_manifest_shape, incomplete_parts, load_manifest_yaml
from k8s_install.errors import InstallError, yaml_problem


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Dict[str, Any]

    @property
    def kubernetes(self) -> str:
        return str(self.manifest.get("kubernetes", ""))

    @property
    def incomplete(self) -> List[str]:
        return incomplete_parts(self.manifest)

    @property
    def arch(self) -> str:
        return str(self.manifest.get("arch", ""))

    @property
    def os_ids(self) -> List[str]:
        return [str(self.manifest.get("os", ""))] + [str(a) for a in self.manifest.get("os_aliases") or []]

    def artifact(self, name: str) -> Path:
        for entry in self.manifest.get("artifacts") or []:
            if entry.get("name") == name:
                return self.root / str(entry["path"])
        raise InstallError(f"{self.root / MANIFEST_NAME}: the bundle has no artifact {name!r}; rebuild it")

    def has_artifact(self, name: str) -> bool:
        return any(entry.get("name") == name for entry in self.manifest.get("artifacts") or [])

    def images(self) -> List[Dict[str, Any]]:
        return list(self.manifest.get("images") or [])

    def image_names(self) -> List[str]:
        return [str(image["name"]) for image in self.images()]

    def pause_image(self) -> str:
        for name in self.image_names():
            if name.rsplit(":", 1)[0].endswith("/pause"):
                return name
        return "registry.k8s.io/pause:3.9"


def load_bundle(root: Path) -> Bundle:
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise InstallError(
            f"{root}: no {MANIFEST_NAME}; run {INSTALLER_NAME} from the unpacked bundle folder or pass --bundle DIR"
        )
    try:
        manifest = load_manifest_yaml(path.read_bytes())
    except OSError as error:
        raise InstallError(f"{path}: cannot read: {error.strerror}; is --bundle the unpacked bundle folder?") from None
    except yaml.YAMLError as error:
        raise InstallError(f"{path}: not valid YAML ({yaml_problem(error)}); re-copy the bundle") from None
    return Bundle(root, check_manifest_shape(manifest, str(root)))
