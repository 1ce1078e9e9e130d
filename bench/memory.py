#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The controller's memory with many or large Sandboxes: peak RSS (VmHWM)
while it reconciles them, and again when it starts over them (its LIST and
first pass), with the controller in a memory cgroup of the Deployment's
limit where this machine has one (its OOM kills and peak usage counted).

    bench/memory.py                       200 largest Sandboxes, then 10,000 small ones
    bench/memory.py --large 200 --small 0
    bench/memory.py --small 10000 --paused   small ones without pods

It reuses a running local control plane (make cluster-up) or brings one up
(KWOK_NODES enough for the small ones' pods, 5000 a node). The largest
Sandbox is the e2e suite's (tests/e2e/test_security.py: about 1.4 MB, every
field at the schema's limits, paused). Figures, not a test."""

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("KAGE_CLUSTER_DIR", REPO / ".cluster"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
os.environ.setdefault("KAGE_CLUSTER_DIR", str(STATE))

from conftest import (Controller, Kubectl, MemoryCgroup, deployment_memory_limit,  # noqa: E402
                      free_port, install_kage, peak_rss, read_env, wait_for)

MiB = 1 << 20


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def large_sandbox(name):
    return {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox", "metadata": {"name": name},
            "spec": {"image": "python:3.12-slim", "paused": True,
                     "command": ["c" * 4096] * 64, "args": ["a" * 4096] * 64,
                     "env": [{"name": f"E{i}", "value": "v" * 32768} for i in range(26)]}}


def small_sandbox(name, paused):
    spec = {"image": "python:3.12-slim", "resources": {"cpu": "100m", "memory": "128Mi"},
            "egress": {"allow": [{"cidr": "203.0.113.0/24", "ports": [{"port": 443}]}]}}
    if paused:
        spec["paused"] = True
    return {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox", "metadata": {"name": name},
            "spec": spec}


def phases(kubectl, ns):
    """name -> status.phase, from the API server's table (no client reads
    the objects themselves)."""
    lines = kubectl.run("-n", ns, "get", "sandboxes", timeout=600).stdout.splitlines()
    if not lines:
        return {}
    start, end = lines[0].index("PHASE"), lines[0].index("REASON")
    return {line.split()[0]: line[start:end].strip() for line in lines[1:] if line.strip()}


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {k: float(v) for k, _, v in
            (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")}


def rss(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.q, self.limit = deployment_memory_limit()
        self.cgroup, self.why = (None, "--no-cgroup") if args.no_cgroup else \
            MemoryCgroup.make(self.limit)
        env = read_env()
        self.kubectl = Kubectl(env["BIN_DIR"], STATE / "kubeconfig")
        install_kage(self.kubectl)
        self.work = STATE / "bench-memory"
        self.work.mkdir(exist_ok=True)
        self.kc = self.work / "controller.kubeconfig"
        sh(str(REPO / "tests/cluster/sa-kubeconfig.sh"), "kage-system", "kage-controller",
           str(self.kc), "2h")
        self.ctl = None

    def start(self):
        self.port = free_port()
        if self.cgroup:
            self.cgroup.reset_peak()
        self.ctl = Controller(self.kc, self.work / "controller.log", "--http-addr",
                              f"127.0.0.1:{self.port}", cgroup=self.cgroup).start()
        self.ctl.wait_synced(timeout=300)

    def stop(self):
        if self.ctl:
            assert self.ctl.stop() == 0, "the controller did not stop cleanly"
            self.ctl = None

    def figures(self):
        pid = self.ctl.proc.pid
        alive = self.ctl.proc.poll() is None
        out = {"alive": alive, "peak_rss": peak_rss(pid) if alive else None,
               "rss": rss(pid) if alive else None}
        if self.cgroup:
            out["cgroup_peak"] = self.cgroup.read("memory.max_usage_in_bytes")
            out["oom_kills"] = self.cgroup.oom_kills()
        return out

    def first_pass(self, n):
        wait_for(lambda: (lambda m: m["kage_queue_depth"] == 0 and m["kage_queue_in_flight"] == 0
                          and m["kage_reconciles_total"] >= n)(metrics(self.port)),
                 timeout=1800, interval=0.5, what="the controller's first pass")

    def case(self, label, n, make, want_phase):
        ns = f"bench-mem-{label}-{int(time.time())}"
        self.kubectl.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
        rows = []
        try:
            self.start()
            t0 = time.monotonic()
            chunk = 20 if label == "large" else 500
            for first in range(0, n, chunk):
                self.kubectl.run("-n", ns, "create", "-f", "-", timeout=1200, input=json.dumps(
                    {"apiVersion": "v1", "kind": "List",
                     "items": [make(f"s-{i:05d}") for i in range(first, min(first + chunk, n))]}))
            wait_for(lambda: list(phases(self.kubectl, ns).values()).count(want_phase) == n,
                     timeout=3600, interval=2, what=f"{n} {label} sandboxes {want_phase}")
            rows.append((f"{n} {label}: created and reconciled ({time.monotonic() - t0:.0f} s)",
                         self.figures()))
            self.stop()
            t0 = time.monotonic()
            self.start()
            self.first_pass(n)
            time.sleep(self.args.settle)
            rows.append((f"{n} {label}: a fresh start over them "
                         f"({time.monotonic() - t0:.0f} s to the first pass)", self.figures()))
        finally:
            self.stop()
            if not self.args.keep:
                self.kubectl.run("delete", "namespace", ns, "--wait=false", check=False)
        return rows


def show(rows, q, limit, where):
    print(f"controller memory limit: {q} (manifests/deployment.yaml); {where}")
    print(f"{'case':<62} {'peak RSS':>9} {'RSS':>8} {'cgroup peak':>12} {'OOM kills':>9}")
    for label, f in rows:
        cg = f"{f['cgroup_peak'] / MiB:9.1f} MiB" if "cgroup_peak" in f else "—"
        oom = str(f.get("oom_kills", "—"))
        if not f["alive"]:
            print(f"{label:<62} {'died':>9}")
            continue
        print(f"{label:<62} {f['peak_rss'] / MiB:5.1f} MiB {f['rss'] / MiB:4.1f} MiB "
              f"{cg:>12} {oom:>9}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", type=int, default=200, help="largest Sandboxes (default 200)")
    ap.add_argument("--small", type=int, default=10000, help="small Sandboxes (default 10000)")
    ap.add_argument("--paused", action="store_true", help="small ones paused: no pods")
    ap.add_argument("--settle", type=float, default=5, help="seconds before the RSS after a start")
    ap.add_argument("--keep", action="store_true", help="keep the namespaces")
    ap.add_argument("--no-cgroup", action="store_true", help="no memory cgroup")
    args = ap.parse_args()
    nodes = max(1, math.ceil(args.small / 5000)) if args.small and not args.paused else 1
    started = subprocess.run([str(REPO / "tests/cluster/up.sh"), "--check"],
                             capture_output=True).returncode != 0
    if started:
        sh(str(REPO / "tests/cluster/up.sh"), env={**os.environ, "KWOK_NODES": str(nodes)})
    elif int(read_env().get("KWOK_NODES", "1")) < nodes:
        sys.exit(f"the running cluster has too few kwok nodes for {args.small} pods: "
                 f"make cluster-down, then KWOK_NODES={nodes} make cluster-up (or --paused)")
    b = Bench(args)
    where = f"in cgroup {b.cgroup.path}" if b.cgroup else f"no cgroup ({b.why})"
    rows = []
    try:
        if args.large:
            rows += b.case("large", args.large, large_sandbox, "Paused")
        if args.small:
            rows += b.case("small", args.small, lambda n: small_sandbox(n, args.paused),
                           "Paused" if args.paused else "Running")
    finally:
        b.stop()
        if b.cgroup:
            b.cgroup.remove()
        if started:
            sh(str(REPO / "tests/cluster/down.sh"))
    show(rows, b.q, b.limit, where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
