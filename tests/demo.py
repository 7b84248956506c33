"""`make demo`: the whole offline path on one machine, with no internet, in a few minutes.

The real Kubernetes artifacts cannot be downloaded here, so local stand-ins serve what upstream would: an
HTTP mirror (containerd, runc and ctr are this machine's real binaries, the others small stand-ins), a
docker-registry holding one small busybox image built by buildah under every name the release needs
(kubeadm's seven images, Calico's), and an RPM repository of stand-in kubeadm/kubelet/kubectl packages built
with rpmbuild. The real `bundler` builds a complete bundle from them (no --allow-incomplete), verifies and
inspects it; the real `k8s-install.pyz` then prepares three control planes and two workers, each in its own
--root sandbox with its own network namespace and containerd. kubeadm, kubelet and kubectl cannot run here:
their steps are logged as `would run` with the exact command. Everything is removed at the end (--keep
leaves the folder, and the demo ends with commands that still work on it).

Needs root and the Debian packages .ci/run installs; `make demo` sets up .venv itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import yaml

REPO = Path(__file__).resolve().parent.parent
TOP = "k8s-bundle-1.29.6-rocky9-amd64-demo"  # the cluster is in the name
SUBNET = "10.213.9"
NODES = [
    {"name": "k8s-mn01", "ip": f"{SUBNET}.11", "role": "control-plane"},
    {"name": "k8s-mn02", "ip": f"{SUBNET}.12", "role": "control-plane"},
    {"name": "k8s-mn03", "ip": f"{SUBNET}.13", "role": "control-plane"},
    {"name": "k8s-wn01", "ip": f"{SUBNET}.21", "role": "worker"},
    {"name": "k8s-wn02", "ip": f"{SUBNET}.22", "role": "worker"},
]
RELEASE_MANIFEST = REPO / "manifests" / "k8s-1.29.6.yaml"  # the image names come from the real release
STANDIN_SOURCE = "test/busybox:1.0"  # every image of the bundle is this small image under the real name
CALICO_IMAGES = ("docker.io/calico/node:v3.28.0", "docker.io/calico/typha:v3.28.0")  # the stand-in calico-typha.yaml's
NODE_INTERFACE = "eth-node"  # the veth NetNamespace.add_address gives each node
TOOLS = ("ip", "dnf", "rpm", "rpmbuild", "createrepo_c", "containerd", "ctr", "runc", "docker-registry", "buildah",
         "skopeo", "openssl", "systemctl")  # fmt: skip


STANDIN_NOTE = """\
The bundle is complete: the build checked that it holds every part a node needs (kubeadm, kubelet, kubectl,
containerd, runc, the CNI plugins, kubeadm's seven images, the Calico manifest and its images), so it needed
no --allow-incomplete. Its content is stand-in, because the real Kubernetes artifacts cannot be downloaded on
this machine: the kube RPMs hold small scripts, every image is the same busybox, the CNI plugins, buildkit
and nerdctl are scripts; containerd, ctr and runc are this machine's real binaries. The stand-in RPMs are
unsigned (the warnings above), so the nodes below run with --no-gpgcheck; real repositories sign theirs and
the build checks every signature. A real build (`bundler build --k8s 1.29.6 --cluster ...`) fetches the real
artifacts and checks each against its pinned sha256."""


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def shown(command: List[str], **kwargs) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    """Run a command, printing it first and its output as it comes; stop the demo when it fails."""
    printable = " ".join(part if " " not in part else repr(part) for part in command)
    print(f"$ {printable}", flush=True)
    result = subprocess.run(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    print(result.stdout.rstrip(), flush=True)
    if result.returncode != 0:
        raise SystemExit(f"demo: the command above failed (exit {result.returncode})")
    return result


def missing_prerequisites() -> List[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not Path("/bin/busybox").is_file():
        missing.append("/bin/busybox (busybox-static)")
    if os.geteuid() != 0:
        missing.append("root (network namespaces, rpm --root, systemctl --root)")
    return missing


def bundler(*args: str) -> List[str]:
    return [sys.executable, "-m", "bundler", *args]


def node_python() -> str:
    from tests.conftest import find_python39

    return find_python39() or sys.executable


def start_sources(work: Path, stack: contextlib.ExitStack) -> Dict[str, object]:
    from tests.support.http_server import MirrorServer
    from tests.support.registry import Registry
    from tests.support.rpm_graph import RpmGraph
    from tests.support.rpm_release import add_rpm_section
    from tests.support.test_images import build_test_images

    mirror = MirrorServer().start()
    stack.callback(mirror.stop)
    print(f"HTTP mirror (stand-in downloads for *.example.invalid): {mirror.url}")
    images = build_test_images(work / "test-images")
    registry = Registry(images.storage, work / "registry").start()
    stack.callback(registry.stop)
    print(f"docker-registry with stand-in images (busybox-based, built by buildah): {registry.url}")
    graph = RpmGraph(work / "rpm-graph")
    release = DemoRelease(mirror, work)
    add_rpm_section(release, graph, name="demo")
    print(f"RPM repositories (stand-in kubeadm/kubelet/kubectl 1.29.6 and base packages, rpmbuild): {mirror.url}")
    kubeadm_images = release_images()
    serve_standin_images(registry, [*kubeadm_images, *CALICO_IMAGES])
    print(
        f"the same registry serves that busybox-based image under each of the {len(kubeadm_images)} names kubeadm "
        f"pulls and Calico's {len(CALICO_IMAGES)}: {', '.join(short(n) for n in (*kubeadm_images, *CALICO_IMAGES))}"
    )
    release.manifest["images"] = kubeadm_images
    release.manifest["images_from_files"] = ["calico-manifest"]  # as the real manifest: Calico's images from its file
    release.write()
    return {"mirror": mirror, "registry": registry, "graph": graph, "release": release}


def release_images() -> List[str]:
    """kubeadm's images of the real 1.29.6 release (manifests/k8s-1.29.6.yaml)."""
    return list(yaml.safe_load(RELEASE_MANIFEST.read_text())["images"])


def short(name: str) -> str:
    return name.split("/", 1)[1]


def mirrored(registry_host: str, name: str) -> str:
    """Where the stand-in registry serves `name` (the build's --registry-mirror prefixes below)."""
    upstream, path = name.split("/", 1)
    prefix = {"registry.k8s.io": "mirrored", "docker.io": "dockerhub"}[upstream]
    return f"docker://{registry_host}/{prefix}/{path}"


def serve_standin_images(registry, names: List[str]) -> None:  # type: ignore[no-untyped-def]
    from tests.support.test_images import skopeo

    source = f"docker://{registry.host}/{STANDIN_SOURCE}"
    for name in names:
        skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", source,
               mirrored(registry.host, name))  # fmt: skip


