#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The side-by-side scale benchmark: kage against its peer, kubernetes-sigs
agent-sandbox (at its defaults and tuned), and a floor with no controller.

    bench/scale.py [--sizes 100,1000,5000] [--startup 10000] [--idle 60] [--out bench/results]

For each N and each system, in a fresh namespace (Pod Security restricted)
with only that system's controller running: N sandboxes are created at once
by a parallel client (bench/scale_api.py), and a watch stamps, per name,
when it first shows Ready=True. Reported: time from the first create to the
last Ready, per-sandbox create-to-Ready p50/p99, the controller's CPU
seconds and peak RSS (/proc), and the API requests it made (its own
metrics). The floor creates the pods and NetworkPolicies itself and waits
for the pods to run. The startup case starts each controller fresh over
existing Ready sandboxes and measures until its caches are synced and its
first pass is done, and its memory. The idle case (first, on an empty
cluster) measures each controller's RSS, CPU and API requests over a minute
with nothing to do.

It reuses a running local control plane (KAGE_CLUSTER_DIR or .cluster) or
brings one up with enough kwok nodes, and takes down only what it started.
The peer is fetched and built by bench/peer.sh from the Go module proxy into
a cache outside the repo. Output: bench/results/scale-<date>.md, .json, .png.
Figures, not a test."""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "bench"))
STATE = Path(os.environ.get("KAGE_CLUSTER_DIR", REPO / ".cluster"))

from scale_api import Api, Watcher, create_all  # noqa: E402

PODS_PER_NODE = 5000  # tests/cluster/up.sh gives every kwok node this many
IMAGE = "python:3.12-slim"
KEEP_ALIVE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
RESOURCES = {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "2Gi"}
PEER_GROUP = "agents.x-k8s.io"
PEER_VERSION = "v1beta1"  # what v0.5.2 and v1.0.1 store and reconcile
PEER_DEFAULT = "v1.0.1"  # bench/peer.sh's default

SYSTEMS = {
    "kage": "kage",
    "peer-defaults": "agent-sandbox (defaults)",
    "peer-tuned": "agent-sandbox (tuned)",
    "floor": "floor (no controller)",
}
PEER_ARGS = {
    "peer-defaults": [],
    # v1.0.1's own load-test recipe (dev/load-test/test-recipes: 1000 Sandbox
    # workers, no client-side rate limit, which is already the default) and
    # the two connection flags its -help documents as the bound on a burst:
    # one HTTP/2 connection carries at most 100 requests at once. Flags the
    # version does not have are left out (Peer.make).
    "peer-tuned": ["--sandbox-concurrent-workers=1000", "--api-connections=4",
                   "--separate-watch-connection=true"],
}
# Flags given to every peer run, where the version has them: no leader
# election, no webhook (v0.5.2 has --enable-webhook; v1.0.1 has no webhook
# flag and serves none), metrics and probes on loopback ports.
PEER_BASE_ARGS = ["--leader-elect=false", "--enable-webhook=false", "--manage-webhook-certs=false"]


def log(msg):
    print(f"scale: {msg}", file=sys.stderr, flush=True)


def sh(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


# --- processes ---------------------------------------------------------------

def result_stem(out_dir, name, now):
    """bench/results/<name>-<date>, or -2, -3... when a report of that day
    exists: the path without suffix, the directory made."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    day = now.strftime('%Y-%m-%d')
    stem = out / f"{name}-{day}"
    i = 2
    while stem.with_suffix(".md").exists():
        stem = out / f"{name}-{day}-{i}"
        i += 1
    return stem


