# SPDX-License-Identifier: Apache-2.0
"""Operating kage like any well-behaved controller: leader election on a
Lease (one replica reconciles; a standby takes over when it dies or steps
down), /healthz, /readyz and /metrics, a clean exit on SIGTERM, and Events
on Sandboxes."""

import json
import re
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO, Controller, free_port, wait_for

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError:
        return 0, ""  # not listening yet


def sandbox(name):
    return {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
            "metadata": {"name": name}, "spec": {"image": "python:3.12-slim"}}


def ready(kubectl, ns, name):
    sbx = kubectl.json("-n", ns, "get", "sandbox", name)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in sbx.get("status", {}).get("conditions", []))


@pytest.fixture
def replicas(kubectl, tmp_path, kage):
    """Starts controllers with leader election under the shipped RBAC, each
    with its own /healthz port. The session's own controller (kage) is
    stopped for the test and started again after it."""
    assert kage.stop() == 0
    kc = kage.kubeconfig
    # The shipped Role allows this one Lease name only.
    lease = "kage-controller"
    kubectl.run("-n", "kage-system", "delete", "lease", lease, "--ignore-not-found")
    started = []

    def start(name):
        port = free_port()
        ctl = Controller(kc, tmp_path / f"{name}.log", "--leader-elect",
                         "--http-addr", f"127.0.0.1:{port}").start()
        ctl.port = port
        started.append(ctl)
        return ctl

    start.lease = lease
    yield start
    for ctl in started:
        if ctl.proc is not None:
            ctl.stop()
    kubectl.run("-n", "kage-system", "delete", "lease", lease, "--ignore-not-found")
    kage.start()
    kage.wait_synced()


def leader_of(ctl):
    return any(l.get("msg") == "became the leader" for l in ctl.log_lines())


def test_one_replica_reconciles_and_a_standby_takes_over(kubectl, make_namespace, replicas):
    ns = make_namespace("leader", RESTRICTED)
    a = replicas("a")
    wait_for(lambda: leader_of(a), timeout=30, what="the first replica to lead")
    b = replicas("b")
    b.wait_synced()
    kubectl.create(sandbox("one"), "-n", ns)
    wait_for(lambda: ready(kubectl, ns, "one"), timeout=30, what="sandbox one Ready")
    time.sleep(3)
    assert not leader_of(b), "the standby must not lead while the leader renews"
    assert not any(l.get("msg") == "created pod" for l in b.log_lines())
    lease = kubectl.json("-n", "kage-system", "get", "lease", replicas.lease)
    assert lease["spec"]["holderIdentity"].startswith(f"{socket.gethostname()}_")

    # The leader dies without a word: the standby waits out the lease.
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    a.proc = None
    a.log_file.close()
    t0 = time.monotonic()
    wait_for(lambda: leader_of(b), timeout=40, what="the standby to take over")
    took = time.monotonic() - t0
    assert took <= 15 + 2 * 2 + 3, f"took {took:.1f}s, more than the lease duration and two tries"
    kubectl.create(sandbox("two"), "-n", ns)
    wait_for(lambda: ready(kubectl, ns, "two"), timeout=30, what="sandbox two Ready")


def test_a_leader_stopped_by_sigterm_hands_the_lease_over(kubectl, make_namespace, replicas):
    a = replicas("a")
    wait_for(lambda: leader_of(a), timeout=30, what="the first replica to lead")
    b = replicas("b")
    b.wait_synced()
    t0 = time.monotonic()
    assert a.stop() == 0
    assert any(l.get("msg") == "releasing the lease" for l in a.log_lines())
    wait_for(lambda: leader_of(b), timeout=15, what="the standby to take over")
    assert time.monotonic() - t0 < 8, "a released lease is taken at the next try, not after expiry"
    lease = kubectl.json("-n", "kage-system", "get", "lease", replicas.lease)
    assert lease["spec"]["leaseTransitions"] >= 1


def api_requests(port):
    """kage_api_requests_total by verb, from a replica's /metrics."""
    code, text = get(port, "/metrics")
    assert code == 200
    out = {}
    for line in text.splitlines():
        if line.startswith('kage_api_requests_total{verb="'):
            name, value = line.rsplit(" ", 1)
            out[name.split('"')[1]] = int(float(value))
    return out


