"""Stage 2 of `make lab-real`: the images kubeadm asks for, made here, pushed to a loopback registry storage.

Real (from the binaries tests/lab_real/build.py made, `FROM scratch` with buildah):
- registry.k8s.io/kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy at the release's tag;
  kube-proxy also carries Debian's iptables (nft backend) with the libraries it links, as the upstream image
  carries one (kube-proxy refuses to start without a working iptables);
- registry.k8s.io/etcd:3.6.4-0: the etcd 3.6.4 that embeds the server packages the tree vendors;
- registry.k8s.io/pause:3.10.1: built from the tree's build/pause/linux/pause.c with gcc, static.

Stand-ins (nothing real can be had here), each a static busybox:
- registry.k8s.io/coredns/coredns:v1.12.3: serves /health on 8080 and /ready on 8181 (what the Deployment's
  probes ask), answers no DNS;
- docker.io/calico/node and docker.io/calico/typha (the tags of tests/lab_real/calico.yaml): idle. The pod
  network of the lab is a bridge CNI configuration per node from its spec.podCIDR, written by the harness
  with Debian's real CNI plugins (tests/lab_real/run.py).

Pushed under `mirrored/...` (registry.k8s.io) and `dockerio/...` (docker.io) into
CACHE/<commit>/registry-storage, once; `bundler build --registry-mirror` reads them from there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from tests.lab_real import build
from tests.support.registry import Registry
from tests.support.test_images import BUSYBOX, Buildah, skopeo

PAUSE_VERSION = "3.10.1"
ETCD_TAG = "3.6.4-0"
COREDNS_TAG = "v1.12.3"
CALICO_TAG = "v3.28.0"
KUBE_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
IPTABLES = "/usr/sbin/xtables-nft-multi"
IPTABLES_NAMES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                  "ip6tables-restore", "iptables-nft", "iptables-nft-save", "iptables-nft-restore",
                  "ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore")  # fmt: skip
PATH_ENV = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"

COREDNS_STANDIN = """#!/bin/busybox sh
# lab stand-in for CoreDNS (tests/lab_real/images.py): the Deployment's probes, no DNS
/bin/busybox httpd -f -p 8080 -h /www &
exec /bin/busybox httpd -f -p 8181 -h /www
"""
IDLE_STANDIN = """#!/bin/busybox sh
# lab stand-in for a Calico image (tests/lab_real/images.py): idle; the lab's pod network is a bridge
exec /bin/busybox sleep 2147483647
"""


def kube_tag() -> str:
    return f"v{build.RELEASE}"


def image_names() -> Dict[str, str]:
    """The registry path under the loopback registry -> the name nodes know the image by."""
    names = {f"mirrored/{name}:{kube_tag()}": f"registry.k8s.io/{name}:{kube_tag()}" for name in KUBE_IMAGES}
    names[f"mirrored/etcd:{ETCD_TAG}"] = f"registry.k8s.io/etcd:{ETCD_TAG}"
    names[f"mirrored/pause:{PAUSE_VERSION}"] = f"registry.k8s.io/pause:{PAUSE_VERSION}"
    names[f"mirrored/coredns/coredns:{COREDNS_TAG}"] = f"registry.k8s.io/coredns/coredns:{COREDNS_TAG}"
    for name in ("node", "typha"):
        names[f"dockerio/calico/{name}:{CALICO_TAG}"] = f"docker.io/calico/{name}:{CALICO_TAG}"
    return names


STANDIN_IMAGES = (
    (f"registry.k8s.io/coredns/coredns:{COREDNS_TAG}", "CoreDNS is not in Debian and cannot be built here"),
    (f"docker.io/calico/node:{CALICO_TAG}", "Calico is not in Debian and cannot be built here"),
    (f"docker.io/calico/typha:{CALICO_TAG}", "Calico is not in Debian and cannot be built here"),
)


def build_pause(out: Path, git_dir: Path, commit: str) -> Path:
    """pause from the tree's C source, static, as upstream's Makefile builds it."""
    source = out.parent / "pause.c"
    blob = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:build/pause/linux/pause.c"],
        check=True,
        capture_output=True,
    ).stdout
    source.write_bytes(blob)
    subprocess.run(
        ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_VERSION}", "-o", str(out), str(source)],
        check=True,
    )
    subprocess.run(["strip", str(out)], check=True)
    return out


def shared_libraries(program: str) -> List[str]:
    """The libraries `program` links (ldd), with the loader."""
    shown = subprocess.run(["ldd", program], check=True, capture_output=True, text=True).stdout
    found = []
    for line in shown.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            found.append(parts[2])
        elif parts and parts[0].startswith("/"):
            found.append(parts[0])
    return found


def _image(
    buildah: Buildah,
    name: str,
    files: Sequence[Tuple[Path, str]],
    entrypoint: Sequence[str],
    links: Sequence[Tuple[str, str]] = (),
) -> str:
    """An image FROM scratch holding `files` ((source, target) pairs); `links`: (target, link path)."""
    container = buildah("from", "--arch", "amd64", "--os", "linux", "scratch")
    for source, target in files:
        buildah("copy", container, str(source), target)
    if links:
        mount = Path(buildah("mount", container))
        for target, link in links:
            path = mount / link.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target)
        buildah("umount", container)
    entry = "[" + ", ".join(f'"{part}"' for part in entrypoint) + "]"
    buildah("config", "--arch", "amd64", "--os", "linux", "--env", PATH_ENV, "--entrypoint", entry, container)
    local = f"localhost/{name}"
    buildah("commit", "--format", "oci", "--timestamp", "0", "--rm", container, local)
    return local


def make_images(commit: str, git_dir: Path, storage: Path) -> Dict[str, str]:
    """Build every image and push it into the registry storage folder `storage` (made once)."""
    done = storage / ".pushed"
    if done.exists():
        return image_names()
    work = storage.parent / "images-work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(storage, ignore_errors=True)
    work.mkdir(parents=True)
    bin_dir = build.cache_dir(commit) / "bin"
    buildah = Buildah(work / "buildah")
    local: Dict[str, str] = {}
    tag = kube_tag()
    for name in KUBE_IMAGES:
        files = [(bin_dir / name, f"/usr/local/bin/{name}")]
        links: List[Tuple[str, str]] = []
        if name == "kube-proxy":
            files.append((Path(IPTABLES), IPTABLES))
            files += [(Path(lib), lib) for lib in shared_libraries(IPTABLES)]
            xtables = Path("/usr/lib/x86_64-linux-gnu/xtables")
            if xtables.is_dir():
                files.append((xtables, str(xtables)))
            links = [(IPTABLES, f"/usr/sbin/{link}") for link in IPTABLES_NAMES]
        local[f"mirrored/{name}:{tag}"] = _image(buildah, name, files, [f"/usr/local/bin/{name}"], links)
    local[f"mirrored/etcd:{ETCD_TAG}"] = _image(
        buildah, "etcd", [(bin_dir / "etcd", "/usr/local/bin/etcd")], ["/usr/local/bin/etcd"]
    )
    pause = build_pause(work / "pause", git_dir, commit)
    local[f"mirrored/pause:{PAUSE_VERSION}"] = _image(buildah, "pause", [(pause, "/pause")], ["/pause"])
    scripts = work / "scripts"
    scripts.mkdir()
    (scripts / "coredns").write_text(COREDNS_STANDIN)
    (scripts / "idle").write_text(IDLE_STANDIN)
    (scripts / "www").mkdir()
    (scripts / "www" / "health").write_text("OK")
    (scripts / "www" / "ready").write_text("OK")
    for path in (scripts / "coredns", scripts / "idle"):
        path.chmod(0o755)
    local[f"mirrored/coredns/coredns:{COREDNS_TAG}"] = _image(
        buildah,
        "coredns",
        [(BUSYBOX, "/bin/busybox"), (scripts / "coredns", "/coredns"), (scripts / "www", "/www")],
        ["/coredns"],
    )
    for name in ("node", "typha"):
        local[f"dockerio/calico/{name}:{CALICO_TAG}"] = _image(
            buildah, f"calico-{name}", [(BUSYBOX, "/bin/busybox"), (scripts / "idle", "/idle")], ["/idle"]
        )
    with Registry(storage, work / "registry") as registry:
        for path, image in local.items():
            skopeo("copy", "--dest-tls-verify=false", buildah.storage_ref(image), f"docker://{registry.host}/{path}")
    shutil.rmtree(work, ignore_errors=True)
    done.write_text("\n".join(sorted(local)) + "\n")
    return image_names()


def main() -> int:
    storage = build.cache_dir() / "registry-storage"
    names = make_images(build.SOURCE_COMMIT, build.DEFAULT_GIT_DIR, storage)
    for path, name in sorted(names.items()):
        print(f"{name}  (registry path {path})")
    for name, why in STANDIN_IMAGES:
        print(f"stand-in: {name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
