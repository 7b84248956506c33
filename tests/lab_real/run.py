"""Stage 3 of `make lab-real`: three systemd-nspawn nodes, `./k8s-install.pyz` on each as a user runs it,
kubeadm, kubelet, containerd, etcd and the control plane real; then the checks, one summary line each.

The nodes are the lab's (tests/lab/node.py: Debian 12 root dressed as EL9, an overlay per node, a network
namespace each on one bridge with no route anywhere else), plus what a real kubelet needs inside a container
on this host (../shared/LAB-NOTES.md "A real kubelet inside systemd-nspawn"):

- a cgroup of its own per node in every hierarchy, children of this process's own, made before
  systemd-nspawn starts (its preexec moves it there) and removed after the node stops;
- `--capability=all --system-call-filter=@keyring --bind=/dev/kmsg`;
- inside the node, before sysinit (a unit of the node's own): its cgroup controllers remounted writable (they
  are the node's own subtree); /proc/sys/net (its own network namespace) is writable through
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network, as in tests/lab/node.py. (Binding /proc/sys/net onto itself
  instead, as LAB-NOTES did by hand, hides the files tests/lab/node.py binds over the host-wide net.core and
  nf_conntrack_max keys: the installer then sees its values never applied and changes them on every re-run.)
- kernel.panic and kernel.panic_on_oops as files of the node bound over /proc/sys (the kubelet sets them;
  the host's values never change), as tests/lab/node.py does for the installer's host-wide keys;
- the site's kubelet drop-in /etc/kubernetes/kubelet.conf.d/50-lab.conf (through /etc/sysconfig/kubelet's
  KUBELET_EXTRA_ARGS=--config-dir, the upstream RPM's hook): `failCgroupV1: false` (this host is cgroup v1;
  EL9 is v2) and `failSwapOn: false`;
- containerd's `restrict_oom_score_adj`: the installer sets it itself on a node without CAP_SYS_RESOURCE.

The pod network: Calico cannot be had here (its images are idle stand-ins); once a node has its podCIDR,
the harness writes a bridge CNI configuration for it (Debian's real plugins, shipped in the bundle).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tests.lab.cluster import VIP, LiveCluster, Run
from tests.lab.node import NSPAWN_FLAGS, LabCluster, LabNode
from tests.lab.root import lab_root
from tests.lab_real import build, images
from tests.lab_real.bundle import NODES, build_bundle
from tests.support.netns import wait_for

ADMIN = "--kubeconfig=/etc/kubernetes/admin.conf"
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBELET_SHIMS = {"kernel.panic": "kernel/panic", "kernel.panic_on_oops": "kernel/panic_on_oops"}
SHIM_DIR = "/var/lib/k8s-lab-real/sysctl"
HOST_KEYS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "net/netfilter/nf_conntrack_max",
             "net/ipv4/ip_forward", "net/netfilter/nf_conntrack_tcp_timeout_established")  # fmt: skip
HOST_FILES = ("/sys/module/nf_conntrack/parameters/hashsize",)
PREPARE_UNIT = """[Unit]
Description=lab-real: cgroup controllers writable for the kubelet (tests/lab_real/run.py)
DefaultDependencies=no
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done'

[Install]
WantedBy=sysinit.target
"""
KUBELET_DROPIN = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# lab-real: this host is cgroup v1 (EL9 is v2) and its swap is the host's
failCgroupV1: false
failSwapOn: false
"""
SYSCONFIG_KUBELET = "KUBELET_EXTRA_ARGS=--config-dir=/etc/kubernetes/kubelet.conf.d\n"
ROLES: Dict[str, Tuple[str, ...]] = {
    "k8s-mn01": ("--role", "control-plane", "--first"),
    "k8s-mn02": ("--role", "control-plane"),
    "k8s-wn01": ("--role", "worker"),
}
CONTROL_PLANES = ("k8s-mn01", "k8s-mn02")
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def log(line: str) -> None:
    print(line, flush=True)