def proc_figures(pid):
    """CPU seconds (user + system), peak RSS and RSS in MiB of a process."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = {l.split(":")[0]: l.split()[1:] for l in
              Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in l}
    return cpu, int(status["VmHWM"][0]) / 1024, int(status["VmRSS"][0]) / 1024


def scrape(port):
    """A Prometheus text page as [(name, {label: value}, value)]."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, _, rest = head.partition("{")
            for part in rest.rstrip("}").split('",'):
                if "=" in part:
                    k, _, v = part.partition("=")
                    labels[k.strip(",")] = v.strip('"')
        try:
            out.append((name, labels, float(value)))
        except ValueError:
            pass
    return out


def msum(metrics, metric, by=None, **match):
    """Sum of a metric's samples whose labels match; by=label: {value: sum}."""
    total, groups = 0.0, {}
    for n, labels, v in metrics:
        if n == metric and all(labels.get(k) == w for k, w in match.items()):
            total += v
            if by:
                groups[labels.get(by, "")] = groups.get(labels.get(by, ""), 0) + v
    return groups if by else total


class System:
    """One controller under its own ServiceAccount, with its metrics port."""

    synced_marker = ""

    def __init__(self, bench, key):
        self.bench, self.key, self.ctl = bench, key, None
        self.log = None

    def log_path(self):
        """A log file of its own for every start (read as it grows)."""
        if self.log is None:
            self.bench.starts += 1
            self.log = self.bench.work / f"{self.bench.starts:02d}-{self.key}.log"
            self.log_offset, self.log_tail, self.seen_synced = 0, b"", False
        return self.log

    def start(self, ctl=None):
        """Starts the controller (made by make() unless given)."""
        self.ctl = (ctl or self.make()).start()
        return self

    def stop(self):
        if self.ctl is None:
            return 0
        code = self.ctl.stop()
        self.ctl = None
        return code

    def pid(self):
        return self.ctl.proc.pid

    def alive(self):
        return self.ctl is not None and self.ctl.proc.poll() is None

    def metrics(self):
        return scrape(self.port)

    def synced(self):
        """Whether the log shows the synced marker yet; reads only what is new."""
        if not self.seen_synced:
            with open(self.log, "rb") as f:
                f.seek(self.log_offset)
                chunk = f.read()
            self.log_offset += len(chunk)
            self.seen_synced = self.synced_marker.encode() in self.log_tail + chunk
            self.log_tail = chunk[-200:]
        return self.seen_synced

    def wait_synced(self, timeout=300):
        self.bench.wait_for(lambda: self.synced() or not self.alive(), timeout=timeout,
                            interval=0.1, what=f"{self.key}'s caches to sync")
        if not self.alive():
            raise AssertionError(f"{self.key} exited; see {self.log_path()}")


class Kage(System):
    synced_marker = '"caches synced"'

    def make(self, *extra):
        from conftest import Controller, free_port
        kc = self.bench.work / "kage.kubeconfig"
        sh(REPO / "tests/cluster/sa-kubeconfig.sh", "kage-system", "kage-controller", kc, "12h")
        self.port = free_port()
        return Controller(kc, self.log_path(), "--http-addr", f"127.0.0.1:{self.port}", *extra)

    @staticmethod
    def requests(m):
        return msum(m, "kage_api_requests_total", by="verb")

    @staticmethod
    def codes(m):
        return msum(m, "kage_api_responses_total", by="code")

    @staticmethod
    def reconciles(m):
        return msum(m, "kage_reconciles_total")

    def pass_done(self, m, n):
        return (msum(m, "kage_queue_depth") == 0 and msum(m, "kage_queue_in_flight") == 0
                and msum(m, "kage_reconciles_total") >= n)


class Peer(System):
    synced_marker = '"Starting workers"'

    def make(self):
        from conftest import Controller, free_port

        class PeerController(Controller):
            def start(ctl):
                ctl.mark = len(ctl.log().splitlines()) if ctl.log_path.exists() else 0
                ctl.log_file = open(ctl.log_path, "a")
                ctl.proc = subprocess.Popen(
                    [str(self.bench.peer_bin), "--kubeconfig", str(ctl.kubeconfig), *ctl.args],
                    stdout=ctl.log_file, stderr=subprocess.STDOUT)
                return ctl

        kc = self.bench.work / "peer.kubeconfig"
        sh(REPO / "tests/cluster/sa-kubeconfig.sh", "agent-sandbox-system",
           "agent-sandbox-controller", kc, "12h")
        self.port = free_port()
        args = [*PEER_BASE_ARGS, f"--metrics-bind-address=127.0.0.1:{self.port}",
                f"--health-probe-bind-address=127.0.0.1:{free_port()}", *PEER_ARGS[self.key]]
        accepted = peer_flags(self.bench.peer_bin)
        return PeerController(kc, self.log_path(),
                              *[a for a in args if a.split("=", 1)[0].lstrip("-") in accepted])

    @staticmethod
    def requests(m):
        return msum(m, "rest_client_requests_total", by="method")

    @staticmethod
    def codes(m):
        return msum(m, "rest_client_requests_total", by="code")

    @staticmethod
    def reconciles(m):
        return msum(m, "controller_runtime_reconcile_total", controller="sandbox")

    def pass_done(self, m, n):
        return (msum(m, "workqueue_depth", name="sandbox") == 0
                and msum(m, "controller_runtime_active_workers", controller="sandbox") == 0
                and self.reconciles(m) >= n)


def peer_flags(binary, _cache={}):
    """The flags the peer's controller accepts, from its -help output (Go's
    flag package: one "  -name type" line per flag, on stderr)."""
    if binary not in _cache:
        out = subprocess.run([str(binary), "-help"], capture_output=True, text=True, timeout=60)
        _cache[binary] = {l.split()[0].lstrip("-") for l in (out.stderr + out.stdout).splitlines()
                          if l.startswith("  -")}
        if "kubeconfig" not in _cache[binary]:
            raise AssertionError(f"no flags in {binary} -help: {out.stderr[:300]!r}")
    return _cache[binary]


# --- objects -----------------------------------------------------------------

def kage_sandbox(name):
    return {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox", "metadata": {"name": name},
            "spec": {"image": IMAGE, "resources": {"cpu": "100m", "memory": "128Mi"}}}


def pod_spec():
    """What kage renders for kage_sandbox() (the default class, kata-fc)."""
    return {
        "runtimeClassName": "kata-fc", "restartPolicy": "Never",
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "sandbox", "image": IMAGE, "command": KEEP_ALIVE,
            "resources": {"requests": RESOURCES, "limits": RESOURCES},
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
        }],
    }


