"""Images: the bundle's OCI layout imported into containerd's k8s.io namespace, then every image checked.

Runs after containerd is (re)started. A --root run imports only into a containerd named with
--containerd-address (the running system's containerd is not the image's); otherwise it is logged as
skipped and `./k8s-install.pyz images` does it on the booted node.
"""

from __future__ import annotations

from typing import List, Optional

from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.images.containerd_import import (
    DEFAULT_ADDRESS,
    ImportResult,
    check_images_present,
    find_ctr,
    images_to_import,
    import_images,
)
from k8s_install.node import facts


def no_space_for_images(node: Node, count: int) -> str:
    """containerd's filesystem filled during an import: where, how much the images need, how much is there."""
    from k8s_install.node.atomic import existing_folder
    from k8s_install.steps.containerd import containerd_root_dir
    from k8s_install.steps.disk_space import UNPACKED, image_blobs_missing
    from k8s_install.units import human_size

    where = node.host.path(containerd_root_dir)
    free = facts.disk_free(existing_folder(where))
    needed = UNPACKED * image_blobs_missing(node)
    return (
        f"{containerd_root_dir}: no space left on its filesystem while importing {count} image(s) into containerd "
        f"(they need about {human_size(needed)}, {human_size(free)} available): free space there, then run again "
        "(the images not imported are imported then)"
    )


def ctr_binary(node: Node, explicit: Optional[str] = None) -> str:
    """The ctr the runtime step installed, else one on PATH."""
    if explicit:
        return find_ctr(explicit)
    installed = node.host.path("/usr/local/bin/ctr")
    return str(installed) if installed.is_file() else find_ctr(None)


class Images(Step):
    name = "images"
    title = "container images in containerd (k8s.io)"
    needs_running = ("containerd",)

    def __init__(self, ctr: Optional[str] = None, snapshotter: Optional[str] = None) -> None:
        self.ctr = ctr  # `images --ctr`: the ctr binary (default: the installed one, else ctr on PATH)
        self.snapshotter = snapshotter  # `images --snapshotter` (default: containerd's)
        self.imported: Optional[ImportResult] = None  # what the last import did, once applied

    def plan(self, node: Node) -> List[Change]:
        address = node.settings.containerd_address or (DEFAULT_ADDRESS if node.host.live else None)
        if address is None:
            node.host.skipped("image import (pass --containerd-address to import into a running containerd)")
            return []
        bundle = node.bundle
        try:
            ctr = ctr_binary(node, self.ctr)
            wanted = images_to_import(bundle, ctr, address)
        except InstallError:
            if node.options.dry_run:
                count = len(node.bundle.images())
                return [Change(f"import {count} image(s) once containerd runs", lambda: None)] if count else []
            raise
        if not wanted:
            return []
        names = ", ".join(image.name for image in wanted)

        def load() -> None:
            try:
                self.imported = import_images(bundle, ctr, address, snapshotter=self.snapshotter)
            except InstallError as error:
                if "no space left on device" in str(error).lower():
                    raise InstallError(no_space_for_images(node, len(wanted))) from None
                raise
            check_images_present(bundle, ctr, address)

        return [Change(f"import {len(wanted)} image(s) into containerd k8s.io: {names}", load)]