def test_an_idle_leader_renews_with_one_request_per_retry_period(replicas):
    a = replicas("a")
    wait_for(lambda: leader_of(a), timeout=30, what="the first replica to lead")
    time.sleep(3)  # past the take-over: renewals only
    before = api_requests(a.port)
    time.sleep(10)
    after = api_requests(a.port)
    delta = {verb: after[verb] - before.get(verb, 0) for verb in after}
    # Five renewals in 10 s at the 2 s retry period (six if the window
    # catches both ends), each a conditional PUT: no read of the Lease.
    assert delta["GET"] == 0
    assert 5 <= delta["PUT"] <= 6
    assert sum(delta.values()) == delta["PUT"]


def test_a_leader_whose_lease_is_taken_steps_down_and_keeps_off_it(kubectl, replicas):
    a = replicas("a")
    wait_for(lambda: leader_of(a), timeout=30, what="the first replica to lead")
    # An outside writer takes the Lease between two renewals: kage's next
    # renewal is conditional on what it wrote last, so it fails (409)
    # instead of overwriting, kage reads the new holder and stops.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    for _ in range(10):  # a renewal may land between our read and write
        lease = kubectl.json("-n", "kage-system", "get", "lease", replicas.lease)
        lease["spec"].update(holderIdentity="intruder", renewTime=now, acquireTime=now,
                             leaseDurationSeconds=60)
        out = kubectl.run("replace", "-f", "-", input=json.dumps(lease), check=False)
        if out.returncode == 0:
            break
        assert "the object has been modified" in out.stderr, out.stderr
    else:
        raise AssertionError("could not take the Lease in 10 tries")
    wait_for(lambda: a.proc.poll() is not None, timeout=15, what="the old leader to exit")
    assert a.proc.returncode == 1
    a.proc = None
    a.log_file.close()
    assert any(l.get("msg") == "lost the leadership" for l in a.log_lines())
    lease = kubectl.json("-n", "kage-system", "get", "lease", replicas.lease)
    assert lease["spec"]["holderIdentity"] == "intruder"
    assert lease["spec"]["renewTime"] == now


