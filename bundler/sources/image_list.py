"""Which images a bundle holds: the manifest's `images:`, the images named in the YAML of the artifacts
listed in `images_from_files` (e.g. calico-typha.yaml), `--image REF`, `--image-file FILE` and the images of
the `--chart` charts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List

import yaml

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from bundler.oci.reference import ImageRef, parse_reference
from k8s_install.bundle_format.yaml_loader import load_yaml_all
from k8s_install.errors import yaml_problem

POD_SPEC_KEYS = ("containers", "initContainers", "ephemeralContainers")


def _walk(node: Any, found: List[str]) -> None:
    """Every `image:` of a container, wherever a pod spec sits (Deployment, DaemonSet, CronJob...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in POD_SPEC_KEYS and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        found.append(container["image"])
            _walk(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk(item, found)


def images_in_yaml(text: str, where: str) -> List[str]:
    found: List[str] = []
    try:
        for document in load_yaml_all(text, allow_aliases=True):
            _walk(document, found)
    except yaml.YAMLError as error:
        raise BundlerError(f"{where}: not valid YAML, cannot read its images: {yaml_problem(error)}") from None
    return found


def read_image_file(path: Path) -> List[str]:
    """One reference per line; blank lines and `#` comments are ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BundlerError(f"--image-file {path}: cannot read: {error}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _unique(refs: Iterable[ImageRef]) -> List[ImageRef]:
    seen: Dict[str, ImageRef] = {}
    for ref in refs:
        seen.setdefault(ref.name, ref)
    return list(seen.values())


def collect_images(context: BuildContext) -> List[ImageRef]:
    release = context.release
    refs = [parse_reference(text, f"{release.source}: images") for text in release.images]
    for name in release.images_from_files:
        path = context.fetched_files.get(name)
        if path is None:
            raise BundlerError(f"{release.source}: images_from_files names {name!r}, which was not fetched")
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        refs += [parse_reference(image, f"artifact {name}") for image in images_in_yaml(text, f"artifact {name}")]
    options = context.options.images
    refs += [parse_reference(text, "--image") for text in options.images]
    for file_name in options.image_files:
        refs += [parse_reference(text, f"--image-file {file_name}") for text in read_image_file(Path(file_name))]
    refs += [parse_reference(image, chart) for image, chart in context.chart_images]  # `helm template` found them
    return _unique(refs)
