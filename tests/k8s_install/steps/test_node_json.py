"""`--json` of the installer's plan, preflight, status and verify: the real pyz under Python 3.9 on a
simulated node (temporary root, network namespace), each document validated against schemas/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Iterator

import jsonschema
import pytest

from k8s_install.steps.preflight import CHECK_NAMES
from tests.conftest import REPO
from tests.support.cluster_files import write_cluster
from tests.support.node_bundle import build_node_bundle
from tests.support.sandbox import NetNamespace, add_kubelet_unit, make_el9_root

pytestmark = [
    pytest.mark.daemons,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, chown)"),
]

WORKER_IP = "10.213.7.100"


def schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, cluster_secrets) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    if not shutil.which("ip"):
        pytest.skip("iproute2 is not installed")
    from tests.support.http_server import MirrorServer

    work = tmp_path_factory.mktemp("node-json")
    mirror = MirrorServer().start()
    try:
        bundle = build_node_bundle(mirror, work / "build")
    finally:
        mirror.stop()
    root = make_el9_root(work / "node")
    add_kubelet_unit(root)
    site = write_cluster(work / "site", cluster_secrets).parent
    with NetNamespace() as namespace:
        namespace.add_address(f"{WORKER_IP}/24")
        yield {"bundle": bundle, "root": root, "site": site, "namespace": namespace, "work": work}


def pyz(node: dict, python39: str, *args: str) -> subprocess.CompletedProcess:
    """The command with the node options it takes (plan and preflight: the node's; status, verify: none)."""
    site = node["site"]
    node_flags = ["--config", str(site / "cluster.yaml"), "--secrets", str(site / "cluster-secrets.yaml"),
                  "--allow-incomplete"] if args[0] in ("plan", "preflight") else []  # fmt: skip
    command = node["namespace"].prefix() + [
        python39, str(node["bundle"] / "k8s-install.pyz"), *args, "--root", str(node["root"]), *node_flags,
    ]  # fmt: skip
    env = dict(os.environ, SHIV_ROOT=str(node["work"] / "shiv"))
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_plan_json(node: dict, python39: str) -> None:
    result = pyz(node, python39, "plan", "--json", "--role", "worker")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout holds only the document
    jsonschema.validate(doc, schema("plan"))
    assert doc["node"] == "k8s-wn01" and doc["role"] == "worker" and doc["first"] is False
    steps = {step["name"]: step for step in doc["steps"]}
    assert "create /usr/local/bin/containerd" in steps["runtime-binaries"]["changes"]
    assert doc["change_count"] == sum(len(step["changes"]) for step in doc["steps"]) > 0


def test_preflight_json_lists_every_check(node: dict, python39: str) -> None:
    result = pyz(node, python39, "preflight", "--json", "--role", "worker", "--ignore-preflight", "memory")
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schema("preflight"))
    results = {check["name"]: check["result"] for check in doc["checks"]}
    assert set(results) == set(CHECK_NAMES)
    assert results["memory"] == "ignored" and results["os"] == "ok"
    assert result.returncode == (0 if doc["ok"] else 1)


def test_status_and_verify_json(node: dict, python39: str) -> None:
    status = pyz(node, python39, "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    jsonschema.validate(doc, schema("status"))
    assert [service["name"] for service in doc["services"]][:2] == ["containerd", "buildkitd"]
    assert doc["images"]["checked"] is False and doc["cluster"]["available"] is False
    verify = pyz(node, python39, "verify", "--json", "--bundle", str(node["bundle"]))
    assert verify.returncode == 0, verify.stderr
    jsonschema.validate(json.loads(verify.stdout), schema("verify"))