def test_health_readiness_and_metrics_are_served(kubectl, make_namespace, replicas, tmp_path):
    t0 = time.time()
    a = replicas("a")
    wait_for(lambda: get(a.port, "/healthz")[0] == 200, timeout=20, what="/healthz")
    assert get(a.port, "/healthz") == (200, "ok\n")
    wait_for(lambda: get(a.port, "/readyz")[0] == 200, timeout=30, what="/readyz")
    assert get(a.port, "/readyz") == (200, "ok\n")
    wait_for(lambda: leader_of(a), timeout=30, what="leadership")
    ns = make_namespace("metrics", RESTRICTED)
    created = time.monotonic()
    kubectl.create(sandbox("counted"), "-n", ns)
    wait_for(lambda: ready(kubectl, ns, "counted"), timeout=30, what="sandbox Ready")
    waited = time.monotonic() - created
    code, text = get(a.port, "/metrics")
    assert code == 200
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples["kage_leader"] == 1
    # The version and the commit the binary was built from (make builds it
    # from this tree: "-dirty" when the tree differs from HEAD).
    version = re.search(r"^VERSION\s*\?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)[1]
    git = ["git", "-C", str(REPO)]
    revision = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    if subprocess.run([*git, "diff", "--quiet", "HEAD"]).returncode:
        revision += "-dirty"
    assert samples[f'kage_build_info{{version="{version}",revision="{revision}"}}'] == 1
    assert samples["kage_caches_synced"] == 1
    assert samples['kage_writes_total{kind="create"}'] >= 1
    assert samples['kage_api_requests_total{verb="POST"}'] >= 2
    assert samples["kage_reconciles_total"] >= 1
    assert samples["process_resident_memory_bytes"] > 0
    assert samples['kage_api_responses_total{verb="POST",code="201"}'] >= 2
    assert samples['kage_reconcile_duration_seconds_bucket{le="+Inf"}'] == \
        samples["kage_reconcile_duration_seconds_count"] >= 1
    assert samples['kage_sandboxes{phase="Running"}'] >= 1
    assert 'kage_watch_restarts_total{resource="sandboxes"}' in samples
    assert "# TYPE kage_reconcile_duration_seconds histogram" in text
    assert "# TYPE kage_api_requests_total counter" in text
    # Create to Ready: this replica saw "counted" made, and timed it once.
    assert samples["kage_sandbox_ready_seconds_count"] == 1
    assert 0 < samples["kage_sandbox_ready_seconds_sum"] < waited
    assert samples['kage_sandbox_ready_seconds_bucket{le="+Inf"}'] == 1
    # By namespace: the namespace's one Sandbox, Running, and every phase said.
    by_phase = {k.split('phase="')[1][:-2]: v for k, v in samples.items()
                if k.startswith(f'kage_namespace_sandboxes{{namespace="{ns}",')}
    assert by_phase == {"": 0, "Pending": 0, "Creating": 0, "Running": 1, "Paused": 0,
                        "Succeeded": 0, "Failed": 0, "Expired": 0, "Terminating": 0}
    assert samples["kage_queue_wait_seconds_count"] >= 1
    assert samples['kage_queue_wait_seconds_bucket{le="+Inf"}'] == \
        samples["kage_queue_wait_seconds_count"]
    assert t0 - 1 <= samples["process_start_time_seconds"] <= time.time()
    assert 5 <= samples["process_open_fds"] < 1024
    assert samples["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert samples["process_virtual_memory_bytes"] > samples["process_resident_memory_bytes"]
    assert get(a.port, "/nope")[0] == 404

    # The monitoring package against this scrape: the alerts and the
    # dashboard parse as Prometheus reads them, name only metrics that are
    # exposed, and the exposition passes Prometheus's naming lint.
    scrape = tmp_path / "metrics.txt"
    scrape.write_text(text)
    mon = REPO / "manifests" / "monitoring"
    proc = subprocess.run([monitoring_check(), "-metrics", str(scrape),
                           "-rules", str(mon / "prometheusrule.yaml"),
                           "-dashboard", str(mon / "grafana-dashboard.json")],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stdout + proc.stderr


def monitoring_check():
    """tests/monitoring's checker, built once (tests/monitoring/build.sh)."""
    proc = subprocess.run([str(REPO / "tests" / "monitoring" / "build.sh")],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


def test_a_sandbox_has_events(kubectl, make_namespace, kage):
    ns = make_namespace("events", RESTRICTED)
    kubectl.create(sandbox("told"), "-n", ns)
    wait_for(lambda: ready(kubectl, ns, "told"), timeout=30, what="sandbox Ready")

    def events():
        items = kubectl.json("-n", ns, "get", "events.events.k8s.io")["items"]
        return [e for e in items if e["regarding"]["name"] == "told"]
    evs = wait_for(events, timeout=20, what="an Event on the sandbox")
    created = [e for e in evs if e["reason"] == "PodCreated"]
    assert len(created) == 1
    assert created[0]["type"] == "Normal"
    assert created[0]["note"] == "created pod told (runtime class kata-fc)"
    assert created[0]["reportingController"] == "kage.dev/controller"
    assert created[0]["regarding"]["kind"] == "Sandbox"


def test_a_refusal_and_the_recovery_are_told_in_events(kubectl, make_namespace, kage):
    ns = make_namespace("recover", RESTRICTED)
    kubectl.create({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tiny"},
                    "spec": {"hard": {"requests.cpu": "100m"}}}, "-n", ns)
    wait_for(lambda: kubectl.json("-n", ns, "get", "resourcequota", "tiny")
             .get("status", {}).get("used"), timeout=30, what="the quota to be counted")
    kubectl.create(sandbox("held"), "-n", ns)

    def events(reason):
        items = kubectl.json("-n", ns, "get", "events.events.k8s.io")["items"]
        return [e for e in items if e["regarding"]["name"] == "held" and e["reason"] == reason]
    refused = wait_for(lambda: events("QuotaExceeded"), timeout=30, what="a QuotaExceeded event")
    assert refused[0]["type"] == "Warning"
    assert refused[0]["note"].startswith('pods "held" is forbidden: exceeded quota: tiny')
    kubectl.run("-n", ns, "delete", "resourcequota", "tiny")
    recovered = wait_for(lambda: events("Recovered"), timeout=30, what="a Recovered event")
    assert recovered[0]["type"] == "Normal"
    assert recovered[0]["note"] == "the sandbox recovered from Pending and is ready on node kwok-node-0"
    assert len(events("QuotaExceeded")) == 1  # repeats within 10 minutes are not re-emitted
