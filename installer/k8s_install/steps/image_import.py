"""Images: the bundle's OCI layout imported into containerd's k8s.io namespace, then every image checked;
right before kubeadm, every image the role will run (kubeadm's list, Calico's, the sandbox) checked too.

Runs after containerd is (re)started. A --root run imports only into a containerd named with
--containerd-address (the running system's containerd is not the image's); otherwise it is logged as
skipped and `./k8s-install.pyz images` does it on the booted node.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.images.containerd_import import (
    DEFAULT_ADDRESS,
    NAMESPACE,
    ImportResult,
    check_images_present,
    find_ctr,
    images_to_import,
    import_images,
    present_images,
)
from k8s_install.images.needed import (
    NeededImage,
    cluster_configuration,
    for_role,
    kubeadm_images,
    missing_images,
    missing_verdict,
    needed_images,
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


class RoleImages(Step):
    """Before kubeadm: every image this role will run is in containerd (or the bundle, in a plan), else one
    line naming each missing image and nothing started. A bundle built --allow-incomplete only warns; with a
    site registry (cluster.yaml `registry:`) containerd can pull what is missing, so it is only noted."""

    name = "role-images"
    title = "images kubeadm and Calico need, all present (nothing is ever pulled)"
    needs_running = ("containerd",)

    def __init__(self) -> None:
        self.checked = ""  # what the step's line says: how many images, asked of whom

    def outcome(self, node: Node) -> Optional[str]:
        return self.checked or None

    def plan(self, node: Node) -> List[Change]:
        missing, where = self.missing(node)
        site = node.settings.cluster_config().registry
        said = missing_verdict(
            missing, node.settings.role, where, site.endpoint if site else "", node.bundle.incomplete
        )
        if said is not None:
            line, fatal = said
            if fatal:
                raise InstallError(line)
            print(line)
        return []

    def missing(self, node: Node) -> Tuple[List[NeededImage], str]:
        """The missing images, and where they were looked for: containerd, or the bundle in a plan (the
        images step imports all of the bundle's)."""
        from k8s_install.cluster.calico import manifest_images
        from k8s_install.cluster.kubeadm import api_version
        from k8s_install.cluster.model import IMAGE_REPOSITORY

        config = node.settings.cluster_config()
        kubeadm = node.host.which("kubeadm") if node.host.live else None
        listed: List[str] = []
        if kubeadm:
            configuration = cluster_configuration(
                api_version(config.kubernetes_version), config.kubernetes_version, IMAGE_REPOSITORY
            )
            listed = kubeadm_images(kubeadm, configuration, lambda argv: node.host.run(argv, check=False, timeout=120))
        else:
            node.host.skipped("kubeadm config images list (kubeadm runs on the booted node)")
        kept = for_role(listed, node.settings.role, config.external_etcd is not None)
        cni: List[str] = []
        calico = node.bundle.artifact("calico-manifest") if node.bundle.has_artifact("calico-manifest") else None
        # a worker filled from a bundle host (--bundle-url) has no Calico manifest: the first control plane
        # applies it, so the worker never fetched it (docs/bundle-url.md); its images are then not named here
        calico_absent = calico is not None and not calico.is_file()
        if calico is not None and not calico_absent:
            cni = manifest_images(calico.read_text(encoding="utf-8"))
        needed = needed_images(kept, cni, node.bundle.pause_image())
        asked = f"{len(kept)} of kubeadm's list" if kubeadm else "kubeadm not asked"
        calico_said = "Calico's manifest not on this node" if calico_absent else f"{len(cni)} of Calico's"
        self.checked = f"ok, {len(needed)} image(s) checked ({asked}, {calico_said}, the sandbox)"
        address = node.settings.containerd_address or (DEFAULT_ADDRESS if node.host.live else None)
        if address is not None and not node.options.dry_run:
            present = list(present_images(ctr_binary(node, None), address))
            return missing_images(needed, present), f"containerd (namespace {NAMESPACE})"
        return missing_images(needed, node.bundle.image_names()), "the bundle"
