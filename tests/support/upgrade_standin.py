"""A stand-in bundle of the next release made from a built one, and what an upgrade did, read from a node's log.

Used by the --root upgrade tests (tests/k8s_install/test_upgrade.py) and the upgrade playbook (test_cluster_ansible.py):
the image pipeline is tested in test_images_*, and a --root run imports no images, so retargeting
bundle.yaml is enough there. The lab (tests/lab) builds its next release with the real builder instead.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import List

import yaml


def retarget(bundle: Path, version: str) -> None:
    """Stand-in for a bundle of another release: bundle.yaml names `version` and kubeadm's images for it, and
    SHA256SUMS is updated to match, as the builder would write it."""
    record = yaml.safe_load((bundle / "bundle.yaml").read_text())
    record["kubernetes"] = version
    names = [f"registry.k8s.io/{c}:v{version}" for c in ("kube-apiserver", "kube-controller-manager",
                                                         "kube-scheduler", "kube-proxy")]  # fmt: skip
    names += ["registry.k8s.io/etcd:3.5.15-0", "registry.k8s.io/coredns/coredns:v1.11.3", "registry.k8s.io/pause:3.9"]
    written = _image_layout(bundle, names)  # verify holds bundle.yaml's images to images/index.json
    record["images"] = [{"name": n, "digest": digest} for n, digest in written.pop("digests").items()]
    data = yaml.safe_dump(record, sort_keys=False).encode()
    (bundle / "bundle.yaml").write_bytes(data)
    files = dict(written["files"], **{"bundle.yaml": data})
    sums = {line[66:]: line[:64] for line in (bundle / "SHA256SUMS").read_text().splitlines() if line.strip()}
    sums = {path: digest for path, digest in sums.items() if not path.startswith("images/")}
    sums.update({path: hashlib.sha256(content).hexdigest() for path, content in files.items()})
    (bundle / "SHA256SUMS").write_text("".join(f"{sums[path]}  {path}\n" for path in sorted(sums)))


def _image_layout(bundle: Path, names: List[str]) -> dict:
    """images/ replaced by an OCI layout whose manifests are stand-ins (a --root run imports no image)."""
    layout = bundle / "images"
    subprocess.run(["rm", "-rf", str(layout)], check=True)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    files, digests, descriptors = {}, {}, []
    for name in names:
        blob = json.dumps({"schemaVersion": 2, "stand_in_for": name}).encode()
        digest = hashlib.sha256(blob).hexdigest()
        files[f"images/blobs/sha256/{digest}"] = blob
        digests[name] = f"sha256:{digest}"
        descriptors.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{digest}",
                            "size": len(blob), "annotations": {"io.containerd.image.name": name}})  # fmt: skip
    files["images/index.json"] = json.dumps({"schemaVersion": 2, "manifests": descriptors}).encode()
    files["images/oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    for relative, content in files.items():
        (bundle / relative).write_bytes(content)
    return {"files": files, "digests": digests}


def retargeted_tarball(bundle: Path, version: str, work: Path) -> Path:
    """A copy of the unpacked `bundle` retargeted to `version`, packed as k8s-bundle-VERSION-...tar."""
    name = bundle.name.replace(bundle.name.split("-")[2], version, 1)  # k8s-bundle-1.29.6-rocky9-amd64
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(bundle), str(work / name)], check=True)
    retarget(work / name, version)
    tarball = work / f"{name}.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(work), name], check=True)
    return tarball


def recorded_actions(log_text: str) -> List[str]:
    """What a --root run did or would do on the running cluster, in order (from /var/log/k8s-install.log):
    commands, restarts, operator notes."""
    found = []
    for line in log_text.splitlines():
        text = line.split(" ", 1)[1]
        if "would run: " in text:
            found.append(text.split("would run: ", 1)[1])
        elif text.startswith("skipped (offline root") and "systemctl restart" in text:
            found.append(text.split("): ", 1)[1])
        elif text.startswith("operator: "):
            found.append(text)
    return found