class DemoRelease:
    """The stand-in release manifest (the shape of manifests/k8s-1.29.6.yaml, pointing at the stand-ins)."""

    def __init__(self, mirror, work: Path) -> None:  # type: ignore[no-untyped-def]
        from tests.support.node_bundle import node_release_manifest

        self.mirror = mirror
        self.path = work / "release.yaml"
        self.manifest = node_release_manifest(mirror)

    def write(self) -> Path:
        self.path.write_text(yaml.safe_dump(self.manifest, sort_keys=False))
        return self.path


def write_site(site: Path) -> Path:
    from k8s_install.cluster.secrets import generate_secrets, worker_secrets, write_secrets
    from tests.support.cluster_files import cluster_document

    site.mkdir(parents=True)
    document = cluster_document([dict(node) for node in NODES], name="demo")
    document["api"]["vip"] = f"{SUBNET}.240"
    document["networks"]["nodes"] = f"{SUBNET}.0/24"
    for node in document["nodes"]:
        if node["role"] == "control-plane":
            node["interface"] = NODE_INTERFACE  # keepalived's VIP; also lets `plan --root --node` run after the demo
    config = site / "cluster.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    secrets = generate_secrets("demo")
    write_secrets(site / "cluster-secrets.yaml", secrets)
    write_secrets(site / "cluster-secrets-worker.yaml", worker_secrets(secrets))
    return config


