"""Every stand-in of the lab, in one place. Everything else on a lab node is the real Debian 12 program.

STANDINS names each one, where it lives on the node and why it cannot be the real thing here:

- kubeadm, kubelet, kubectl: cannot be had here. One Python program (`PROGRAM`, installed in the cached
  root as /usr/lib/k8s-lab/standin) plays all three; the bundle's kubeadm/kubelet/kubectl RPMs (also
  stand-ins, see tests/lab/bundle.py) own /usr/bin/kubeadm, /usr/bin/kubelet, /usr/bin/kubectl as launchers
  of it, and kubelet.service, as the real RPMs do.
  * every call is recorded, one JSON line of argv, in /var/lib/k8s-lab/calls.jsonl;
  * `kubeadm init` signs an API server certificate (name "kubernetes") with the CA the installer placed,
    writes admin.conf, kubelet.conf and a kube-apiserver static "pod" manifest, restarts kubelet and waits
    for https://127.0.0.1:6443/healthz, as kubeadm does;
  * `kubeadm join` writes kubelet.conf; with `controlPlane:` in its config it first downloads the cluster
    CA from the API behind the VIP with the certificate key (what the real join does through the
    kubeadm-certs secret), then does what init does;
  * `kubeadm reset --force` stops kubelet and removes what init/join wrote;
  * the kube-apiserver "pod" manifest names the image of its release, as kubeadm's does (the installer's
    upgrade reads it): init's `kubernetesVersion`, else the version of the kubeadm package (`rpm -q`, or
    `dpkg-query` on the Debian lab's nodes, where the stand-ins are .debs: tests/lab/debian.py);
  * `kubeadm upgrade apply vX --yes` refuses a vX other than the installed kubeadm package's version (the
    real one refuses a release newer than itself), then rewrites the manifest for vX; `kubeadm upgrade node`
    on a control plane rewrites it for the kubeadm package's version; `kubeadm upgrade plan` only records;
  * the API stand-in answers `/version` with the release of its node's manifest; `kubectl get --raw PATH`
    asks the server of its --kubeconfig (kubelet.conf names the join endpoint, the VIP, as a real one does);
  * kubelet (the unit) serves the stand-in API server on :6443 once a kube-apiserver manifest exists,
    else idles: the real kubelet would crash-loop until kubeadm writes its config;
  * `kubectl apply -f F` remembers F's basename; `kubectl ... get daemonset calico-node` answers from that.
- modprobe (/usr/local/sbin/modprobe, ahead of kmod's on PATH): this kernel has no loadable modules at all
  (no /lib/modules, no /proc/modules) and a container may never load one. The stand-in records the module
  and makes /sys/module/NAME appear in the node's own copy of /sys/module (a folder the harness binds there,
  holding the names the host kernel really has), so the installer's check finds it loaded on the next run.
- host-wide sysctl keys (fs.*, kernel.*, vm.*, and the net.core keys that exist only in the host's network
  namespace): a container cannot set them without changing the host every node shares. See
  tests/lab/node.py (HOST_WIDE_SYSCTL_DIR): the harness binds a plain file of its own over each such key
  that the container would otherwise see read-only.
- buildkitd, buildctl, nerdctl, CNI plugins (the bundle's tarballs, tests/support/node_bundle.py): their
  release binaries are not obtainable here; the lab's buildkitd stays up as the daemon does.
- chronyd: runs with `-x` (serve and measure, never set the clock: the clock is the host's), from a
  harness drop-in; the real chrony.service skips itself in a container (ConditionCapability=CAP_SYS_TIME).
- containerd 2.x (the runtime line of 1.30 and 1.31): cannot be obtained on this machine. Every lab bundle,
  the upgrades' 1.29.15 and 1.30.14 included, carries Debian's real containerd 1.6 (with its ctr, shim and
  runc), its artifact labelled with that version, so the installer renders the configuration 1.6 reads and no
  runtime upgrade happens in the lab (tests/lab/bundle.py).
- RPMs of packages the node already has from Debian (chrony, keepalived, haproxy, socat, conntrack-tools,
  ...): stand-in RPMs owning only a marker file, so dnf installs them and the Debian programs stay
  (bundle.py); rocky-release (system-release = 9) is in the root's RPM database from the start (root.py).
"""