def peer_sandbox(name):
    return {"apiVersion": f"{PEER_GROUP}/{PEER_VERSION}", "kind": "Sandbox",
            "metadata": {"name": name}, "spec": {"podTemplate": {"spec": pod_spec()}}}


def floor_pod(name):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"kage.dev/sandbox": name,
                                                  "app.kubernetes.io/managed-by": "kage"}},
            "spec": pod_spec()}


def floor_policy(name):
    """kage's policy for a sandbox without egress rules: DNS only."""
    dns = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": {"kage.dev/sandbox": name,
                                                  "app.kubernetes.io/managed-by": "kage"}},
            "spec": {"podSelector": {"matchLabels": {"kage.dev/sandbox": name}},
                     "policyTypes": ["Ingress", "Egress"],
                     "egress": [{"ports": dns, "to": [{
                         "namespaceSelector": {"matchLabels": {
                             "kubernetes.io/metadata.name": "kube-system"}},
                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]}]}}


def floor_baseline():
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "kage-baseline", "labels": {"app.kubernetes.io/managed-by": "kage"}},
            "spec": {"podSelector": {"matchExpressions": [
                {"key": "kage.dev/sandbox", "operator": "Exists"}]},
                "policyTypes": ["Ingress", "Egress"]}}


def condition_ready(obj):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_running(obj):
    return (obj.get("status") or {}).get("phase") == "Running"


def count(quantity):
    """A count as a Kubernetes quantity ("5k", "110")."""
    mult = {"k": 10**3, "M": 10**6, "G": 10**9}
    q = str(quantity)
    return int(float(q[:-1]) * mult[q[-1]]) if q and q[-1] in mult else int(q)