def prepare_node(work: Path, graph, node: Dict[str, str], stack: contextlib.ExitStack) -> Dict[str, object]:  # type: ignore[no-untyped-def]
    from tests.support.containerd import Containerd
    from tests.support.rpm_graph import ASSUMED
    from tests.support.sandbox import NetNamespace, make_el9_root

    root = make_el9_root(work / "nodes" / node["name"])
    assumed = [str(p) for name, p in graph.rpms.items() if name.rsplit("-", 2)[0] in ASSUMED]
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", "--nosignature", *assumed],
                   check=True, capture_output=True)  # fmt: skip
    namespace = stack.enter_context(NetNamespace("k8sdemo"))
    namespace.add_address(f"{node['ip']}/24")
    runtime = Path(tempfile.mkdtemp(prefix="demo-ctd-", dir="/tmp"))  # short: a socket path has < 108 bytes
    stack.callback(shutil.rmtree, runtime, True)
    containerd = Containerd(runtime).start()
    stack.callback(containerd.stop)
    return {"root": root, "namespace": namespace, "containerd": containerd}


def installer(bundle: Path, site: Path, node: Dict[str, str], sandbox: Dict[str, object], *args: str) -> List[str]:
    """The installer's command for `node`, with the options the command takes (status: where to look)."""
    secrets = "cluster-secrets.yaml" if node["role"] == "control-plane" else "cluster-secrets-worker.yaml"
    flags = ["--role", node["role"]] + (["--first"] if node["name"] == "k8s-mn01" else [])
    flags += ["--config", str(site / "cluster.yaml"), "--secrets", str(site / secrets), "--no-gpgcheck"]
    flags += ["--allow-incomplete"]  # the stand-in release: the build said what it lacks, the node says it again
    if args and args[0] == "status":
        flags = []
    return sandbox["namespace"].prefix() + [  # type: ignore[attr-defined]
        node_python(), str(bundle / "k8s-install.pyz"), *args, *flags, "--root", str(sandbox["root"]),
        "--containerd-address", sandbox["containerd"].socket,  # type: ignore[attr-defined]
    ]  # fmt: skip


