#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Applies N Sandboxes at once against the local control plane and prints
how long until every one is Ready (and correct), and what the controller
cost: CPU seconds and peak RSS from /proc, API requests from its log.

    bench/sandboxes.py [N]        (default 100; make bench-sandboxes)

Each sandbox's own time from creation to Ready is timed (from just before
its POST to the watch event that first shows it Ready), as bench/scale.py
does, and its p50 and p99 printed. KAGE_BENCH_CONTROLLER=path runs another build of
the controller (to compare two builds on one control plane).

It reuses a running local control plane (make up) or brings one up, and a
running controller or starts one under its ServiceAccount. Figures, not a
test: it fails only when a sandbox does not become Ready and correct."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".cluster"
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "bench"))
from scale_api import Api, Watcher, create_all  # noqa: E402


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def proc_figures(pid):
    """CPU seconds (user + system) and peak RSS in MiB of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines()
               if l.startswith("VmHWM:"))
    return cpu, int(hwm.split()[1]) / 1024


def condition_ready(obj):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    started_cluster = subprocess.run([str(REPO / "tests/cluster/up.sh"), "--check"]).returncode != 0
    if started_cluster:
        sh(str(REPO / "tests/cluster/up.sh"))
    from conftest import Kubectl, install_kage, read_env, Controller, wait_for
    env = read_env()
    kubectl = Kubectl(env["BIN_DIR"], STATE / "kubeconfig")
    api = Api(json.loads(kubectl.run("config", "view", "--raw", "--minify", "-o", "json").stdout))
    install_kage(kubectl)
    work = STATE / "bench"
    work.mkdir(exist_ok=True)
    kc = work / "controller.kubeconfig"
    sh(str(REPO / "tests/cluster/sa-kubeconfig.sh"), "kage-system", "kage-controller", str(kc), "2h")
    log = work / "controller.log"
    log.unlink(missing_ok=True)
    binary = os.environ.get("KAGE_BENCH_CONTROLLER") or None
    ctl = Controller(kc, log, "--http-addr", "", binary=binary).start()
    try:
        ctl.wait_synced()
        ns = f"bench-{int(time.time())}"
        kubectl.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
        items = [{
            "apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
            "metadata": {"name": f"sbx-{i:05d}"},
            "spec": {"image": "python:3.12-slim", "resources": {"cpu": "100m", "memory": "128Mi"},
                     "egress": {"allow": [{"cidr": "203.0.113.0/24",
                                           "ports": [{"port": 443}]}]}},
        } for i in range(n)]
        watch = Watcher(api, f"/apis/kage.dev/v1alpha1/namespaces/{ns}/sandboxes",
                        condition_ready, '"status":"True"')
        watch.start()
        watch.listed.wait()
        cpu0, _ = proc_figures(ctl.proc.pid)
        t0 = time.monotonic()
        # At once: 32 connections, as bench/scale.py (kubectl would create
        # them one after another, over a minute for 1,000 on a busy host).
        started, _ = create_all(api, [(s["metadata"]["name"],
                          [(f"/apis/kage.dev/v1alpha1/namespaces/{ns}/sandboxes", s)])
                         for s in items])
        t_applied = time.monotonic() - t0

        def all_ready():
            sbxs = kubectl.json("-n", ns, "get", "sandboxes")["items"]
            ready = [s for s in sbxs if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in s.get("status", {}).get("conditions", []))]
            return len(ready) == n
        wait_for(all_ready, timeout=600, interval=0.5, what=f"{n} Ready sandboxes")
        t_ready = time.monotonic() - t0
        watch.wait_all([s["metadata"]["name"] for s in items], 30)
        watch.stop()
        own = [watch.ready[k] - started[k] for k in watch.ready if k in started]
        since_t0 = [watch.ready[k] - t0 for k in watch.ready]
        cpu1, hwm = proc_figures(ctl.proc.pid)

        pods = kubectl.json("-n", ns, "get", "pods")["items"]
        pols = kubectl.json("-n", ns, "get", "networkpolicies")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"
                   and p["spec"].get("runtimeClassName") == "kata-fc"]
        assert len(running) == n, f"{len(running)} running kata pods, want {n}"
        assert len(pols) == n + 1, f"{len(pols)} policies, want {n} + baseline"
        writes = [l for l in ctl.log_lines() if l.get("msg") == "created pod"]
        print(f"kage: {n} sandboxes applied at once")
        print(f"  created in the API server:  {t_applied:6.2f} s")
        print(f"  all Ready and correct:      {t_ready:6.2f} s")
        print(f"  create->Ready per sandbox:  p50 {pct(own, 50):6.2f} s  p99 {pct(own, 99):6.2f} s"
              f"  ({len(own)} timed)")
        print(f"  from the first create:      p50 {pct(since_t0, 50):6.2f} s"
              f"  p99 {pct(since_t0, 99):6.2f} s")
        print(f"  controller CPU:             {cpu1 - cpu0:6.2f} s")
        print(f"  controller peak RSS:        {hwm:6.1f} MiB")
        print(f"  pods created:               {len(writes)}")
        kubectl.run("delete", "namespace", ns, "--wait=false")
    finally:
        code = ctl.stop()
        for line in ctl.log_lines():
            if line.get("msg") == "stopped":
                print("  controller totals:          " + ", ".join(
                    f"{k} {line.get(k)}" for k in
                    ("reconciles", "creates", "updates", "deletes", "statusWrites")))
        if started_cluster:
            sh(str(REPO / "tests/cluster/down.sh"))
    return code


if __name__ == "__main__":
    sys.exit(main())
