"""The unpacked bundle as the installer sees it: its folder and what bundle.yaml says is inside, typed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import yaml

from k8s_install.bundle_format.layout import INSTALLER_NAME, MANIFEST_NAME
from k8s_install.bundle_format.model import ArtifactFile, BundleManifest, Image
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import InstallError, yaml_problem

DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.9"


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: BundleManifest

    @property
    def kubernetes(self) -> str:
        return self.manifest.kubernetes

    @property
    def incomplete(self) -> List[str]:
        return list(self.manifest.incomplete)

    @property
    def arch(self) -> str:
        return self.manifest.arch

    @property
    def os_ids(self) -> List[str]:
        return self.manifest.os_ids

    def _artifact_entry(self, name: str) -> ArtifactFile:
        entry = self.manifest.artifact(name)
        if entry is None:
            raise InstallError(f"{self.root / MANIFEST_NAME}: the bundle has no artifact {name!r}; rebuild it")
        return entry

    def artifact(self, name: str) -> Path:
        return self.root / self._artifact_entry(name).path

    def artifact_sha256(self, name: str) -> str:
        """The artifact's sha256 as bundle.yaml records it (SHA256SUMS, which the run verified, says the same)."""
        return self._artifact_entry(name).sha256

    def has_artifact(self, name: str) -> bool:
        return self.manifest.artifact(name) is not None

    def images(self) -> Tuple[Image, ...]:
        return self.manifest.images

    def image_names(self) -> List[str]:
        return [image.name for image in self.manifest.images]

    def pause_image(self) -> str:
        for name in self.image_names():
            if name.rsplit(":", 1)[0].endswith("/pause"):
                return name
        return DEFAULT_PAUSE_IMAGE


def load_bundle(root: Path) -> Bundle:
    """Read and check bundle.yaml once; every step of a run then reads the same typed manifest."""
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise InstallError(
            f"{root}: no {MANIFEST_NAME}; run {INSTALLER_NAME} from the unpacked bundle folder or pass --bundle DIR"
        )
    try:
        data = load_yaml(path.read_bytes())
    except OSError as error:
        raise InstallError(f"{path}: cannot read: {error.strerror}; is --bundle the unpacked bundle folder?") from None
    except yaml.YAMLError as error:
        raise InstallError(f"{path}: not valid YAML ({yaml_problem(error)}); re-copy the bundle") from None
    return Bundle(root, BundleManifest.from_mapping(data, str(root)))