def status_line(node: Dict[str, str], command: List[str], env: Dict[str, str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"demo: status of {node['name']} failed: {result.stderr.strip()}")
    doc = json.loads(result.stdout)
    enabled = [service["name"] for service in doc["services"] if service["enabled"] == "enabled"]
    images = doc["images"]
    return (
        f"{node['name']}: last run completed: {'yes' if doc['installer']['completed'] else 'no'}; "
        f"{images.get('present', '?')} of {images.get('bundled', '?')} images in containerd; "
        f"enabled: {', '.join(enabled)}"
    )


def run_demo(work: Path) -> None:
    started = time.monotonic()
    env = dict(os.environ, SHIV_ROOT=str(work / "shiv"), SOURCE_DATE_EPOCH="1700000000")
    with contextlib.ExitStack() as stack:
        say("1/6 stand-in upstream, all on 127.0.0.1: nothing here comes from the internet")
        sources = start_sources(work, stack)
        mirror, registry, release = sources["mirror"], sources["registry"], sources["release"]

        say("2/6 the cluster: 3 control planes behind a VIP, 2 workers (cluster.yaml and its 0600 secrets)")
        config = write_site(work / "site")
        print(config.read_text().rstrip())
        shown(bundler("cluster", "check", str(config), "--k8s", "1.29.6", "--secrets",
                      str(work / "site" / "cluster-secrets.yaml")), cwd=REPO, env=env)  # fmt: skip

        say("3/6 bundler build: every artifact fetched from the stand-ins and checked against its pinned sha256")
        shown(bundler(
            "build", "--manifest", str(release.path), "--mirror", mirror.url,  # type: ignore[attr-defined]
            "--insecure-registry", registry.host,  # type: ignore[attr-defined]
            "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",  # type: ignore[attr-defined]
            "--registry-mirror", f"docker.io=http://{registry.host}/dockerhub",  # type: ignore[attr-defined]
            "--cluster", str(config), "--cache", str(work / "cache"), "--output", str(work / "out"),
        ), cwd=REPO, env=env)  # fmt: skip
        print(STANDIN_NOTE)
        tarball = work / "out" / f"{TOP}.tar"

        say("4/6 carried to the air gap: verify and inspect the tarball, then unpack it")
        shown(bundler("verify", str(tarball)), cwd=REPO, env=env)
        shown(bundler("inspect", str(tarball)), cwd=REPO, env=env)
        (work / "air-gap").mkdir()
        shown(["tar", "-xf", str(tarball), "-C", str(work / "air-gap")])
        bundle = work / "air-gap" / TOP

        say("5/6 five nodes: a --root sandbox, a network namespace holding the node's IP, a containerd each")
        sandboxes = {node["name"]: prepare_node(work, sources["graph"], node, stack) for node in NODES}
        print(", ".join(f"{node['name']} {node['ip']}" for node in NODES))
        first = NODES[0]
        shown(installer(bundle, work / "site", first, sandboxes[first["name"]], "plan"), env=env)
        for node in NODES:
            say(f"install {node['name']} ({node['role']}{', first' if node is first else ''})")
            shown(installer(bundle, work / "site", node, sandboxes[node["name"]], "--yes"), env=env)

        say("6/6 status of every node (the others read from status --json), and what a second run changes")
        shown(installer(bundle, work / "site", first, sandboxes[first["name"]], "status"), env=env)
        for node in NODES[1:]:
            print(status_line(node, installer(bundle, work / "site", node, sandboxes[node["name"]], "status", "--json"),
                              env))  # fmt: skip
        shown(installer(bundle, work / "site", first, sandboxes[first["name"]], "--yes"), env=env)
        shown(installer(bundle, work / "site", first, sandboxes[first["name"]], "plan"), env=env)  # agrees: nothing
        log = (sandboxes[first["name"]]["root"] / "var/log/k8s-install.log").read_text()  # type: ignore[operator]
        print("commands the first control plane would run on a real node (kubeadm and kubectl are not here):")
        would = [line.split("would run: ", 1)[1] for line in log.splitlines() if "would run: kube" in line]
        print("\n".join(f"  {command}" for command in dict.fromkeys(would)))
        say("cleaning up: stopping the servers and containerds, removing the namespaces")
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")


def runnable(path: Path) -> str:
    """`path` as the user can type it from where they are."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bundler_command() -> str:
    """How to run the builder after the demo: the venv's `bundler` script, else `python -m bundler`."""
    script = Path(sys.executable).parent / "bundler"
    return runnable(script) if script.is_file() else f"{sys.executable} -m bundler"


def next_steps(work: Path, kept: bool) -> str:
    """What to try next: commands that work once the demo's servers, containerds and namespaces are gone."""
    if not kept:
        return (
            "next: `make demo DEMO_ARGS=--keep` keeps the bundle and the node folders and prints commands to try\n"
            'on them; README.md\'s "First ten minutes" builds a real bundle on a connected machine.'
        )
    bundle = work / "air-gap" / TOP
    site = work / "site"
    first = work / "nodes" / NODES[0]["name"]
    pyz = f"SHIV_ROOT={work / 'shiv'} {node_python()} {bundle / 'k8s-install.pyz'}"
    node_flags = (f"--root {first} --node {NODES[0]['name']} --first --config {site / 'cluster.yaml'} "
                  f"--secrets {site / 'cluster-secrets.yaml'} --no-gpgcheck")  # fmt: skip
    return "\n".join([
        f"kept {work}: the tarball in out/, it unpacked in air-gap/, cluster.yaml and secrets in site/,",
        "each node's --root folder in nodes/. The demo's servers, containerds and namespaces are gone; these work:",
        f"  {bundler_command()} inspect {work / 'out' / (TOP + '.tar')}",
        f"  {bundler_command()} verify {work / 'out' / (TOP + '.tar')}",
        f"  {pyz} verify",
        f"  {pyz} plan {node_flags}",
        f"  {pyz} status --root {first}",
        f"  less {first / 'var/log/k8s-install.log'}",
        f"remove it with: rm -rf {work}",
    ])  # fmt: skip


def main(argv: List[str] = None) -> int:  # type: ignore[assignment]
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder (bundle, node roots) at the end")
    args = parser.parse_args(argv)
    missing = missing_prerequisites()
    if missing:
        print(f"demo: missing {', '.join(missing)}; run .ci/run's apt-get line first", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="k8s-demo-"))
    try:
        run_demo(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{next_steps(work, args.keep)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
