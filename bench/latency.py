#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The latency benchmark: what a user waits for, per sandbox, decomposed.

    bench/latency.py [--quick] [--systems kage,peer-defaults,peer-tuned,floor,perfect]
                     [--reps 3] [--seed S] [--no-fsync] [--client-limits high|default]

Per sandbox, from watches started before the first create, on the harness's
one monotonic clock: create request -> pod created (the pod's first watch
event) -> pod Running (its first event with phase Running) -> Sandbox
Ready (the Sandbox's first event with Ready=True). The first and the last
part are the time the controller adds; the middle one is the scheduler's
and the node's (kwok). Pods map to their Sandbox by their ownerReference
(kind Sandbox) or, for the floor, their kage.dev/sandbox label.

Scenarios: single (one sandbox at a time on an idle cluster, the next one
created once the previous is Ready and deleted), steady (arrivals at a fixed
rate for a duration, with the backlog it leaves) and burst (N at once).
Systems: kage, agent-sandbox v1.0.1 at its defaults and tuned, the floor (no
controller: the client writes the policy and the pod, done at Running) and
a perfect controller (bench/floor/, Go, the least a controller can do).
Every (scenario, system) runs --reps times, the systems in a shuffled order
per repetition (the seed is printed); the report gives medians across the
repetitions with their min-max, and the CPU seconds of every process of the
cluster, the controller and the harness itself, per sandbox.

It brings up its own control plane in KAGE_CLUSTER_DIR (default
.cluster-bench) with etcd's fsync on unless --no-fsync, reusing one there
only if it was brought up with the same settings, and takes it down at the
end unless --keep-cluster. Output: bench/results/latency-<date>.md, .json.
Figures, not a test."""

import argparse
import datetime
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Its own cluster, before scale.py and the e2e suite's conftest read it.
os.environ.setdefault("KAGE_CLUSTER_DIR", str(REPO / ".cluster-bench"))
STATE = Path(os.environ["KAGE_CLUSTER_DIR"])
sys.path.insert(0, str(REPO / "bench"))

import scale  # noqa: E402
from scale import (PEER_DEFAULT, Kage, Peer, System, condition_ready, floor_baseline,  # noqa: E402
                   floor_policy, floor_pod, percentile, pod_running, proc_figures, sh)
from scale_api import StampWatcher, create_all  # noqa: E402

SYSTEMS = {
    "kage": "kage",
    "peer-defaults": "agent-sandbox (defaults)",
    "peer-tuned": "agent-sandbox (tuned)",
    "floor": "floor (no controller)",
    "perfect": "perfect controller",
}
PARTS = [("to_pod", "create → pod created"), ("to_running", "pod created → Running"),
         ("to_ready", "Running → Ready"), ("ctrl", "controller adds"), ("total", "create → Ready")]
# Processes whose CPU time is counted: the cluster's (by binary, in this
# cluster's state directory), the controller's and the harness's own.
COMPONENTS = ["kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "kwok"]
ROLES = COMPONENTS[:2] + ["controller", "harness"] + COMPONENTS[2:]
STATE_FILE = "bench-latency.settings.json"


def log(msg):
    print(f"latency: {msg}", file=sys.stderr, flush=True)


# --- the perfect controller --------------------------------------------------

class Perfect(System):
    """bench/floor/'s controller for one namespace, under kage's ServiceAccount."""

    synced_marker = "caches synced"

    def make(self):
        from conftest import Controller
        bench = self.bench

        class FloorController(Controller):
            def start(ctl):
                ctl.mark = 0
                ctl.log_file = open(ctl.log_path, "a")
                ctl.proc = subprocess.Popen(
                    [str(bench.perfect_bin), "--kubeconfig", str(ctl.kubeconfig), *ctl.args],
                    stdout=ctl.log_file, stderr=subprocess.STDOUT)
                return ctl

        kc = bench.work / "kage.kubeconfig"
        sh(REPO / "tests/cluster/sa-kubeconfig.sh", "kage-system", "kage-controller", kc, "12h")
        objects = bench.work / "perfect-objects.json"
        objects.write_text(json.dumps({"pod": floor_pod("__NAME__"), "policy": floor_policy("__NAME__"),
                                       "baseline": floor_baseline()}))
        return FloorController(kc, self.log_path(), "--namespace", self.ns, "--objects", str(objects))


# --- CPU time of every process -----------------------------------------------

def cpu_of(pid):
    try:
        return proc_figures(pid)[0]
    except (OSError, KeyError, IndexError, ValueError):
        return None


def cluster_pids():
    """{component: [pid]} of this cluster's processes (a supervised one is
    its supervisor's child: found by binary name and state directory)."""
    out = {c: [] for c in COMPONENTS}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        if name in out and str(STATE).encode() in b" ".join(argv):
            out[name].append(int(d.name))
    return out


def cpu_snapshot(controller_pid):
    snap = {c: {p: cpu_of(p) for p in pids} for c, pids in cluster_pids().items()}
    snap["controller"] = {controller_pid: cpu_of(controller_pid)} if controller_pid else {}
    snap["harness"] = {os.getpid(): cpu_of(os.getpid())}
    return snap


def cpu_delta(a, b):
    """CPU seconds per role between two snapshots (a process that started
    in between counts from zero)."""
    out = {}
    for role in ROLES:
        total = 0.0
        for pid, after in b.get(role, {}).items():
            if after is not None:
                total += after - (a.get(role, {}).get(pid) or 0.0)
        out[role] = total
    return out


# --- stamps ------------------------------------------------------------------

def sandbox_of_pod(pod):
    md = pod["metadata"]
    for ref in md.get("ownerReferences") or []:
        if ref.get("kind") == "Sandbox":
            return ref.get("name")
    return (md.get("labels") or {}).get("kage.dev/sandbox")


def own_name(obj):
    return obj["metadata"]["name"]


def always(_):
    return True


def per_sandbox(names, started, stamps, floor):
    """{name: {part: seconds}} for every name that got all its stamps."""
    out = {}
    created, running = stamps["created"], stamps["running"]
    ready = running if floor else stamps["ready"]
    for n in names:
        if n in started and n in created and n in running and n in ready:
            p = {"to_pod": created[n] - started[n], "to_running": running[n] - created[n],
                 "to_ready": ready[n] - running[n], "total": ready[n] - started[n]}
            p["ctrl"] = p["to_pod"] + p["to_ready"]
            out[n] = p
    return out


def summary(parts):
    """p50/p90/p99 in ms of each part over the sandboxes."""
    if not parts:
        return {}
    return {k: {q: 1000 * percentile([p[k] for p in parts.values()], q) for q in (50, 90, 99)}
            for k, _ in PARTS}


# --- the benchmark -----------------------------------------------------------

class Bench(scale.Bench):
    def system(self, key):
        """The controller of a system (the floor has none)."""
        return {"kage": Kage, "perfect": Perfect}.get(key, Peer)(self, key)

    def cluster(self, need_pods):
        """A control plane in STATE with the requested settings: reused if it
        runs with them, else (re)started."""
        nodes = max(1, -(-need_pods // 2500))
        want = {"etcd_fsync": not self.args.no_fsync, "client_limits": self.args.client_limits,
                "kwok_nodes": nodes}
        env = dict(os.environ, KAGE_CLUSTER_DIR=str(STATE), KWOK_NODES=str(nodes))
        if want["etcd_fsync"]:
            env["KAGE_ETCD_FSYNC"] = "1"
        if want["client_limits"] == "default":
            env["KAGE_CLIENT_LIMITS"] = "default"
        up = subprocess.run([REPO / "tests/cluster/up.sh", "--check"], env=env).returncode == 0
        try:
            had = json.loads((STATE / STATE_FILE).read_text())
        except (OSError, ValueError):
            had = None
        fsync, limits, _ = actual_settings() if up else (None, None, None)
        if up and had and had["etcd_fsync"] == want["etcd_fsync"] == fsync and \
                had["client_limits"] == want["client_limits"] == limits and had["kwok_nodes"] >= nodes:
            log(f"reusing the control plane in {STATE} ({had})")
        else:
            if STATE.exists():
                log(f"taking down the control plane in {STATE}: not brought up with {want}")
                sh(REPO / "tests/cluster/down.sh", env=env)
            log(f"bringing up a control plane in {STATE}: {want}")
            self.started_cluster = True
            subprocess.run([REPO / "tests/cluster/up.sh"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            (STATE / STATE_FILE).write_text(json.dumps(want))
        from conftest import Kubectl, read_env
        self.env = read_env()
        self.kubectl = Kubectl(self.env["BIN_DIR"], STATE / "kubeconfig")
        config = json.loads(self.kubectl.run("config", "view", "--raw", "--minify", "-o", "json").stdout)
        self.api = scale.Api(config)
        self.work = STATE / "bench-latency"
        self.work.mkdir(exist_ok=True)
        return want

    def install_perfect(self):
        build = Path(self.args.perfect_dir) / "build.sh"
        if not build.exists():
            return f"{build} is missing (the perfect controller is not in this tree)"
        out = sh(build).stdout
        kv = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
        self.perfect_bin = Path(kv["BIN"])
        return None

    # -- one run --
    def watches(self, key, ns):
        pods = StampWatcher(self.api, f"/api/v1/namespaces/{ns}/pods", [
            ("created", sandbox_of_pod, always), ("running", sandbox_of_pod, pod_running)])
        ws = [pods]
        if key != "floor":
            path = self.sandbox_path(key, ns)
            ws.append(StampWatcher(self.api, path, [("ready", own_name, condition_ready)]))
        for w in ws:
            self.watchers.append(w)
            w.start()
        for w in ws:
            w.listed.wait()
            if w.error:
                raise w.error
        stamps = {}
        for w in ws:
            stamps.update(w.stamps)
        return ws, stamps

    def sandbox_path(self, key, ns):
        return self.paths("peer" if key.startswith("peer") else "kage", ns)[0]

    def jobs(self, key, ns, names):
        """(name, [(path, object)]) per sandbox: what its create request is."""
        if key == "floor":
            pol = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
            pods = f"/api/v1/namespaces/{ns}/pods"
            return [(x, [(pol, floor_policy(x)), (pods, floor_pod(x))]) for x in names]
        path, make = self.paths("peer" if key.startswith("peer") else "kage", ns)
        return [(x, [(path, make(x))]) for x in names]

    def run(self, key, scenario, param):
        ns = self.namespace(f"lat-{key}")
        sysm = None
        res = {"system": key, "scenario": scenario, "param": param,
               "load_before": os.getloadavg()[0]}
        try:
            if key == "floor":
                self.api.create(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
                                floor_baseline())
            else:
                sysm = self.system(key)
                sysm.ns = ns
                self.running = sysm.start()
                sysm.wait_synced()
            ws, stamps = self.watches(key, ns)
            cpu0 = cpu_snapshot(sysm.pid() if sysm else None)
            t0 = time.monotonic()
            started, extra = getattr(self, f"run_{scenario}")(key, ns, param, stamps)
            wall = time.monotonic() - t0
            cpu1 = cpu_snapshot(sysm.pid() if sysm else None)
            if sysm and not sysm.alive():
                raise AssertionError(f"{key} exited; see {sysm.log_path()}")
            for w in ws:
                w.stop()
                self.watchers.remove(w)
            parts = per_sandbox(list(started), started, stamps, key == "floor")
            n = len(started)
            cpu = cpu_delta(cpu0, cpu1)
            order = extra.pop("order", None)
            res.update(n=n, done=len(parts), wall_s=wall, summary=summary(parts),
                       cpu_s=cpu, cpu_ms_per_sandbox={r: 1000 * v / max(n, 1) for r, v in cpu.items()},
                       **extra)
            if order:
                res.update(trend(order, parts))
        finally:
            if sysm:
                res["exit_code"] = sysm.stop()
                self.running = None
        res["namespace_deleted_s"] = self.delete_namespace(ns)
        return res

    def _wait(self, key, stamps, names, timeout):
        w = next(w for w in self.watchers if ("running" if key == "floor" else "ready") in w.stamps)
        return w.wait_label("running" if key == "floor" else "ready", names, timeout)

    # -- scenarios --
    def run_single(self, key, ns, count, stamps):
        """One at a time: create, wait until done, delete it and wait until
        its pod is gone, then the next."""
        started, slow = {}, 0
        for i in range(count):
            name = f"one-{i:04d}"
            (job,) = self.jobs(key, ns, [name])
            started[name] = time.monotonic()
            for path, obj in job[1]:
                self.api.create(path, obj)
            if self._wait(key, stamps, [name], self.args.timeout):
                raise AssertionError(f"{key}: {name} not done after {self.args.timeout} s")
            pod = next(w for w in self.watchers if "created" in w.stamps).names.get(name)
            for path, obj in job[1]:
                self.api.request("DELETE", f"{path}/{name}")
            deadline = time.monotonic() + 60
            while pod and time.monotonic() < deadline and self.api.request(
                    "GET", f"/api/v1/namespaces/{ns}/pods/{pod}")[0] != 404:
                time.sleep(0.05)
            slow += time.monotonic() >= deadline
        return started, {"pods_not_gone_in_60s": slow}

    def run_burst(self, key, ns, count, stamps):
        names = [f"burst-{i:05d}" for i in range(count)]
        started, _ = create_all(self.api, self.jobs(key, ns, names), self.args.client_threads)
        missing = self._wait(key, stamps, names, self.args.timeout)
        return started, {"not_done": len(missing)}

    def run_steady(self, key, ns, rate, stamps):
        """Arrivals at `rate` per second for --duration seconds (open loop:
        a slow create does not delay the next arrival, up to the client's
        threads); then waits for the rest."""
        duration = self.args.duration
        names = [f"st-{i:05d}" for i in range(int(rate * duration))]
        jobs = self.jobs(key, ns, names)
        started, lag = {}, [0.0]
        done_label = "running" if key == "floor" else "ready"
        done = stamps[done_label]

        def one(job, due):
            name, objs = job
            started[name] = time.monotonic()
            lag[0] = max(lag[0], started[name] - due)
            for path, obj in objs:
                self.api.create(path, obj)

        backlog = []
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.args.client_threads) as pool:
            futures = []
            for i, job in enumerate(jobs):
                due = t0 + i / rate
                while True:
                    now = time.monotonic()
                    if now >= due:
                        break
                    time.sleep(min(due - now, 0.05))
                if i % max(1, int(rate)) == 0:  # once a second: created, not done yet
                    backlog.append((round(now - t0, 1), len(started) - sum(1 for n in list(started)
                                                                             if n in done)))
                futures.append(pool.submit(one, job, due))
            for f in futures:
                f.result()
        at_end = sum(1 for n in names if n not in done)
        missing = self._wait(key, stamps, names, self.args.timeout)
        q = max(1, len(backlog) // 4)
        first, last = backlog[:q], backlog[-q:]
        grew = bool(backlog) and (sum(b for _, b in last) / len(last)
                                  - sum(b for _, b in first) / len(first)) > rate
        return started, {"rate": rate, "duration_s": duration, "not_done_at_end": at_end,
                         "backlog_grew": grew,
                         "max_backlog": max([b for _, b in backlog] + [at_end]),
                         "backlog": backlog, "arrival_lag_max_s": lag[0],
                         "not_done": len(missing), "order": names}


def trend(order, parts):
    """create → Ready p50 (ms) of the first and the last quarter of arrivals."""
    q = max(1, len(order) // 4)
    first = [parts[n]["total"] for n in order[:q] if n in parts]
    last = [parts[n]["total"] for n in order[-q:] if n in parts]
    if not first or not last:
        return {}
    a, b = 1000 * percentile(first, 50), 1000 * percentile(last, 50)
    return {"first_quarter_p50_ms": a, "last_quarter_p50_ms": b}


# --- the report --------------------------------------------------------------

def med(values):
    s = sorted(v for v in values if v is not None)
    if not s:
        return None
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def spread(values, digits=0):
    """median (min–max) of the repetitions' values, or the value alone."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    m = f"{med(vals):.{digits}f}"
    return m if len(vals) == 1 else f"{m} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def scenario_title(scenario, param, args):
    return {"single": f"single: {param} sandboxes one at a time on an idle cluster",
            "steady": f"steady: {param:g} sandboxes a second for {args['duration']:g} s",
            "burst": f"burst: {param} sandboxes at once"}[scenario]


def report(meta, results):
    a = meta["args"]
    L = [f"# Latency benchmark — {meta['date']}", "",
         f"- commit {meta['commit']}{' (dirty: uncommitted changes)' if meta['dirty'] else ''}",
         f"- machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['mem_gib']} GiB; "
         f"load average {meta['load_start']} at the start, {meta.get('load_end', '—')} at the end",
         f"- control plane: Kubernetes {meta.get('k8s', '?')} on loopback, {meta.get('nodes', '?')} kwok "
         f"node(s); etcd fsync **{meta['settings'].get('etcd_fsync_actual', '?')}**; client limits "
         f"**{meta['settings'].get('client_limits_actual', '?')}**",
         f"- requested: etcd fsync {'on' if meta['settings']['etcd_fsync'] else 'off'}, client limits "
         f"{meta['settings']['client_limits']}"
         + (" — **the cluster's scripts did not apply them**" if meta['settings'].get('mismatch') else ""),
         f"- systems: {', '.join(SYSTEMS[k] for k in meta['systems'])}; agent-sandbox "
         f"{meta['peer_version']}" + (f"; skipped: {meta['skipped']}" if meta.get("skipped") else ""),
         f"- {a['reps']} repetition(s), systems shuffled per repetition and scenario with seed "
         f"{meta['seed']}; cells are medians across repetitions with (min–max) when more than one",
         f"- client: {a['client_threads']} threads (the admin's certificate); times in ms on the "
         "harness's monotonic clock, from watches started before the first create",
         "- the perfect controller runs under kage's ServiceAccount (kage's RBAC and API "
         "Priority and Fairness level); the floor's client is the admin", ""]
    by = {}
    for r in results:
        by.setdefault((r["scenario"], r["param"]), {}).setdefault(r["system"], []).append(r)
    for (scenario, param), systems in by.items():
        L += [f"## {scenario_title(scenario, param, a)}", "",
              "| system | done | create → Ready p50 | p90 | p99 | controller adds p50 | p90 | p99 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        keys = [k for k in SYSTEMS if k in systems]
        for k in keys:
            rs = systems[k]
            cell = lambda part, q: spread([r["summary"].get(part, {}).get(q) for r in rs])  # noqa: E731
            L.append(f"| {SYSTEMS[k]} | {min(r['done'] for r in rs)}/{rs[0]['n']} | "
                     f"{cell('total', 50)} | {cell('total', 90)} | {cell('total', 99)} | "
                     f"{cell('ctrl', 50)} | {cell('ctrl', 90)} | {cell('ctrl', 99)} |")
        L += ["", "Decomposed (p50 / p90 / p99, ms, medians across repetitions):", "",
              "| system | " + " | ".join(t for k, t in PARTS[:3]) + " |", "|---|---:|---:|---:|"]
        for k in keys:
            rs = systems[k]
            cells = []
            for part, _ in PARTS[:3]:
                cells.append(" / ".join(
                    f"{med([r['summary'].get(part, {}).get(q) for r in rs]):.0f}"
                    if med([r['summary'].get(part, {}).get(q) for r in rs]) is not None else "—"
                    for q in (50, 90, 99)))
            L.append(f"| {SYSTEMS[k]} | " + " | ".join(cells) + " |")
        L += ["", "CPU ms per sandbox (utime + stime over the run, medians across repetitions):", "",
              "| system | " + " | ".join(ROLES) + " | all |", "|---|" + "---:|" * (len(ROLES) + 1)]
        for k in keys:
            rs = systems[k]
            vals = [med([r["cpu_ms_per_sandbox"][role] for r in rs]) for role in ROLES]
            L.append(f"| {SYSTEMS[k]} | " + " | ".join(
                "—" if (role == "controller" and k == "floor") else f"{v:.1f}"
                for role, v in zip(ROLES, vals)) + f" | {sum(vals):.1f} |")
        if scenario == "steady":
            L += ["", "Backlog (created, not yet Ready): at the end of the arrivals, its maximum, "
                  "and create → Ready p50 of the first and last quarter of arrivals:", ""]
            for k in keys:
                rs = systems[k]
                L.append(f"- {SYSTEMS[k]}: {spread([r.get('not_done_at_end') for r in rs])} not Ready "
                         f"at the end, at most {spread([r.get('max_backlog') for r in rs])}; "
                         f"p50 {spread([r.get('first_quarter_p50_ms') for r in rs])} ms first quarter, "
                         f"{spread([r.get('last_quarter_p50_ms') for r in rs])} ms last quarter; "
                         f"backlog grew: {', '.join('yes' if r.get('backlog_grew') else 'no' for r in rs)}; "
                         f"the client's arrivals lagged at most "
                         f"{max(r.get('arrival_lag_max_s', 0) for r in rs) * 1000:.0f} ms")
        L += [""]
    L += ["Order of the runs: " + ", ".join(f"{r['scenario']}-{r['param']:g}:{r['system']}"
                                            for r in results), ""]
    return "\n".join(L)


# --- main --------------------------------------------------------------------

def actual_settings(state=None):
    """etcd's fsync and the components' client limits as the cluster's
    scripts started them: their recorded command lines (and
    kube-scheduler's configuration file). Returns (fsync on, client limits
    "high"/"default"/"mixed", a description)."""
    state = Path(state or STATE)

    def argv(name):
        try:
            return (state / "cmds" / name).read_bytes().decode().split("\0")
        except OSError:
            return []

    def flag(name, key):
        return next((a.split("=", 1)[1] for a in argv(name) if a.startswith(f"--{key}=")), None)

    fsync = "--unsafe-no-fsync" not in argv("etcd")
    qps = {"kube-controller-manager": flag("kube-controller-manager", "kube-api-qps"),
           "kwok": flag("kwok", "kube-api-qps")}
    sched, config = None, flag("kube-scheduler", "config")
    if config:
        try:
            sched = next((l.split(":", 1)[1].strip() for l in Path(config).read_text().splitlines()
                          if l.strip().startswith("qps:")), None)
        except OSError:
            pass
    qps["kube-scheduler"] = sched or flag("kube-scheduler", "kube-api-qps")
    main = [qps["kube-controller-manager"], qps["kube-scheduler"]]
    limits = "high" if all(q == "1000" for q in main) else \
        "default" if not any(main) else "mixed"
    text = ", ".join(f"{c} {'qps ' + q if q else 'its own default'}" for c, q in sorted(qps.items()))
    return fsync, limits, text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="subset of %(default)s")
    ap.add_argument("--scenarios", default="single,steady,burst")
    ap.add_argument("--single", type=int, default=50, help="sandboxes one at a time (%(default)s)")
    ap.add_argument("--rates", default="20,40", help="steady arrival rates per second (%(default)s)")
    ap.add_argument("--duration", type=float, default=120, help="steady seconds (%(default)s)")
    ap.add_argument("--bursts", default="100,1000,5000", help="burst sizes (%(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (%(default)s)")
    ap.add_argument("--seed", type=int, default=None, help="shuffle seed (default: random, printed)")
    ap.add_argument("--quick", action="store_true",
                    help="single 10, steady 20/s for 20 s, burst 100, 1 repetition")
    ap.add_argument("--no-fsync", action="store_true", help="etcd without fsync (default: fsync on)")
    ap.add_argument("--client-limits", choices=["high", "default"], default="high",
                    help="the cluster components' client limits (high: 1000 qps; default: their own)")
    ap.add_argument("--keep-cluster", action="store_true", help="leave the control plane running")
    ap.add_argument("--client-threads", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait per run (%(default)s)")
    ap.add_argument("--peer-version", default=PEER_DEFAULT)
    ap.add_argument("--perfect-dir", default=str(REPO / "bench" / "floor"),
                    help="where build.sh of the perfect controller is (%(default)s)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    if ap.parse_known_args()[0].quick:  # its sizes, unless given
        ap.set_defaults(single=10, rates="20", duration=20.0, bursts="100", reps=1)
    args = ap.parse_args()
    keys = [k for k in args.systems.split(",") if k]
    for k in keys:
        if k not in SYSTEMS:
            ap.error(f"unknown system {k}")
    scenarios = [s for s in args.scenarios.split(",") if s]
    plan = [(s, p) for s in scenarios for p in
            {"single": [args.single], "steady": [float(x) for x in args.rates.split(",") if x],
             "burst": [int(x) for x in args.bursts.split(",") if x]}[s]]
    if not (REPO / "bin" / "kage-controller").exists():
        ap.error("bin/kage-controller is missing: run make")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    log(f"seed {seed}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    now = datetime.datetime.now()
    git = lambda *a: subprocess.run(["git", "-C", str(REPO), *a], capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    meta = {"date": now.strftime("%Y-%m-%d %H:%M"), "seed": seed, "args": vars(args),
            "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain")),
            "cpus": os.cpu_count(), "peer_version": args.peer_version,
            "cpu_model": next((l.split(":", 1)[1].strip() for l in
                               Path("/proc/cpuinfo").read_text().splitlines()
                               if l.startswith("model name")), platform.machine()),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    bench = Bench(args)
    results = []
    t_begin = time.monotonic()
    try:
        need = max([args.single] + [int(float(r) * args.duration) for r in args.rates.split(",") if r]
                   + [int(b) for b in args.bursts.split(",") if b])
        settings = bench.cluster(need)
        fsync, limits, text = actual_settings()
        settings.update(etcd_fsync_actual="on" if fsync else "off (--unsafe-no-fsync)",
                        client_limits_actual=f"{limits}: {text}",
                        mismatch=fsync != settings["etcd_fsync"] or limits != settings["client_limits"])
        if settings["mismatch"]:
            log(f"the cluster did not take the requested settings: etcd fsync "
                f"{settings['etcd_fsync_actual']}; client limits {settings['client_limits_actual']}")
        meta["settings"] = settings
        meta["k8s"] = bench.env.get("K8S_VERSION", "?")
        meta["nodes"] = len(bench.api.get("/api/v1/nodes")["items"])
        bench.install(peer=any(k.startswith("peer") for k in keys))
        if "perfect" in keys:
            why = bench.install_perfect()
            if why:
                log(f"perfect: skipped: {why}")
                meta["skipped"] = f"perfect controller ({why})"
                keys.remove("perfect")
        meta["systems"] = keys
        rng = random.Random(seed)
        for rep in range(args.reps):
            for scenario, param in plan:
                order = keys[:]
                rng.shuffle(order)
                for key in order:
                    log(f"rep {rep + 1}/{args.reps}: {scenario} {param:g}: {SYSTEMS[key]}")
                    r = bench.run(key, scenario, param)
                    r["rep"] = rep
                    results.append(r)
                    s = r["summary"].get("total", {})
                    log(f"  done {r['done']}/{r['n']} in {r['wall_s']:.1f} s; create → Ready "
                        f"p50 {s.get(50, 0):.0f} p99 {s.get(99, 0):.0f} ms")
    finally:
        meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        meta["wall_s"] = time.monotonic() - t_begin
        if args.keep_cluster:
            bench.started_cluster = False  # cleanup() then leaves it running
        bench.cleanup()
        if results and "settings" in meta:
            stem = scale.result_stem(args.out, "latency", now)
            text = report(meta, results)
            stem.with_suffix(".md").write_text(text)
            stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": results},
                                                            indent=1, default=str))
            print(text)
            log(f"wrote {stem}.md, .json in {meta['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
