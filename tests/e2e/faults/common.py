# SPDX-License-Identifier: Apache-2.0
"""Shared by the fault tests: a direct admin client for the API server (fast
polling and watches, no kubectl process per look), the Sandboxes a run
makes and changes, and the one definition of "converged" every fault test
asserts after its fault."""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import STATE
from expected import API_VERSION, BASELINE_LABELS, BASELINE_SPEC, DNS_RULE, RESTRICTED  # noqa: F401

SANDBOX_LABEL = "kage.dev/sandbox"
MANAGED_BY = "app.kubernetes.io/managed-by"
BASELINE = "kage-baseline"
IMAGES = ["busybox:1.36", "python:3.12-slim", "alpine:3.20", "debian:12-slim"]


# The long form (make test-faults) and the short one (make test).
LONG = os.environ.get("KAGE_FAULTS", "short") == "long"

CONVERGE_TIMEOUT = 180  # seconds; the machine is small and shared

# Figures measured by the tests, printed at the end of the run.
FIGURES = []


def figure(test, text):
    FIGURES.append(f"{test}: {text}")


# ---- the API server, as the administrator -----------------------------------


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class Api:
    """A minimal client with the admin kubeconfig's client certificate:
    GET/POST/PUT/DELETE of JSON, LIST, WATCH streams. Each call opens its
    own TLS connection, so threads can share the object."""

    def __init__(self, kubeconfig=None):
        text = Path(kubeconfig or STATE / "kubeconfig").read_text()

        def field(name):
            m = re.search(rf"^\s*{name}:\s*(\S+)\s*$", text, re.M)
            assert m, f"{name} missing in the admin kubeconfig"
            return m.group(1)

        server = field("server")
        m = re.match(r"https://([^:/]+):(\d+)$", server)
        assert m, server
        self.host, self.port = m.group(1), int(m.group(2))
        self._dir = tempfile.mkdtemp(prefix="kage-faults-api-")
        paths = {}
        for key, fname in (("certificate-authority-data", "ca.crt"),
                           ("client-certificate-data", "admin.crt"),
                           ("client-key-data", "admin.key")):
            p = Path(self._dir) / fname
            p.write_bytes(base64.b64decode(field(key)))
            os.chmod(p, 0o600)
            paths[key] = str(p)
        self.ca_file = paths["certificate-authority-data"]
        self.ctx = ssl.create_default_context(cafile=self.ca_file)
        self.ctx.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])

    def close(self):
        """Removes the copies of the admin credentials."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def _conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout)

    def request(self, method, path, body=None, timeout=30,
                content_type="application/json"):
        conn = self._conn(timeout)
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode()
            if resp.status >= 300:
                raise ApiError(resp.status, raw)
            return json.loads(raw) if raw else None
        finally:
            conn.close()

    def get(self, path, patience=120, **kw):
        """GET with retries on connection trouble, 429 and 5xx for up to
        patience seconds (an API server being restarted answers nothing)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return self.request("GET", path, **kw)
            except ApiError as e:
                if e.status not in (429, 500, 502, 503, 504) or time.monotonic() > deadline:
                    raise
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def get_or_none(self, path):
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def delete(self, path, ignore_missing=True):
        try:
            return self.request("DELETE", path)
        except ApiError as e:
            if not (ignore_missing and e.status == 404):
                raise
            return None

    def items(self, path):
        return self.get(path)["items"]

    def watch(self, path, rv, stop, on_event, timeout_s=600, socks=None):
        """Streams WATCH events (dicts) of path from resourceVersion rv to
        on_event until stop is set; resumes at the last version when the
        server ends a stream. A 410 or an ERROR event is raised: a test
        that watches must not miss an event."""
        while not stop.is_set():
            sep = "&" if "?" in path else "?"
            conn = self._conn(timeout=None)
            try:
                conn.request("GET", f"{path}{sep}watch=1&allowWatchBookmarks=true"
                                    f"&resourceVersion={rv}&timeoutSeconds={timeout_s}",
                             headers={"Accept": "application/json"})
                resp = conn.getresponse()
                if resp.status != 200:
                    raise ApiError(resp.status, resp.read().decode())
                # Lets the caller close the socket from another thread.
                if socks is not None:
                    socks.add(conn.sock)
                while not stop.is_set():
                    line = resp.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev["type"] == "ERROR":
                        raise ApiError(ev["object"].get("code", 0), json.dumps(ev["object"]))
                    rv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        on_event(ev)
            except (OSError, http.client.HTTPException, ValueError):
                if stop.is_set():
                    return
                raise
            finally:
                if socks is not None:
                    socks.discard(conn.sock)
                conn.close()