from __future__ import annotations

from typing import NamedTuple, Tuple


class StandIn(NamedTuple):
    name: str
    where: str
    why: str


STANDINS: Tuple[StandIn, ...] = (
    StandIn("kubeadm", "/usr/bin/kubeadm (RPM) -> /usr/lib/k8s-lab/standin", "not obtainable here"),
    StandIn("kubelet", "/usr/bin/kubelet + kubelet.service (RPM) -> /usr/lib/k8s-lab/standin", "not obtainable"),
    StandIn("kubectl", "/usr/bin/kubectl (RPM) -> /usr/lib/k8s-lab/standin", "not obtainable here"),
    StandIn("modprobe", "/usr/local/sbin/modprobe", "no loadable modules in this kernel; containers cannot load"),
    StandIn("host-wide sysctl keys", "files bound over /proc/sys/...", "would change the shared host kernel"),
    StandIn("buildkitd, buildctl, nerdctl", "the bundle's tarballs", "release binaries not obtainable here"),
    StandIn("chronyd -x", "chrony.service.d/k8s-lab.conf", "the clock is the host's; never set it"),
    StandIn("containerd 2.x (1.30, 1.31)", "Debian's containerd 1.6 in every lab bundle", "2.x not obtainable here"),
    StandIn("already-installed RPMs", "bundle RPMs owning a marker file", "the node has them from Debian"),
)

STANDIN_PATH = "/usr/lib/k8s-lab/standin"
CALLS_LOG = "/var/lib/k8s-lab/calls.jsonl"


def launcher(program: str) -> str:
    """What the stand-in RPM installs as /usr/bin/<program>."""
    return f'#!/bin/sh\nexec {STANDIN_PATH} {program} "$@"\n'


KUBELET_UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent (lab stand-in)
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

MODPROBE = """#!/bin/sh
# Lab stand-in for modprobe (see tests/lab/standins.py): this kernel cannot load modules.
set -eu
mkdir -p /var/lib/k8s-lab
for module in "$@"; do
    case "$module" in -*) continue ;; esac
    echo "$module" >> /var/lib/k8s-lab/modprobe.log
    mkdir -p "/sys/module/$module"
done
"""

BUILDKITD = """#!/bin/sh
# Lab stand-in for buildkitd (its release binary is not obtainable here): stays up, as the daemon does.
exec sleep infinity
"""


def chrony_dropin(config: str = "/etc/chrony.conf") -> str:
    """CHRONY_DROPIN for a node whose chrony.conf is `config` (Debian's is /etc/chrony/chrony.conf)."""
    return CHRONY_DROPIN.replace("-f /etc/chrony.conf", f"-f {config}").replace("EL9's /etc/chrony.conf", config)


CHRONY_DROPIN = """# Lab stand-in (tests/lab/standins.py): chronyd with -x serves and measures time but never sets the
# clock, which is the host's and shared by every node. The file is EL9's /etc/chrony.conf.
[Unit]
ConditionCapability=
[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd -x -f /etc/chrony.conf
"""