def percentile(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


# --- the benchmark -----------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.started_cluster = False
        self.namespaces = []
        self.running = None
        self.watchers = []
        self.starts = 0

    def wait_for(self, predicate, timeout, interval=0.25, what="condition"):
        from conftest import wait_for
        return wait_for(predicate, timeout=timeout, interval=interval, what=what)

    # -- set-up --
    def cluster(self, need_pods):
        nodes = max(int(os.environ.get("KWOK_NODES") or 0), math.ceil(need_pods / 2500), 1)
        env = dict(os.environ, KAGE_CLUSTER_DIR=str(STATE))
        if subprocess.run([REPO / "tests/cluster/up.sh", "--check"], env=env).returncode != 0:
            log(f"bringing up a local control plane in {STATE} with {nodes} kwok nodes")
            env["KWOK_NODES"] = str(nodes)
            self.started_cluster = True
            sh(REPO / "tests/cluster/up.sh", env=env)
        else:
            log(f"reusing the local control plane in {STATE}")
        from conftest import Kubectl, read_env
        self.env = read_env()
        self.kubectl = Kubectl(self.env["BIN_DIR"], STATE / "kubeconfig")
        config = json.loads(self.kubectl.run("config", "view", "--raw", "--minify", "-o", "json").stdout)
        self.api = Api(config)
        room = sum(count(n["status"]["allocatable"].get("pods", "0"))
                   for n in self.api.get("/api/v1/nodes")["items"])
        if room < need_pods:
            raise SystemExit(f"scale: the cluster has room for {room} pods, the benchmark needs "
                             f"{need_pods}: restart it with KWOK_NODES={nodes}")
        pid = STATE / "pids" / "kage-controller.pid"
        try:
            cmd = Path(f"/proc/{pid.read_text().strip()}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            cmd = ""
        if "kage-controller" in cmd and str(STATE) in cmd:
            raise SystemExit("scale: a kage-controller of `make up` runs against this cluster: "
                             "it would reconcile the benchmark's sandboxes (make down first)")
        self.work = STATE / "bench-scale"
        self.work.mkdir(exist_ok=True)

    def install(self, peer=True):
        from conftest import install_kage
        install_kage(self.kubectl)
        if peer:
            self.install_peer()

    def install_peer(self):
        out = sh(REPO / "bench/peer.sh", self.args.peer_version).stdout
        kv = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
        self.peer_bin, self.peer_dir = Path(kv["BIN"]), Path(kv["DIR"])
        # The peer's CRD from the module cache. v0.5.2's has a conversion
        # webhook, which cannot run here (no serving certificates): conversion
        # "None" instead, as only v1beta1, the storage version, is used.
        # v1.0.1's has only v1beta1 and no webhook. Its extensions' CRDs
        # (SandboxClaim, SandboxTemplate, SandboxWarmPool) are not needed:
        # their controllers run only with --extensions.
        crd = json.loads(self.kubectl.run(
            "create", "--dry-run=client", "-o", "json", "-f",
            str(self.peer_dir / "k8s/crds/agents.x-k8s.io_sandboxes.yaml")).stdout)
        if (crd["spec"].get("conversion") or {}).get("strategy") == "Webhook":
            crd["spec"]["conversion"] = {"strategy": "None"}
        self.kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "-",
                         input=json.dumps(crd))
        # Its ClusterRole as generated from its kubebuilder markers, bound to
        # its own ServiceAccount (the module's k8s/controller.yaml does the same).
        self.kubectl.run("apply", "-f", str(self.peer_dir / "k8s/rbac.generated.yaml"))
        self.kubectl.apply({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "agent-sandbox-system"}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                "name": "agent-sandbox-controller", "namespace": "agent-sandbox-system"}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "agent-sandbox-controller"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "agent-sandbox-controller"},
             "subjects": [{"kind": "ServiceAccount", "name": "agent-sandbox-controller",
                           "namespace": "agent-sandbox-system"}]}]})
        self.kubectl.run("wait", "--for=condition=Established",
                         f"crd/sandboxes.{PEER_GROUP}", "--timeout=60s")

    # -- namespaces --
    def namespace(self, prefix):
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": {
                            "pod-security.kubernetes.io/enforce": "restricted"}}})
        self.namespaces.append(name)
        # Pods wait for the namespace's default ServiceAccount (admission).
        self.wait_for(lambda: self.api.request(
            "GET", f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
            timeout=60, what=f"the default ServiceAccount in {name}")
        return name

    def delete_namespace(self, name):
        t0 = time.monotonic()
        self.api.request("DELETE", f"/api/v1/namespaces/{name}")
        self.wait_for(lambda: self.api.request("GET", f"/api/v1/namespaces/{name}")[0] == 404,
                      timeout=self.args.timeout, interval=1, what=f"namespace {name} to go")
        self.namespaces.remove(name)
        return time.monotonic() - t0

    # -- one run --
    def system(self, key):
        return Kage(self, key) if key == "kage" else Peer(self, key)

    def paths(self, key, ns):
        if key == "kage":
            return f"/apis/kage.dev/v1alpha1/namespaces/{ns}/sandboxes", kage_sandbox
        return f"/apis/{PEER_GROUP}/{PEER_VERSION}/namespaces/{ns}/sandboxes", peer_sandbox

    def watch(self, path, ready, quick):
        w = Watcher(self.api, path, ready, quick)
        self.watchers.append(w)
        w.start()
        w.listed.wait()
        if w.error:
            raise w.error
        return w

    def unwatch(self, w):
        w.stop()
        self.watchers.remove(w)

    def create_and_wait(self, ns, key, n):
        """Creates n objects of a system at once and waits until all are ready.
        Returns the figures of the client side."""
        names = [f"sbx-{i:05d}" for i in range(n)]
        if key == "floor":
            w = self.watch(f"/api/v1/namespaces/{ns}/pods", pod_running, '"phase":"Running"')
            pol = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
            pods = f"/api/v1/namespaces/{ns}/pods"
            t0 = time.monotonic()
            sent = self.api.create(pol, floor_baseline())
            jobs = [(x, [(pol, floor_policy(x)), (pods, floor_pod(x))]) for x in names]
        else:
            path, make = self.paths(key, ns)
            w = self.watch(path, condition_ready, '"status":"True"')
            t0, sent = time.monotonic(), 0
            jobs = [(x, [(path, make(x))]) for x in names]
        started, more = create_all(self.api, jobs, self.args.client_threads)
        t_created = time.monotonic() - t0
        missing = w.wait_all(names, self.args.timeout)
        self.unwatch(w)
        first = min(started.values())
        lat = [w.ready[x] - started[x] for x in names if x in w.ready]
        out = {"n": n, "created_s": t_created, "client_requests": sent + more,
               "ready": n - len(missing)}
        if lat:
            out.update(p50_s=percentile(lat, 50), p99_s=percentile(lat, 99),
                       last_ready_s=max(w.ready[x] for x in names if x in w.ready) - first)
        if missing:
            out["all_ready_s"] = None
            out["timeout_s"] = self.args.timeout
            log(f"{key}: only {n - len(missing)} of {n} ready after {self.args.timeout} s")
        else:
            out["all_ready_s"] = out["last_ready_s"]
        return out

    def run(self, key, n):
        ns = self.namespace(f"scale-{key}-{n}")
        res = {"system": key, "load_before": os.getloadavg()[0]}
        sysm = None
        try:
            if key != "floor":
                sysm = self.running = self.system(key).start()
                sysm.wait_synced()
                m0 = sysm.metrics()
                cpu0, _, _ = proc_figures(sysm.pid())
            res.update(self.create_and_wait(ns, key, n))
            if sysm:
                cpu1, hwm, rss = proc_figures(sysm.pid())
                hwm = max(hwm, rss)
                m1 = sysm.metrics()
                r0, r1 = sysm.requests(m0), sysm.requests(m1)
                c0, c1 = sysm.codes(m0), sysm.codes(m1)
                res.update(cpu_s=cpu1 - cpu0, peak_rss_mib=hwm,
                           api_requests=sum(r1.values()) - sum(r0.values()),
                           api_by_verb={k: int(r1[k] - r0.get(k, 0)) for k in r1 if r1[k] - r0.get(k, 0)},
                           api_by_code={k: int(c1[k] - c0.get(k, 0)) for k in c1 if c1[k] - c0.get(k, 0)},
                           reconciles=sysm.reconciles(m1) - sysm.reconciles(m0))
        finally:
            if sysm:
                res["exit_code"] = sysm.stop()
                self.running = None
        res["namespace_deleted_s"] = self.delete_namespace(ns)
        return res

    # -- startup --
    def startup(self, key, n, prepare_with):
        """n sandboxes of the system made Ready once (by prepare_with), then
        the controller `key` started fresh over them (one after the other for
        several keys). Returns {key: figures}."""
        keys = key if isinstance(key, list) else [key]
        kind = "kage" if keys[0] == "kage" else "peer"
        ns = self.namespace(f"scale-startup-{kind}")
        out = {}
        try:
            log(f"startup: making {n} {kind} sandboxes Ready with {prepare_with}")
            prep = self.running = self.system(prepare_with).start()
            prep.wait_synced()
            made = self.create_and_wait(ns, prepare_with, n)
            prep.stop()
            self.running = None
            if made["all_ready_s"] is None:
                raise AssertionError(f"startup: {prepare_with} did not make {n} sandboxes Ready")
            log(f"startup: {n} {kind} sandboxes Ready in {made['all_ready_s']:.1f} s")
            for k in keys:
                time.sleep(self.args.settle)  # let the API server calm down
                out[k] = self.measure_startup(k, n)
                log(f"startup: {k}: {out[k]}")
        finally:
            if self.running:
                self.running.stop()
                self.running = None
        self.delete_namespace(ns)
        return out

    def idle(self, key, seconds):
        """A controller with no sandboxes: RSS, CPU and API requests over
        `seconds` after its caches synced and it settled. kage holds its
        leader Lease meanwhile (its renewals count); agent-sandbox runs with
        leader election off, as in the other runs."""
        sysm = self.system(key)
        self.running = sysm.start(sysm.make("--leader-elect") if key == "kage" else None)
        try:
            sysm.wait_synced()
            time.sleep(self.args.settle)
            m0 = sysm.metrics()
            cpu0, _, _ = proc_figures(sysm.pid())
            time.sleep(seconds)
            cpu1, hwm, rss = proc_figures(sysm.pid())
            m1 = sysm.metrics()
            if not sysm.alive():
                raise AssertionError(f"{key} exited; see {sysm.log_path()}")
            requests = sum(sysm.requests(m1).values()) - sum(sysm.requests(m0).values())
            return {"system": key, "seconds": seconds, "rss_mib": rss, "peak_rss_mib": hwm,
                    "cpu_s": cpu1 - cpu0, "api_requests": int(requests)}
        finally:
            sysm.stop()
            self.running = None

    def measure_startup(self, key, n):
        sysm = self.system(key)
        ctl = sysm.make()  # its token is minted before the clock starts
        t0 = time.monotonic()
        self.running = sysm.start(ctl)
        t_synced = t_done = None
        deadline = t0 + self.args.timeout
        m = []
        try:
            while time.monotonic() < deadline and sysm.alive():
                now = time.monotonic()
                if t_synced is None:
                    if sysm.synced():
                        t_synced = now - t0
                    else:
                        time.sleep(0.05)
                        continue
                try:
                    m = sysm.metrics()
                except OSError:
                    m = []
                if m and sysm.pass_done(m, n):
                    t_done = time.monotonic() - t0
                    break
                time.sleep(0.25)
            if not sysm.alive():
                raise AssertionError(f"{key} exited; see {sysm.log_path()}")
            cpu, hwm_done, rss_done = proc_figures(sysm.pid())
            time.sleep(self.args.settle)
            _, hwm, rss = proc_figures(sysm.pid())
            hwm = max(hwm, hwm_done, rss_done, rss)  # VmHWM lags VmRSS a little
            return {"system": key, "n": n, "synced_s": t_synced, "first_pass_s": t_done,
                    "cpu_s": cpu, "rss_at_done_mib": rss_done, "rss_settled_mib": rss,
                    "peak_rss_mib": hwm, "api_requests": sum(sysm.requests(m).values()) if m else None,
                    "api_by_verb": {k: int(v) for k, v in sysm.requests(m).items() if v} if m else {},
                    "reconciles": sysm.reconciles(m) if m else None}
        finally:
            sysm.stop()
            self.running = None

    def cleanup(self):
        for w in list(self.watchers):
            w.stop()
        if self.running:
            self.running.stop()
        for ns in list(self.namespaces) if hasattr(self, "api") else []:
            self.api.request("DELETE", f"/api/v1/namespaces/{ns}")
        if self.started_cluster:
            log("taking down the control plane it started")
            subprocess.run([REPO / "tests/cluster/down.sh"],
                           env=dict(os.environ, KAGE_CLUSTER_DIR=str(STATE)))


# --- the report --------------------------------------------------------------

def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "—"


def report(meta, runs, startup, idle):
    L = [f"# Scale benchmark — {meta['date']}", ""]
    if meta.get("label"):
        L += [f"**{meta['label']}**", ""]
    L += [f"- machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['mem_gib']} GiB, "
          f"load average {meta['load_start']} at the start, {meta.get('load_end', '—')} at the end",
          f"- kage {meta['kage_rev']}; agent-sandbox {meta['peer_version']} "
          f"(sigs.k8s.io/agent-sandbox, built with {meta['go']}); Kubernetes {meta['k8s']} "
          f"on loopback with {meta['nodes']} kwok nodes",
          f"- client: {meta['client_threads']} threads creating at once; "
          f"times from the first create request to the watch event showing Ready=True",
          "- every controller runs alone, under its own ServiceAccount bound to its own "
          "least-privilege ClusterRole (kage: rbac/; agent-sandbox: its k8s/rbac.generated.yaml)",
          ""]
    for n in sorted(runs):
        L += [f"## N = {n}", "",
              "| system | all Ready (s) | p50 (s) | p99 (s) | CPU s | peak RSS MiB | API requests |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for key in SYSTEMS:
            r = runs[n].get(key)
            if not r:
                continue
            done = fmt(r["all_ready_s"]) if r["all_ready_s"] is not None else \
                f"> {r['timeout_s']} ({r['ready']}/{n})"
            api = fmt(int(r["api_requests"])) if "api_requests" in r else \
                f"({r['client_requests']} by the client)"
            mark = " ¹" if key in ("kage", "floor") else ""
            L.append(f"| {SYSTEMS[key]}{mark} | {done} | {fmt(r.get('p50_s'), 2)} | "
                     f"{fmt(r.get('p99_s'), 2)} | {fmt(r.get('cpu_s'))} | "
                     f"{fmt(r.get('peak_rss_mib'))} | {api} |")
        L += ["", "¹ kage does more work per sandbox: before the pod it writes a NetworkPolicy "
              "(and one deny-all baseline per namespace), and it emits a PodCreated Event; "
              "agent-sandbox creates the pod only (spec.service unset: no Service). "
              "The floor writes the same policies and pods as kage, with no controller.", ""]
        for k, r in runs[n].items():
            line = (f"- {SYSTEMS[k]}: the client's creates took {r['created_s']:.1f} s; "
                    f"the namespace was gone {r['namespace_deleted_s']:.0f} s after its deletion")
            if "api_by_verb" in r:
                verbs = ", ".join(f"{v} {c}" for v, c in sorted(r["api_by_verb"].items()))
                codes = ", ".join(f"{v}: {c}" for v, c in sorted(r.get("api_by_code", {}).items()))
                line += (f"; requests {verbs} (responses {codes}); "
                         f"{int(r['reconciles'])} reconciles")
            L.append(line)
        L += [""]
    if idle:
        secs = next(iter(idle.values()))["seconds"]
        L += ["## Idle", "",
              f"No sandboxes; figures over {secs:.0f} s that start {meta['settle_s']:.0f} s after "
              "the caches synced. kage holds its leader Lease (renewals included); "
              "agent-sandbox runs with leader election off. API requests from each one's "
              "own /metrics (the two scrapes are not counted by either).", "",
              "| system | RSS MiB | peak RSS MiB | CPU ms per minute | API requests per minute |",
              "|---|---:|---:|---:|---:|"]
        for key in SYSTEMS:
            r = idle.get(key)
            if r:
                per_min = 60 / r["seconds"]
                L.append(f"| {SYSTEMS[key]} | {fmt(r['rss_mib'])} | {fmt(r['peak_rss_mib'])} | "
                         f"{fmt(r['cpu_s'] * 1000 * per_min, 0)} | "
                         f"{fmt(r['api_requests'] * per_min)} |")
        L += [""]
    if startup:
        n = next(iter(startup.values()))["n"]
        L += [f"## Startup over {n:,} existing Ready sandboxes", "",
              "Each system's own sandboxes (kage's made Ready by kage, agent-sandbox's by "
              "agent-sandbox (tuned)), one set at a time, each with its pod; then the "
              "controller started fresh over them. "
              "Synced = its caches are complete (kage logs "
              "\"caches synced\", agent-sandbox \"Starting workers\"); first pass = queue empty, "
              f"nothing in flight, ≥ {n:,} reconciles (from its /metrics, polled every 0.25 s).", "",
              "| system | caches synced (s) | first pass done (s) | CPU s | RSS settled MiB "
              "| peak RSS MiB | API requests |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for key in SYSTEMS:
            r = startup.get(key)
            if r:
                L.append(f"| {SYSTEMS[key]} | {fmt(r['synced_s'], 2)} | {fmt(r['first_pass_s'], 2)} "
                         f"| {fmt(r['cpu_s'])} | {fmt(r['rss_settled_mib'])} | "
                         f"{fmt(r['peak_rss_mib'])} | {fmt(r['api_requests'] and int(r['api_requests']))} |")
        L += [""]
    L += ["## Ratios", ""]
    at = 1000 if 1000 in runs else (max(runs) if runs else None)
    if at:
        r = runs[at]
        t = {k: (r[k]["all_ready_s"] if k in r else None) for k in SYSTEMS}
        L += [f"- time to all Ready at N = {at}: kage / agent-sandbox (defaults) = "
              f"{ratio(t['kage'], t['peer-defaults'])}, kage / agent-sandbox (tuned) = "
              f"{ratio(t['kage'], t['peer-tuned'])}, kage / floor = {ratio(t['kage'], t['floor'])}"]
        big = max(runs)
        c = {k: (runs[big][k].get("cpu_s") / big * 1000 if k in runs[big] and "cpu_s" in runs[big][k]
                 else None) for k in SYSTEMS}
        L += [f"- CPU seconds per 1000 sandboxes (at N = {big}): kage {fmt(c['kage'], 2)}, "
              f"agent-sandbox (defaults) {fmt(c['peer-defaults'], 2)}, (tuned) "
              f"{fmt(c['peer-tuned'], 2)}; kage / agent-sandbox = "
              f"{ratio(c['kage'], c['peer-defaults'])} (defaults), {ratio(c['kage'], c['peer-tuned'])} (tuned)"]
    if idle:
        r = {k: idle[k]["rss_mib"] if k in idle else None for k in SYSTEMS}
        L += [f"- idle RSS: kage {fmt(r['kage'])} MiB, agent-sandbox {fmt(r['peer-defaults'])} MiB; "
              f"kage / agent-sandbox = {ratio(r['kage'], r['peer-defaults'])}"]
    if startup:
        s = {k: startup[k]["rss_settled_mib"] if k in startup else None for k in SYSTEMS}
        p = {k: startup[k]["peak_rss_mib"] if k in startup else None for k in SYSTEMS}
        n = next(iter(startup.values()))["n"]
        L += [f"- RSS with {n:,} sandboxes (settled / peak): kage {fmt(s['kage'])} / {fmt(p['kage'])} MiB, "
              f"agent-sandbox (defaults) {fmt(s['peer-defaults'])} / {fmt(p['peer-defaults'])} MiB, "
              f"(tuned) {fmt(s['peer-tuned'])} / {fmt(p['peer-tuned'])} MiB; kage / agent-sandbox = "
              f"{ratio(s['kage'], s['peer-defaults'])} (defaults), {ratio(s['kage'], s['peer-tuned'])} (tuned)"]
    L += [""]
    return "\n".join(L)


def plot(runs, png):
    if len(runs) < 1:
        return None
    if not shutil.which("gnuplot"):
        log("installing gnuplot-nox for the plot")
        cmd = ["apt-get", "install", "-y", "-qq", "gnuplot-nox"]
        if os.geteuid() != 0:
            cmd = ["sudo", "-n"] + cmd
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            log("could not install gnuplot-nox: no plot")
            return None
    data = png.with_suffix(".dat")
    keys = list(SYSTEMS)
    with open(data, "w") as f:
        f.write("# N " + " ".join(keys) + "\n")
        for n in sorted(runs):
            vals = [runs[n].get(k, {}).get("all_ready_s") for k in keys]
            f.write(f"{n} " + " ".join("NaN" if v is None else f"{v:.3f}" for v in vals) + "\n")
    term = "pngcairo size 900,600" if "pngcairo" in subprocess.run(
        ["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr else "png size 900,600"
    lines = ", ".join(f"'{data}' using 1:{i + 2} with linespoints title '{SYSTEMS[k]}'"
                      for i, k in enumerate(keys))
    script = (f"set terminal {term}; set output '{png}'; set logscale xy; "
              "set xlabel 'sandboxes created at once (N)'; set ylabel 'time to all Ready (s)'; "
              "set key top left; set grid; set datafile missing 'NaN'; "
              f"set xrange [{min(runs) / 1.5}:{max(runs) * 1.5}]; "
              "set title 'kage and agent-sandbox: N sandboxes created at once'; "
              f"set xtics ({', '.join(str(n) for n in sorted(runs))}); plot {lines}")
    subprocess.run(["gnuplot", "-e", script], check=True)
    data.unlink()
    return png


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="comma-separated N (default %(default)s)")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help="subset of %(default)s")
    ap.add_argument("--startup", type=int, default=10000,
                    help="existing sandboxes for the startup case (0: skip; default %(default)s)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"), help="output directory")
    ap.add_argument("--label", default="", help="a note printed at the top of the report")
    ap.add_argument("--client-threads", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run (default %(default)s)")
    ap.add_argument("--settle", type=float, default=5, help="seconds to settle before RSS/startup")
    ap.add_argument("--idle", type=float, default=60,
                    help="seconds of the idle measurement (0: skip; default %(default)s)")
    ap.add_argument("--peer-version", default=PEER_DEFAULT)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    keys = [k for k in args.systems.split(",") if k]
    for k in keys:
        if k not in SYSTEMS:
            ap.error(f"unknown system {k}")
    if not (REPO / "bin" / "kage-controller").exists():
        ap.error("bin/kage-controller is missing: run make")

    bench = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    now = datetime.datetime.now()
    meta = {"date": now.strftime("%Y-%m-%d %H:%M"), "label": args.label, "cpus": os.cpu_count(),
            "cpu_model": next((l.split(":", 1)[1].strip() for l in
                               Path("/proc/cpuinfo").read_text().splitlines()
                               if l.startswith("model name")), platform.machine()),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "client_threads": args.client_threads, "peer_version": args.peer_version,
            "kage_rev": subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                       capture_output=True, text=True).stdout.strip() or "?",
            "go": (subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
                   if shutil.which("go") else "?")}
    meta["settle_s"] = args.settle
    runs, startup, idle = {}, {}, {}
    t_begin = time.monotonic()
    try:
        bench.cluster(max(sizes + [args.startup]))
        bench.install()
        meta["k8s"] = bench.env.get("K8S_VERSION", "?")
        meta["nodes"] = len(bench.api.get("/api/v1/nodes")["items"])
        if args.idle:
            for key in [k for k in keys if k in ("kage", "peer-defaults")]:
                log(f"idle: {SYSTEMS[key]}")
                idle[key] = bench.idle(key, args.idle)
                log(f"idle: {SYSTEMS[key]}: {idle[key]}")
        for n in sizes:
            runs[n] = {}
            for key in keys:
                log(f"N = {n}: {SYSTEMS[key]}")
                t = time.monotonic()
                runs[n][key] = bench.run(key, n)
                runs[n][key]["wall_s"] = time.monotonic() - t
                log(f"N = {n}: {SYSTEMS[key]}: {runs[n][key]}")
        if args.startup:
            if "kage" in keys:
                startup.update(bench.startup("kage", args.startup, "kage"))
            peers = [k for k in keys if k.startswith("peer")]
            if peers:
                startup.update(bench.startup(peers, args.startup, "peer-tuned"))
    finally:
        meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        meta["wall_s"] = time.monotonic() - t_begin
        bench.cleanup()
        if runs or startup or idle:
            stem = result_stem(args.out, "scale", now)
            runs = {n: r for n, r in runs.items() if r}
            text = report(meta, runs, startup, idle)
            stem.with_suffix(".md").write_text(text)
            stem.with_suffix(".json").write_text(json.dumps(
                {"meta": meta, "runs": runs, "startup": startup, "idle": idle}, indent=1, default=str))
            png = None
            if runs:
                try:
                    png = plot(runs, stem.with_suffix(".png"))
                except (OSError, subprocess.CalledProcessError) as e:
                    log(f"plot failed: {e}")
            print(text)
            log(f"wrote {stem}.md, .json" + (f", {png}" if png else "")
                + f" in {meta['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
