"""Stage 4 of `make lab-real`, on the running cluster after the first checks: a missing image, then the
worker reset and joined again with join material renewed on the second control plane.

- Missing image: kube-proxy's image is removed from containerd on the worker and its pod deleted. The
  kubelet's pull must fail at once (no registry is reachable: ErrImagePull naming the image, not a hang),
  `k8s-install.pyz status` must name the image, and a re-run of the installer must import it again
  (the pod then Running). The installer's own check before kubeadm (images/needed.py) passes on every
  install of the run with the real kubeadm's list; its stop on a missing image is tested in CI
  (tests/k8s_install/images/test_images_needed.py) with a real containerd.
- Reset: `k8s-install.pyz reset` on the worker; its kubelet and containerd stopped and disabled; reset
  names the `kubectl delete node` to run on a control plane, which the harness runs; the cluster no longer
  lists the worker.
- Join: every bootstrap token deleted, `join-info` on the second control plane (it must create the token
  again), then the installer on the reset worker as on a fresh one: Ready, and a re-run changes nothing.
"""

from __future__ import annotations

import json
import time
from typing import Dict, List, Tuple

from tests.lab_real.run import Checks, RealCluster, RealNode, eventually, log, nodes_ready, pod_running, pods

WORKER = "k8s-wn01"
SECOND = "k8s-mn02"
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff")


def proxy_pod(cluster: RealCluster, node: str) -> dict:
    found = [p for p in pods(cluster) if p["metadata"]["name"].startswith("kube-proxy-")]
    return next((p for p in found if p.get("spec", {}).get("nodeName") == node), {})


def waiting_reason(pod: dict) -> Tuple[str, str]:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting:
            return waiting.get("reason", ""), waiting.get("message", "")
    return "", ""


def missing_image(cluster: RealCluster, checks: Checks, timings: Dict[str, float]) -> None:
    node = cluster[WORKER]
    image = cluster.kubectl("get", "daemonset", "-n", "kube-system", "kube-proxy", "-o",
                            "jsonpath={.spec.template.spec.containers[0].image}").stdout.strip()  # fmt: skip
    old = proxy_pod(cluster, WORKER).get("metadata", {}).get("name", "")

    def removed_and_failing() -> Tuple[bool, str]:
        if not image or not old:
            return False, f"no kube-proxy image ({image!r}) or pod on {WORKER} ({old!r})"
        names = node.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"], timeout=60).stdout.split()
        repository = image.rsplit(":", 1)[0]
        for name in names:  # the tag and the digest references the CRI keeps for it
            if name == image or name.startswith(repository + "@"):
                node.run(["ctr", "-n", "k8s.io", "images", "rm", name], timeout=60)
        started = time.monotonic()
        cluster.kubectl("delete", "pod", "-n", "kube-system", old, "--wait=false")

        def failing() -> Tuple[bool, str]:
            pod = proxy_pod(cluster, WORKER)
            reason, message = waiting_reason(pod)
            fresh = pod.get("metadata", {}).get("name") not in ("", old)
            return fresh and reason in PULL_FAILURES and image in message, f"{reason}: {message[:300]}"

        passed, detail = eventually(failing, 180, interval=2)
        timings["missing image: pull failed after"] = time.monotonic() - started
        return passed, f"after {timings['missing image: pull failed after']:.0f} s: {detail}"

    if not checks.attempt(
        f"missing image on {WORKER}: the kubelet's pull fails at once, naming it", removed_and_failing
    ):
        return

    def status_names_it() -> Tuple[bool, str]:
        shown = cluster.install(WORKER, "status").output
        lines = [line.strip() for line in shown.splitlines() if "missing:" in line or "images:" in line]
        return f"missing: {image}" in shown, "; ".join(lines)

    checks.attempt(f"missing image on {WORKER}: status names it", status_names_it)

    def restored() -> Tuple[bool, str]:
        run = cluster.install(WORKER)
        timings[f"re-run {WORKER} restoring the image"] = run.seconds
        imported = [line.strip() for line in run.output.splitlines() if "import 1 image(s)" in line]
        if run.result.returncode != 0 or not imported:
            return False, run.output[-800:]
        stuck = proxy_pod(cluster, WORKER).get("metadata", {}).get("name", "")
        cluster.kubectl("delete", "pod", "-n", "kube-system", stuck, "--wait=false")  # skip the pull back-off
        running, _ = eventually(lambda: (pod_running(proxy_pod(cluster, WORKER)), ""), 180)
        return running, f"{imported[0]}; kube-proxy on {WORKER} Running={running}"

    checks.attempt(f"missing image on {WORKER}: a re-run imports it again, kube-proxy Running", restored)