class Watcher:
    """A WATCH in a thread from "now" (the LIST's resourceVersion), every
    event kept in order with the time it arrived. Errors are kept and
    re-raised by stop()."""

    def __init__(self, api, path):
        self.api, self.path = api, path
        self.events = []
        self.error = None
        self._stop = threading.Event()
        self._socks = set()
        lst = api.get(path)
        self.initial = lst["items"]
        self.rv = lst["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            self.api.watch(self.path, self.rv, self._stop,
                           lambda ev: self.events.append((time.monotonic(), ev)),
                           socks=self._socks)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            self.error = e

    def stop(self):
        self._stop.set()
        for s in list(self._socks):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(10)
        if self.error:
            raise AssertionError(f"watch of {self.path} failed: {self.error}")


# ---- Sandboxes ---------------------------------------------------------------


def sandbox(ns, name, image="busybox:1.36", gen=0, allow=None):
    """A Sandbox whose spec is decided by (image, gen, allow): gen goes into
    an env var (a pod change), allow into the egress (a policy-only change)."""
    # Written with the CRD's defaults filled in, so that the stored spec
    # equals it.
    spec = {"image": image, "env": [{"name": "KAGE_FAULT_GEN", "value": str(gen)}],
            "paused": False}
    if allow:
        spec["egress"] = {"dns": True, "allow": allow}
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def egress_allow(i):
    """The i-th of a few egress allow lists (TEST-NET-3 addresses)."""
    return [
        None,
        [{"cidr": "203.0.113.0/24", "ports": [{"port": 443, "protocol": "TCP"}]}],
        [{"cidr": "203.0.113.16/28", "except": ["203.0.113.20/32"]},
         {"cidr": "198.51.100.0/24",
          "ports": [{"port": 8000, "endPort": 8100, "protocol": "TCP"}]}],
    ][i % 3]


def expected_policy_spec(sbx):
    """The NetworkPolicy spec kage renders for a Sandbox (no class)."""
    name = sbx["metadata"]["name"]
    egress_spec = sbx["spec"].get("egress") or {}
    egress = [] if egress_spec.get("dns") is False else [DNS_RULE]
    for a in egress_spec.get("allow") or []:
        block = {"cidr": a["cidr"]}
        if a.get("except"):
            block["except"] = list(a["except"])
        rule = {"to": [{"ipBlock": block}]}
        if a.get("ports"):
            rule["ports"] = [dict({"protocol": p.get("protocol", "TCP"), "port": p["port"]},
                                  **({"endPort": p["endPort"]} if "endPort" in p else {}))
                             for p in a["ports"]]
        egress.append(rule)
    spec = {"podSelector": {"matchLabels": {SANDBOX_LABEL: name}},
            "policyTypes": ["Ingress", "Egress"]}
    if egress:
        spec["egress"] = egress
    return spec


def apply_all(kubectl, objs, attempts=60):
    """kubectl apply of a List, retried while the API server is away."""
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
    last = None
    for _ in range(attempts):
        proc = kubectl.run("apply", "--server-side", "--field-manager=fault-test",
                           "--force-conflicts", "-f", "-", input=text, check=False,
                           timeout=180)
        if proc.returncode == 0:
            return
        last = proc.stderr.strip()
        time.sleep(1)
    raise AssertionError(f"kubectl apply kept failing: {last}")


def delete_names(kubectl, ns, names, attempts=60):
    """kubectl delete of Sandboxes by name, retried while the API server is away."""
    last = None
    for _ in range(attempts):
        proc = kubectl.run("-n", ns, "delete", "sandbox", *names, "--ignore-not-found",
                           "--wait=false", check=False, timeout=180)
        if proc.returncode == 0:
            return
        last = proc.stderr.strip()
        time.sleep(1)
    raise AssertionError(f"kubectl delete kept failing: {last}")


# ---- convergence --------------------------------------------------------------