# -- per-node cgroups --------------------------------------------------------------------------------------
def own_cgroups() -> List[Tuple[Path, str]]:
    """(mount point, this process's path in it) for every hierarchy of /proc/self/cgroup."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if controllers == "":
            mount = CGROUP_ROOT / "unified"
        elif controllers.startswith("name="):
            mount = CGROUP_ROOT / controllers[len("name=") :]
        else:
            mount = CGROUP_ROOT / controllers
        if mount.is_dir():
            found.append((mount, path))
    return found


def make_node_cgroups(name: str) -> List[Path]:
    made = []
    for mount, path in own_cgroups():
        folder = mount / path.lstrip("/") / f"k8s-lab-real-{name}"
        folder.mkdir(exist_ok=True)
        if mount.name == "cpuset":
            for key in ("cpuset.cpus", "cpuset.mems"):
                (folder / key).write_text((folder.parent / key).read_text())
        made.append(folder)
    return made


def remove_cgroups(folders: Sequence[Path]) -> None:
    """Deepest first; a cgroup with a process left stays (and is reported)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        try:
            folder.rmdir()
        except OSError as error:
            log(f"warning: cgroup {folder} not removed: {error}")


# -- nodes -------------------------------------------------------------------------------------------------
class RealNode(LabNode):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.cgroups: List[Path] = []
        self.binds.append("--bind=/dev/kmsg")
        shims = self.path(SHIM_DIR)
        shims.mkdir(parents=True, exist_ok=True)
        for key, where in KUBELET_SHIMS.items():
            (shims / key).write_text(Path(f"/proc/sys/{where}").read_text())
            self.binds.append(f"--bind={SHIM_DIR}/{key}:/proc/sys/{where}")
        self.write_site_files()

    def write_site_files(self) -> None:
        """The lab's own files (units, kubelet drop-in): again after a reset, which may remove some."""
        unit = self.path("/etc/systemd/system/k8s-lab-real-prepare.service")
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(PREPARE_UNIT)
        wants = self.path("/etc/systemd/system/sysinit.target.wants")
        wants.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (wants / unit.name).symlink_to(f"/etc/systemd/system/{unit.name}")
        dropin = self.path("/etc/kubernetes/kubelet.conf.d/50-lab.conf")
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(KUBELET_DROPIN)
        sysconfig = self.path("/etc/sysconfig/kubelet")
        sysconfig.parent.mkdir(parents=True, exist_ok=True)
        sysconfig.write_text(SYSCONFIG_KUBELET)

    def boot(self) -> float:
        started = time.monotonic()
        self.cgroups = make_node_cgroups(self.machine)
        procs = [folder / "cgroup.procs" for folder in self.cgroups]

        def enter_cgroups() -> None:
            for path in procs:
                with open(path, "w") as handle:
                    handle.write(str(os.getpid()))

        flags = [flag for flag in NSPAWN_FLAGS if not flag.startswith("--capability")]
        console = open(self.work / "console.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["systemd-nspawn", *flags, "--capability=all", "--system-call-filter=@keyring",
             "-D", str(self.merged), f"--machine={self.machine}",
             f"--network-namespace-path=/run/netns/{self.namespace}", *self.binds],
            stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=enter_cgroups,
            env=dict(os.environ, SYSTEMD_LOG_LEVEL="err", SYSTEMD_NSPAWN_API_VFS_WRITABLE="network"),
        )  # fmt: skip
        console.close()
        self.leader = wait_for(self._find_leader, 30, what=f"{self.name}'s PID 1")
        wait_for(self._booted, 180, interval=0.5, what=f"{self.name} to finish booting")
        return time.monotonic() - started

    def shutdown(self, grace: float = 30.0) -> None:
        """kubelet and the pods first (else the node's shutdown waits 90 s for pause), then the node, then
        its cgroups."""
        if self.process is not None and self.process.poll() is None and self.leader:
            self.run(["systemctl", "stop", "kubelet"], check=False, timeout=60)
            tasks = self.run(["ctr", "-n", "k8s.io", "tasks", "ls", "-q"], check=False, timeout=30).stdout.split()
            for task in tasks:
                self.run(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", task], check=False, timeout=30)
        super().shutdown(grace)
        remove_cgroups(self.cgroups)


class RealLab(LabCluster):
    def add(self, name: str, address_cidr: str) -> LabNode:
        node = RealNode(self.lab, self.root, self.work / name, name, address_cidr)
        self.nodes[name] = node
        self.boot_seconds[name] = node.boot()
        return node


class RealCluster(LiveCluster):
    def installer(self, name: str, *command: str) -> List[str]:
        """As a user runs it; the bundle is complete, so no --allow-incomplete."""
        if command and command[0] in ("status", "reset", "join-info"):
            return super().installer(name, *command)
        return ["./k8s-install.pyz", *command, *ROLES[name], "--yes"]

    def install(self, name: str, *command: str, timeout: float = 1800) -> Run:
        started = time.monotonic()
        self.count += 1
        argv = self.installer(name, *command)
        unit = f"k8s-lab-run-{self.count}"
        result = self[name].run(argv, timeout=timeout, check=False, cwd=self.bundle_dir, unit=unit)
        run = Run(result, time.monotonic() - started)
        self.runs.setdefault(name, []).append(run)
        return run

    @property
    def bundle_dir(self) -> str:
        """Where the tarball unpacks: its name without .tar (bundler build --cluster ends it with the cluster's
        name)."""
        return f"/root/{self.tarball.name[: -len('.tar')]}"

    def kubectl(self, *argv: str, node: str = "k8s-mn01", timeout: float = 60) -> subprocess.CompletedProcess:
        return self[node].run(["kubectl", ADMIN, *argv], check=False, timeout=timeout)


# -- the checks --------------------------------------------------------------------------------------------
class Checks:
    def __init__(self) -> None:
        self.results: List[Tuple[str, bool, str]] = []

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.results.append((name, passed, detail))
        log(f"{'PASS' if passed else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return passed

    def attempt(self, name: str, probe: Callable[[], Tuple[bool, str]]) -> bool:
        try:
            passed, detail = probe()
        except Exception as error:  # noqa: BLE001 - a check that crashes is a failed check, reported
            passed, detail = False, f"{type(error).__name__}: {str(error)[-600:]}"
        return self.check(name, passed, detail)

    @property
    def failed(self) -> int:
        return sum(1 for _name, passed, _detail in self.results if not passed)


def host_values() -> Dict[str, str]:
    found = {}
    for key in HOST_KEYS:
        with contextlib.suppress(OSError):
            found[key] = Path(f"/proc/sys/{key}").read_text().strip()
    for path in HOST_FILES:
        with contextlib.suppress(OSError):
            found[path] = Path(path).read_text().strip()
    return found


def write_pod_network(cluster: RealCluster, name: str) -> str:
    """A bridge CNI configuration on `name` from its spec.podCIDR (the stand-in for Calico's install-cni)."""
    cidr = wait_for(
        lambda: cluster.kubectl("get", "node", name, "-o", "jsonpath={.spec.podCIDR}").stdout.strip(),
        300,
        interval=3,
        what=f"{name}'s podCIDR",
    )
    conflist = {
        "cniVersion": "0.4.0",
        "name": "lab-bridge",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }  # fmt: skip
    target = cluster[name].path("/etc/cni/net.d/10-lab-bridge.conflist")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(conflist, indent=1))
    return cidr


def sysctl_drift(node: LabNode) -> Dict[str, Tuple[str, str]]:
    """key -> (the installer's value, the running value) where they differ."""
    drift = {}
    for line in node.path("/etc/sysctl.d/90-k8s.conf").read_text().splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key, wanted = (part.strip() for part in line.split("=", 1))
        shown = node.run(["sysctl", "-n", key], check=False, timeout=10)
        running = " ".join(shown.stdout.split())
        if shown.returncode == 0 and running != " ".join(wanted.split()):
            drift[key] = (wanted, running)
    return drift


def pods(cluster: RealCluster) -> List[dict]:
    shown = cluster.kubectl("get", "pods", "-n", "kube-system", "-o", "json")
    return json.loads(shown.stdout)["items"] if shown.returncode == 0 else []


def pod_running(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return pod.get("status", {}).get("phase") == "Running" and bool(statuses) and all(s.get("ready") for s in statuses)


def nodes_ready(cluster: RealCluster) -> Dict[str, bool]:
    shown = cluster.kubectl("get", "nodes", "-o", "json")
    ready = {}
    if shown.returncode == 0:
        for item in json.loads(shown.stdout)["items"]:
            conditions = {c["type"]: c["status"] for c in item["status"].get("conditions", [])}
            ready[item["metadata"]["name"]] = conditions.get("Ready") == "True"
    return ready


def eventually(probe: Callable[[], Tuple[bool, str]], timeout: float, interval: float = 3.0) -> Tuple[bool, str]:
    deadline = time.monotonic() + timeout
    while True:
        passed, detail = probe()
        if passed or time.monotonic() > deadline:
            return passed, detail
        time.sleep(interval)


def run_checks(cluster: RealCluster, checks: Checks, before: Dict[str, str]) -> None:
    names = [node["name"] for node in NODES]

    def all_ready() -> Tuple[bool, str]:
        ready = nodes_ready(cluster)
        return all(ready.get(name) for name in names), json.dumps(ready)

    checks.attempt("kubectl get nodes: all Ready", lambda: eventually(all_ready, 600))

    def workloads() -> Tuple[bool, str]:
        found = pods(cluster)
        wanted = [f"{pod}-{cp}" for pod in STATIC_PODS for cp in CONTROL_PLANES]
        by_name = {p["metadata"]["name"]: p for p in found}
        missing = [name for name in wanted if not (name in by_name and pod_running(by_name[name]))]
        proxies = [p for p in found if p["metadata"]["name"].startswith("kube-proxy-")]
        proxies_ok = len(proxies) == len(names) and all(pod_running(p) for p in proxies)
        detail = f"static pods not Running: {missing}; kube-proxy Running {sum(map(pod_running, proxies))}/{len(names)}"
        return not missing and proxies_ok, detail

    checks.attempt("static pods and kube-proxy Running", lambda: eventually(workloads, 600))

    def readyz(node: str = "k8s-wn01") -> Tuple[bool, str]:
        answer = cluster[node].run(
            ["kubectl", "--kubeconfig=/etc/kubernetes/kubelet.conf", "get", "--raw", "/readyz"], check=False, timeout=30
        )
        server = cluster[node].run(
            ["kubectl", "--kubeconfig=/etc/kubernetes/kubelet.conf", "config", "view", "-o",
             "jsonpath={.clusters[0].cluster.server}"], check=False, timeout=30,
        ).stdout.strip()  # fmt: skip
        return (
            answer.stdout.strip() == "ok" and VIP in server,
            f"{server}: {answer.stdout.strip()}{answer.stderr[-300:]}",
        )

    checks.attempt("/readyz through the VIP (worker's kubelet.conf)", readyz)

    def failover() -> Tuple[bool, str]:
        holder = cluster.wait_for_vip_holder(30)
        node = cluster[holder]
        manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"
        node.run(["mv", manifest, "/root/kube-apiserver.yaml.stopped"])
        try:
            stopped, _ = eventually(
                lambda: (
                    node.run(
                        ["curl", "-sk", "--max-time", "3", "https://127.0.0.1:6443/readyz"], check=False
                    ).returncode
                    != 0,
                    "",
                ),
                120,
            )
            answered, detail = eventually(lambda: readyz("k8s-wn01"), 90)
            return stopped and answered, f"{holder}'s apiserver stopped={stopped}; through the VIP: {detail}"
        finally:
            node.run(["mv", "/root/kube-apiserver.yaml.stopped", manifest])

    checks.attempt("VIP holder's apiserver stopped, the API still answers through the VIP", failover)

    def apiserver_back() -> Tuple[bool, str]:
        return eventually(workloads, 300)

    checks.attempt("stopped apiserver back and Running", apiserver_back)

    def certs() -> Tuple[bool, str]:
        shown = cluster["k8s-mn01"].run(["kubeadm", "certs", "check-expiration"], check=False, timeout=60)
        lines = [line for line in shown.stdout.splitlines() if line.strip()]
        return shown.returncode == 0 and any(
            "apiserver" in line for line in lines
        ), f"{len(lines)} lines, rc {shown.returncode}"

    checks.attempt("kubeadm certs check-expiration", certs)

    for name in names:

        def status(name: str = name) -> Tuple[bool, str]:
            shown = cluster[name].run(
                ["./k8s-install.pyz", "status", "--json"], check=False, cwd=cluster.bundle_dir, timeout=120
            )
            if shown.returncode != 0:
                return False, (shown.stdout + shown.stderr)[-600:]
            doc = json.loads(shown.stdout)
            services = {s["name"]: s["active"] for s in doc.get("services", [])}
            found = doc.get("images", {})
            problems = []
            if not doc.get("installer", {}).get("completed"):
                problems.append("last run not completed")
            for unit in ("containerd", "kubelet"):
                if services.get(unit) != "active":
                    problems.append(f"{unit} {services.get(unit)}")
            if not found.get("checked") or found.get("present") != found.get("bundled"):
                problems.append(f"images {found.get('present')}/{found.get('bundled')} ({found.get('reason')})")
            kube = doc.get("cluster", {})
            if name in CONTROL_PLANES:
                rows = [line.split() for line in kube.get("output", [])]
                ready = {row[0] for row in rows if len(row) > 1 and row[1] == "Ready"}
                if not set(names) <= ready:
                    problems.append(f"cluster shows Ready: {sorted(ready)}")
            elif kube.get("available"):
                problems.append("a worker shows the cluster (it has no admin kubeconfig)")
            detail = "; ".join(problems) or (
                f"completed, kubelet+containerd active, images {found.get('present')}/{found.get('bundled')}"
                + (", all nodes Ready" if name in CONTROL_PLANES else "")
            )
            return not problems, detail

        checks.attempt(f"k8s-install.pyz status on {name}", status)

    def no_pulls() -> Tuple[bool, str]:
        seen = []
        for name in names:
            journal = cluster[name].run(
                ["journalctl", "-u", "containerd", "--no-pager", "-o", "cat"], check=False, timeout=60
            )
            pulls = [
                line for line in journal.stdout.splitlines() if "PullImage" in line or "pulling image" in line.lower()
            ]
            seen += [f"{name}: {line[:200]}" for line in pulls]
        events = cluster.kubectl("get", "events", "-A", "-o", "json")
        if events.returncode == 0:
            for event in json.loads(events.stdout)["items"]:
                if event.get("reason") in ("Pulling", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"):
                    seen.append(f"event {event['reason']}: {event.get('message', '')[:200]}")
        return not seen, "; ".join(seen[:5]) or "no pull in any containerd journal or event"

    checks.attempt("no image pull attempted", no_pulls)

    def host_unchanged() -> Tuple[bool, str]:
        after = host_values()
        changed = {key: (before.get(key), value) for key, value in after.items() if before.get(key) != value}
        return not changed, json.dumps(changed) if changed else "host sysctls as before"

    checks.attempt("host sysctls unchanged", host_unchanged)


def kubeadm_listed(line: str) -> bool:
    """The role-images line of an install: passed, with images from the real kubeadm's own list."""
    found = re.search(r": ok, \d+ image\(s\) checked \((\d+) of kubeadm's list", line)
    return bool(found) and int(found.group(1)) > 0


# -- the whole run -----------------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    if os.geteuid() != 0:
        log("lab-real: needs root (mounts, network namespaces, systemd-nspawn)")
        return 1
    started = time.monotonic()
    timings: Dict[str, float] = {}
    before = host_values()
    t = time.monotonic()
    times = build.build(build.SOURCE_COMMIT, build.DEFAULT_GIT_DIR)
    timings["binaries (cached after the first run)"] = time.monotonic() - t
    for name, seconds in times.items():
        log(f"time build {name}: {seconds:.0f} s")
    t = time.monotonic()
    storage = build.cache_dir() / "registry-storage"
    images.make_images(build.SOURCE_COMMIT, build.DEFAULT_GIT_DIR, storage)
    timings["images"] = time.monotonic() - t
    for name, why in images.STANDIN_IMAGES:
        log(f"stand-in image {name}: {why}")
    work = Path(tempfile.mkdtemp(prefix="k8sreal-", dir="/var/tmp"))
    checks = Checks()
    try:
        tarball, site = build_bundle(work / "bundle", storage, timings)
        log(f"bundle {tarball.name}: {tarball.stat().st_size / 1e6:.0f} MB in {timings['bundle build']:.0f} s")
        root = lab_root(timings)
        nodes = RealLab(root, work / "nodes")
        try:
            for node in NODES:
                nodes.add(node["name"], f"{node['ip']}/24")
                log(f"booted {node['name']} in {nodes.boot_seconds[node['name']]:.1f} s")
            cluster = RealCluster(nodes, tarball, site)
            cluster.unpack_everywhere()
            for node in NODES:
                name = node["name"]
                run = cluster.install(name)
                timings[f"install {name}"] = run.seconds
                ok = checks.check(f"k8s-install.pyz on {name} ({run.seconds:.0f} s)", run.result.returncode == 0,
                                  "" if run.result.returncode == 0 else run.output[-1500:])  # fmt: skip
                if not ok:
                    log(f"journal of kubelet on {name}:")
                    log(
                        cluster[name].run(["journalctl", "-u", "kubelet", "--no-pager", "-n", "40"], check=False).stdout
                    )
                    raise SystemExit(1)
                checks.attempt(f"pod network on {name}", lambda name=name: (True, write_pod_network(cluster, name)))
            role_images = [
                line.strip() for node in NODES for line in cluster.runs[node["name"]][0].output.splitlines()
                if line.startswith("[role-images]")
            ]  # fmt: skip
            checks.check("the image check before kubeadm passes with the real kubeadm's list on every node",
                         len(role_images) == len(NODES) and all(kubeadm_listed(line) for line in role_images),
                         "; ".join(role_images))  # fmt: skip
            run_checks(cluster, checks, before)
            for node in NODES:
                name = node["name"]
                log(f"sysctl values that differ from 90-k8s.conf on {name}: {sysctl_drift(cluster[name])}")
                again = cluster.install(name)
                timings[f"re-run {name}"] = again.seconds
                lines = again.output.splitlines()
                changed = [
                    f"{line.strip()} / {lines[i + 1].strip() if i + 1 < len(lines) else ''}"
                    for i, line in enumerate(lines)
                    if line.startswith("[") and "changed" in line
                ]
                summary = [line.strip() for line in lines if "change(s)" in line]
                checks.check(
                    f"re-run on {name} changes nothing ({again.seconds:.0f} s)",
                    again.result.returncode == 0 and "done: 0 change(s)" in again.output,
                    "; ".join(summary[-1:] + changed) or again.output[-300:].strip(),
                )
            from tests.lab_real.lifecycle import run_lifecycle

            run_lifecycle(cluster, checks, timings)
        finally:
            if os.environ.get("K8S_LAB_REAL_KEEP") == "1":
                log(f"kept running: nodes under {work / 'nodes'} (stop them by their systemd-nspawn PIDs)")
            else:
                nodes.close()
    except SystemExit:
        pass
    finally:
        if os.environ.get("K8S_LAB_REAL_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    timings["wall"] = time.monotonic() - started
    for what, seconds in timings.items():
        log(f"time {what}: {seconds:.0f} s")
    log(f"lab-real: {len(checks.results) - checks.failed} passed, {checks.failed} failed")
    return 0 if checks.results and not checks.failed else 1


if __name__ == "__main__":
    # run as tests.lab_real.run, not __main__: lifecycle.py imports this module, and its classes must be these
    from tests.lab_real import run

    sys.exit(run.main())