def reset_and_join(cluster: RealCluster, checks: Checks, timings: Dict[str, float]) -> None:
    node = cluster[WORKER]
    hint = f"kubectl delete node {WORKER}"

    def reset() -> Tuple[bool, str]:
        run = cluster.install(WORKER, "reset")
        timings[f"reset {WORKER}"] = run.seconds
        if run.result.returncode != 0:
            return False, run.output[-800:]
        problems: List[str] = []
        for unit in ("kubelet", "containerd"):
            if node.active(unit):
                problems.append(f"{unit} active")
            if node.run(["systemctl", "is-enabled", unit], check=False).stdout.strip() == "enabled":
                problems.append(f"{unit} enabled")
        if hint not in run.output:
            problems.append(f"reset did not say `{hint}`")
        deleted = cluster.kubectl("delete", "node", WORKER)
        listed, _ = eventually(lambda: (WORKER not in nodes_ready(cluster), ""), 120)
        if deleted.returncode != 0 or not listed:
            problems.append(f"still listed: {deleted.stdout}{deleted.stderr}")
        return not problems, "; ".join(problems) or (
            f"kubelet and containerd stopped and disabled; after `{hint}` the cluster lists "
            f"{sorted(nodes_ready(cluster))}"
        )

    if not checks.attempt(f"reset of {WORKER}: its services gone, the cluster no longer lists it", reset):
        return

    def join_info() -> Tuple[bool, str]:
        tokens = cluster["k8s-mn01"].run(["kubeadm", "token", "list", ADMIN_FLAG], check=False, timeout=60)
        ids = [line.split()[0] for line in tokens.stdout.splitlines()[1:] if line.strip()]
        for token in ids:
            cluster["k8s-mn01"].run(["kubeadm", "token", "delete", token, ADMIN_FLAG], check=False, timeout=60)
        info = cluster.install(SECOND, "join-info")
        again = cluster["k8s-mn01"].run(["kubeadm", "token", "list", ADMIN_FLAG], check=False, timeout=60)
        renewed = [line.split()[0] for line in again.stdout.splitlines()[1:] if line.strip()]
        joined = [line.strip() for line in info.output.splitlines() if "kubeadm join" in line]
        ok = info.result.returncode == 0 and bool(joined) and bool(renewed)
        said = f"printed {len(joined)} kubeadm join line(s)" if joined else info.output[-400:]
        return ok, f"deleted {len(ids)} token(s); join-info on {SECOND}: {said}; tokens now {len(renewed)}"

    if not checks.attempt(f"join-info on {SECOND} renews the join token", join_info):
        return

    def join() -> Tuple[bool, str]:
        from tests.lab_real.run import write_pod_network

        if not isinstance(node, RealNode):
            return False, f"{WORKER} is a {type(node).__name__}, not a RealNode"
        node.write_site_files()
        node.run(["ip", "link", "delete", "cni0"], check=False)  # the stand-in bridge CNI's, from before
        run = cluster.install(WORKER)
        timings[f"install {WORKER} again"] = run.seconds
        if run.result.returncode != 0:
            return False, run.output[-1500:]
        cidr = write_pod_network(cluster, WORKER)
        ready, _ = eventually(lambda: (nodes_ready(cluster).get(WORKER, False), ""), 600)
        again = cluster.install(WORKER)
        unchanged = again.result.returncode == 0 and "done: 0 change(s)" in again.output
        return ready and unchanged, (
            f"installed in {run.seconds:.0f} s, podCIDR {cidr}, Ready={ready}, re-run unchanged={unchanged}; "
            + json.dumps(nodes_ready(cluster))
        )

    checks.attempt(f"{WORKER} joined again as a fresh worker: kubectl get nodes Ready", join)


ADMIN_FLAG = "--kubeconfig=/etc/kubernetes/admin.conf"


def run_lifecycle(cluster: RealCluster, checks: Checks, timings: Dict[str, float]) -> None:
    log("lifecycle: a missing image, reset of the worker, join-info on the second control plane, a fresh join")
    missing_image(cluster, checks, timings)
    reset_and_join(cluster, checks, timings)