PROGRAM = r'''#!/usr/bin/python3
"""Lab stand-in for kubeadm, kubelet and kubectl (tests/lab/standins.py says what each does)."""
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

LAB = "/var/lib/k8s-lab"
PKI = "/etc/kubernetes/pki"
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
WRITTEN = ("/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf", MANIFEST,
           PKI + "/apiserver.crt", PKI + "/apiserver.key")


def record(argv):
    os.makedirs(LAB, exist_ok=True)
    with open(LAB + "/calls.jsonl", "a") as log:
        log.write(json.dumps(argv) + "\n")


def write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(text)
    os.chmod(path, mode)


def config_value(path, key):
    found = re.search(r"(?m)^\s*" + key + r":\s*\"?([^\"\s]+)", open(path).read())
    return found.group(1) if found else ""


def kubeconfig(user, server="127.0.0.1:6443"):
    return ("apiVersion: v1\nkind: Config\n# lab stand-in kubeconfig for %s\n"
            "clusters: [{name: lab, cluster: {server: 'https://%s'}}]\n" % (user, server))


def kubeadm_version():
    """The kubeadm package's version: the RPM's (EL9 lab), else the .deb's upstream part (Debian lab)."""
    found = subprocess.run(["rpm", "-q", "--qf", "%{VERSION}", "kubeadm"], capture_output=True, text=True)
    if found.returncode == 0:
        return found.stdout.strip()
    found = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "kubeadm"], capture_output=True, text=True)
    return found.stdout.strip().split("-")[0] if found.returncode == 0 else ""


def write_manifest(version):
    """A static pod manifest of the shape kubeadm writes, naming the release's kube-apiserver image."""
    write(MANIFEST, "# lab stand-in: kubelet serves the API stand-in while this file exists\n"
          "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\n"
          "spec:\n  containers:\n  - name: kube-apiserver\n"
          "    image: registry.k8s.io/kube-apiserver:v%s\n" % version.lstrip("v"), 0o644)


def manifest_version():
    found = re.search(r"kube-apiserver:(v[0-9.]+)", open(MANIFEST).read()) if os.path.exists(MANIFEST) else None
    return found.group(1) if found else ""


def api_server_files(version):
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
                    "-keyout", PKI + "/apiserver.key", "-out", LAB + "/apiserver.csr"], check=True,
                   capture_output=True)
    with open(LAB + "/san.ext", "w") as ext:
        ext.write("subjectAltName=DNS:kubernetes,DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", LAB + "/apiserver.csr", "-CA", PKI + "/ca.crt",
                    "-CAkey", PKI + "/ca.key", "-CAcreateserial", "-days", "30", "-extfile", LAB + "/san.ext",
                    "-out", PKI + "/apiserver.crt"], check=True, capture_output=True)
    write("/etc/kubernetes/admin.conf", kubeconfig("kubernetes-admin"))
    write_manifest(version)
    subprocess.run(["systemctl", "restart", "kubelet"], check=True)
    deadline = time.monotonic() + 60
    context = ssl.create_default_context(cafile=PKI + "/ca.crt")
    context.check_hostname = False
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen("https://127.0.0.1:6443/healthz", context=context, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    sys.exit("[standin kubeadm] the API server stand-in did not answer within 60 s")


def download_certs(join_config):
    """What kubeadm join --control-plane fetches from the cluster with the certificate key."""
    endpoint = config_value(join_config, "apiServerEndpoint")
    key = config_value(join_config, "certificateKey")
    context = ssl._create_unverified_context()
    url = "https://%s/standin/kubeadm-certs?key=%s" % (endpoint, key)
    with urllib.request.urlopen(url, context=context, timeout=10) as answer:
        certs = json.load(answer)
    write(PKI + "/ca.crt", certs["ca.crt"], 0o644)
    write(PKI + "/ca.key", certs["ca.key"])


def kubeadm(args):
    command = args[0] if args else ""
    if args[:2] == ["init", "phase"]:  # join-info: upload-certs again; only its --config is read
        if "--config" in args and not os.path.exists(args[args.index("--config") + 1]):
            config = args[args.index("--config") + 1]
            print("unable to read config from %r: open %s: no such file or directory" % (config, config),
                  file=sys.stderr)
            return 1
        return 0
    if command == "init":
        write("/etc/kubernetes/kubelet.conf", kubeconfig("kubelet"))
        config = args[args.index("--config") + 1]
        api_server_files(config_value(config, "kubernetesVersion") or kubeadm_version())
    elif command == "join":
        config = args[args.index("--config") + 1]
        if re.search(r"(?m)^controlPlane:", open(config).read()):
            download_certs(config)
            api_server_files(kubeadm_version())
        write("/etc/kubernetes/kubelet.conf", kubeconfig("kubelet", config_value(config, "apiServerEndpoint")))
    elif args[:2] == ["upgrade", "apply"]:
        wanted, own = args[2].lstrip("v"), kubeadm_version()
        if wanted != own:
            print("[standin kubeadm] the specified version to upgrade to v%s is not the kubeadm version v%s"
                  % (wanted, own), file=sys.stderr)
            return 1
        write_manifest(wanted)
    elif args[:2] == ["upgrade", "node"] and os.path.exists(MANIFEST):
        write_manifest(kubeadm_version())
    elif command == "reset":
        subprocess.run(["systemctl", "stop", "kubelet"], check=False)
        for path in WRITTEN:
            if os.path.exists(path):
                os.remove(path)
    elif command == "token" and args[1:2] == ["create"]:
        print(args[2] if len(args) > 2 and not args[2].startswith("-") else "abcdef.0123456789abcdef")
    return 0


def kubectl(args):
    applied = LAB + "/applied"
    if "apply" in args:
        os.makedirs(applied, exist_ok=True)
        source = args[args.index("-f") + 1]
        shutil.copy(source, os.path.join(applied, os.path.basename(source)))
        print("applied (lab stand-in)")
        return 0
    if "get" in args and "--raw" in args:
        return raw_get(args)
    if "get" in args and "daemonset" in args:
        if os.path.exists(os.path.join(applied, "calico.yaml")):
            print("calico-node (lab stand-in)")
            return 0
        print('Error from server (NotFound): daemonsets.apps "calico-node" not found', file=sys.stderr)
        return 1
    return 0


def raw_get(args):
    """`kubectl --kubeconfig=K get --raw PATH`: GET PATH from K's server (the stand-in does not check its
    certificate), print the body; exit 1 when it does not answer."""
    config = next((a.split("=", 1)[1] for a in args if a.startswith("--kubeconfig=")), "/etc/kubernetes/admin.conf")
    server = re.search(r"server: '(https://[^']+)'", open(config).read()).group(1)
    path = args[args.index("--raw") + 1]
    try:
        with urllib.request.urlopen(server + path, context=ssl._create_unverified_context(), timeout=10) as answer:
            print(answer.read().decode())
    except OSError as error:
        print("The connection to the server %s was refused: %s" % (server, error), file=sys.stderr)
        return 1
    return 0


def set_process_name(name):
    """What ps and /proc/PID/comm show (the installer's preflight knows the cluster's own listeners)."""
    import ctypes

    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME


def kubelet(args):
    """Idle until kubeadm writes the API server manifest, then run the API stand-in on :6443 as a
    process named kube-apiserver (the real kubelet runs it as a static pod)."""
    set_process_name("kubelet")
    while not (os.path.exists(MANIFEST) and os.path.exists(PKI + "/apiserver.crt")):
        time.sleep(1)
    child = os.fork()
    if child:
        _, status = os.waitpid(child, 0)
        return 1
    set_process_name("kube-apiserver")
    # die with the kubelet: systemd in the lab container cannot kill a unit's cgroup ("Failed to kill
    # control group ... Input/output error"), so a restart would leave this child holding :6443
    import ctypes

    ctypes.CDLL(None).prctl(1, 15, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGTERM
    if os.getppid() == 1:
        return 1  # the kubelet already went

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/standin/kubeadm-certs"):
                key = self.path.partition("key=")[2]
                wanted = config_value("/etc/k8s-install/kubeadm-init.yaml", "certificateKey")
                if not wanted or key != wanted:
                    self.send_error(403)
                    return
                body = json.dumps({name: open(PKI + "/" + name).read() for name in ("ca.crt", "ca.key")})
            elif self.path == "/version":
                body = json.dumps({"gitVersion": manifest_version()})
            else:
                body = "ok"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(PKI + "/apiserver.crt", PKI + "/apiserver.key")
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 6443), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main():
    program, args = sys.argv[1], sys.argv[2:]
    record([program] + args)
    return {"kubeadm": kubeadm, "kubectl": kubectl, "kubelet": kubelet}[program](args)


if __name__ == "__main__":
    sys.exit(main())
'''