def _owner_uid(obj):
    refs = [r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")]
    if len(refs) != 1 or refs[0].get("kind") != "Sandbox" or \
            refs[0].get("apiVersion") != API_VERSION:
        return None
    return refs[0]["uid"]


def _cond(sbx, ctype):
    for c in sbx.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def _env(spec):
    return [{"name": e["name"], "value": e.get("value", "")} for e in spec.get("env") or []]


def problems(api, namespaces, expect=None):
    """Everything that keeps the namespaces from being converged, as a list
    of sentences ([] = converged). expect, when given, maps (ns, name) to the
    spec each live Sandbox must have (what the test last applied): nothing
    lost, nothing extra."""
    out = []
    for ns in namespaces:
        sbxs = api.items(f"/apis/kage.dev/v1alpha1/namespaces/{ns}/sandboxes")
        pods = api.items(f"/api/v1/namespaces/{ns}/pods")
        pols = api.items(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")
        live = {}
        for s in sbxs:
            if s["metadata"].get("deletionTimestamp"):
                out.append(f"{ns}/{s['metadata']['name']}: Sandbox still being deleted")
            else:
                live[s["metadata"]["name"]] = s
        if expect is not None:
            want = {n: spec for (ens, n), spec in expect.items() if ens == ns}
            for n in sorted(set(want) - set(live)):
                out.append(f"{ns}/{n}: Sandbox missing (applied, never deleted)")
            for n in sorted(set(live) - set(want)):
                out.append(f"{ns}/{n}: Sandbox present but deleted by the test")
            for n in sorted(set(want) & set(live)):
                if live[n]["spec"] != want[n]:
                    out.append(f"{ns}/{n}: spec {live[n]['spec']} is not the last applied "
                               f"{want[n]}")
        pods_by_name = {p["metadata"]["name"]: p for p in pods}
        pols_by_name = {p["metadata"]["name"]: p for p in pols}
        by_label = {}
        for p in pods:
            lbl = p["metadata"].get("labels", {}).get(SANDBOX_LABEL)
            by_label.setdefault(lbl, []).append(p["metadata"]["name"])
        uids = {s["metadata"]["uid"] for s in live.values()}

        base = pols_by_name.get(BASELINE)
        if live:
            if base is None:
                out.append(f"{ns}: no {BASELINE}")
            elif base["spec"] != BASELINE_SPEC or base["metadata"].get("deletionTimestamp") or \
                    base["metadata"].get("labels") != BASELINE_LABELS:
                out.append(f"{ns}: {BASELINE} is {base['metadata'].get('labels')} "
                           f"{base['spec']}")

        for name, s in sorted(live.items()):
            key = f"{ns}/{name}"
            uid = s["metadata"]["uid"]
            pod = pods_by_name.get(name)
            if by_label.get(name, []) != ([name] if pod else []):
                out.append(f"{key}: pods labelled for it: {by_label.get(name)}")
            if pod is None:
                out.append(f"{key}: no pod")
            else:
                md, c = pod["metadata"], pod["spec"]["containers"][0]
                if md.get("deletionTimestamp"):
                    out.append(f"{key}: pod being deleted")
                if _owner_uid(pod) != uid:
                    out.append(f"{key}: pod owned by {md.get('ownerReferences')}, not uid {uid}")
                if md.get("labels", {}).get(MANAGED_BY) != "kage" or \
                        md.get("labels", {}).get(SANDBOX_LABEL) != name:
                    out.append(f"{key}: pod labels {md.get('labels')}")
                if c["image"] != s["spec"]["image"]:
                    out.append(f"{key}: pod image {c['image']}, Sandbox {s['spec']['image']}")
                if [e for e in c.get("env", []) if e["name"] != "KAGE_BEFORE_SCRIPT"] != \
                        _env(s["spec"]):
                    out.append(f"{key}: pod env {c.get('env')}, Sandbox {s['spec'].get('env')}")
                if pod.get("status", {}).get("phase") != "Running" or \
                        not pod["status"].get("podIP"):
                    out.append(f"{key}: pod {pod.get('status', {}).get('phase')} "
                               f"ip={pod.get('status', {}).get('podIP')}")
            pol = pols_by_name.get(name)
            if pol is None:
                out.append(f"{key}: no NetworkPolicy")
            else:
                md = pol["metadata"]
                if md.get("deletionTimestamp"):
                    out.append(f"{key}: policy being deleted")
                if _owner_uid(pol) != uid:
                    out.append(f"{key}: policy owned by {md.get('ownerReferences')}, not {uid}")
                if md.get("labels") != {SANDBOX_LABEL: name, MANAGED_BY: "kage"}:
                    out.append(f"{key}: policy labels {md.get('labels')}")
                if pol["spec"] != expected_policy_spec(s):
                    out.append(f"{key}: policy spec {pol['spec']} != "
                               f"{expected_policy_spec(s)}")
            st = s.get("status", {})
            gen = s["metadata"]["generation"]
            ready, iso = _cond(s, "Ready"), _cond(s, "NetworkIsolated")
            types = sorted(c["type"] for c in st.get("conditions", []))
            bad = []
            if st.get("phase") != "Running":
                bad.append(f"phase={st.get('phase')}")
            if st.get("observedGeneration") != gen:
                bad.append(f"observedGeneration={st.get('observedGeneration')} generation={gen}")
            if types != ["NetworkIsolated", "Ready"]:
                bad.append(f"conditions={types}")
            for c in (ready, iso):
                if c and (c["status"] != "True" or c.get("observedGeneration") != gen):
                    bad.append(f"{c['type']}={c['status']}/{c.get('reason')}@"
                               f"{c.get('observedGeneration')}")
            if st.get("podName") != name:
                bad.append(f"podName={st.get('podName')}")
            if not st.get("podIP") or (pod and st.get("podIP") != pod["status"].get("podIP")):
                bad.append(f"podIP={st.get('podIP')}")
            if pod and st.get("nodeName") != pod["spec"].get("nodeName"):
                bad.append(f"nodeName={st.get('nodeName')}")
            if bad:
                out.append(f"{key}: status {', '.join(bad)}")

        # Nothing else: every pod and policy in these namespaces belongs to a
        # live Sandbox (the garbage collector removed those of the dead).
        for p in pods:
            n = p["metadata"]["name"]
            if n not in live or _owner_uid(p) not in uids:
                out.append(f"{ns}/{n}: pod without a live owner "
                           f"(labels {p['metadata'].get('labels')})")
        for p in pols:
            n = p["metadata"]["name"]
            if n == BASELINE:
                continue
            if n not in live or _owner_uid(p) not in uids:
                out.append(f"{ns}/{n}: policy without a live owner "
                           f"(labels {p['metadata'].get('labels')})")
    return out


def wait_converged(api, namespaces, expect=None, timeout=CONVERGE_TIMEOUT, ctl=None):
    """Polls problems() until there are none; fails with what is left (and
    the controller's log tail) after timeout. Returns the seconds taken."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = problems(api, namespaces, expect)
        if not last:
            return time.monotonic() - t0
        if ctl is not None and ctl.proc is not None and ctl.proc.poll() is not None:
            break
        time.sleep(2)
    tail = ""
    if ctl is not None:
        tail = "\ncontroller log tail:\n" + "\n".join(ctl.log().splitlines()[-40:])
        if ctl.proc is not None and ctl.proc.poll() is not None:
            tail = f"\nthe controller exited with {ctl.proc.returncode}" + tail
    raise AssertionError(
        f"not converged after {time.monotonic() - t0:.0f}s: {len(last)} problem(s):\n  " +
        "\n  ".join(last[:40]) + tail)


# ---- the controller from outside ------------------------------------------------


def metrics(port):
    """/metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def metric_sum(samples, prefix, **labels):
    """The sum of the samples of one metric whose labels include labels."""
    total = 0.0
    for k, v in samples.items():
        if not k.startswith(prefix + "{") and k != prefix:
            continue
        if all(f'{lk}="{lv}"' in k for lk, lv in labels.items()):
            total += v
    return total


def cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_entries(ctl, msg):
    return [line for line in ctl.log_lines() if line.get("msg") == msg]


def created_pods(ctl):
    """How many "created pod" lines the controller's log (every run) has
    per sandbox key."""
    counts = {}
    for line in log_entries(ctl, "created pod"):
        counts[line["sandbox"]] = counts.get(line["sandbox"], 0) + 1
    return counts


def rbac_denials(ctl):
    return [line for line in ctl.log_lines() if line.get("code") == 403 and
            'User "system:serviceaccount:kage-system:kage-controller" cannot' in
            line.get("message", "")]


def kubeconfig_via(kc, port, out):
    """A copy of kubeconfig kc whose server is https://127.0.0.1:port (the
    proxy): TLS goes through untouched, the API server's certificate has
    the SAN IP:127.0.0.1, so it verifies as before."""
    lines = []
    for line in Path(kc).read_text().splitlines():
        if line.strip().startswith("server:"):
            line = line[:line.index("server:")] + f"server: https://127.0.0.1:{port}"
        lines.append(line)
    Path(out).write_text("\n".join(lines) + "\n")
    os.chmod(out, 0o600)
    return Path(out)


def utc_now():
    """Now as the controller's log writes it (lexically comparable)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def wait_http(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"the controller's /healthz on port {port} never answered")
