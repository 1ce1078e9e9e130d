# SPDX-License-Identifier: Apache-2.0
"""The API server says no: 429 and 409.

- 429: API Priority and Fairness is made tight for kage's ServiceAccount (a
  FlowSchema matching it, pointing at a PriorityLevelConfiguration with one
  nominal share, nothing to borrow, one queue of one), then a burst of
  Sandboxes. The controller must see 429s, converge anyway, and not spin:
  its requests per Sandbox and its CPU stay bounded, and once converged it
  writes nothing at all.
- 409: the test edits the Sandboxes' NetworkPolicies from outside as fast
  as it can, each edit an update at the resourceVersion it read (so the
  test's writes and kage's restores race, and the loser of a race gets
  409). kage restores every edit it sees, at most once per edit, and is
  quiet once the edits stop.
"""

import json
import threading
import time

import pytest

from faults.common import (IMAGES, ApiError, apply_all, cpu_seconds, figure, log_entries,
                           metric_sum, metrics, sandbox, wait_converged)

BURST = 200
TIGHT = "kage-fault-tight"

# A Sandbox needs about 6 requests when nothing fails: its policy and pod
# (POST each), 2-3 status patches, 2 Events. Each request is tried at most
# 6 times (the client's max_attempts). Above 6 x 6 per Sandbox the
# controller is looping, not retrying.
REQUESTS_PER_SANDBOX = 36
# CPU: a Sandbox costs the controller about 1 ms of CPU per request; 20 ms
# per Sandbox (with start-up) leaves room for JSON and TLS on a slow shared
# machine and none for a busy loop.
CPU_PER_SANDBOX = 0.02
CPU_BASE = 2.0
QUIET = 10  # seconds after convergence in which nothing may be written


def quiet_window(ctl, seconds=QUIET):
    """Over seconds of an idle, converged cluster: the controller's writes
    (must be none), requests and CPU seconds."""
    m0, c0 = metrics(ctl.port), cpu_seconds(ctl.proc.pid)
    time.sleep(seconds)
    m1, c1 = metrics(ctl.port), cpu_seconds(ctl.proc.pid)
    writes = metric_sum(m1, "kage_writes_total") - metric_sum(m0, "kage_writes_total")
    requests = metric_sum(m1, "kage_api_requests_total") - metric_sum(m0, "kage_api_requests_total")
    return writes, requests, c1 - c0


@pytest.fixture
def tight_apf(kubectl):
    """kage's ServiceAccount in a priority level of its own, as small as
    APF allows; removed after the test."""
    plc = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": TIGHT},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Queue", "queuing": {
                "queues": 1, "handSize": 1, "queueLengthLimit": 1}}}},
    }
    fs = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": TIGHT},
        "spec": {
            "priorityLevelConfiguration": {"name": TIGHT},
            "matchingPrecedence": 500,  # before the built-in service-accounts (9000)
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                    "name": "kage-controller", "namespace": "kage-system"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "namespaces": ["*"], "clusterScope": True}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            }],
        },
    }
    try:
        kubectl.apply(plc)
        kubectl.apply(fs)

        def active():
            conds = kubectl.json("get", "flowschema", TIGHT).get("status", {}).get("conditions")
            return any(c["type"] == "Dangling" and c["status"] == "False" for c in conds or [])
        deadline = time.monotonic() + 30
        while not active():
            assert time.monotonic() < deadline, "the FlowSchema never became active"
            time.sleep(0.5)
        time.sleep(2)  # every API server filter has the new configuration
        yield
    finally:
        kubectl.run("delete", "flowschema", TIGHT, "--ignore-not-found", check=False)
        kubectl.run("delete", "prioritylevelconfiguration", TIGHT, "--ignore-not-found",
                    check=False)


def test_429_from_priority_and_fairness_converges_without_spinning(
        kubectl, api, controllers, namespaces, tight_apf):
    nss = [namespaces("apf") for _ in range(2)]
    ctl = controllers("apf")  # its LISTs and WATCHes are throttled too
    expect = {}
    objs = []
    for i in range(BURST):
        o = sandbox(nss[i % 2], f"sbx-{i:03d}", IMAGES[i % len(IMAGES)])
        expect[(nss[i % 2], o["metadata"]["name"])] = o["spec"]
        objs.append(o)
    t0 = time.monotonic()
    for lo in range(0, BURST, 50):
        apply_all(kubectl, objs[lo:lo + 50])
    took = wait_converged(api, nss, expect, ctl=ctl, timeout=300)
    total = time.monotonic() - t0
    m = metrics(ctl.port)
    cpu = cpu_seconds(ctl.proc.pid)
    rejected = metric_sum(m, "kage_api_responses_total", code="429")
    requests = metric_sum(m, "kage_api_requests_total")
    writes, idle_requests, idle_cpu = quiet_window(ctl)
    figure("apf[429]",
           f"{BURST} Sandboxes converged in {total:.0f}s ({took:.0f}s after the last apply); "
           f"{rejected:.0f} responses 429, {m['kage_api_retries_total']:.0f} retries, "
           f"{requests / BURST:.1f} requests per Sandbox (bound {REQUESTS_PER_SANDBOX}), "
           f"CPU {cpu:.2f}s (bound {CPU_BASE + CPU_PER_SANDBOX * BURST:.1f}s); "
           f"idle {QUIET}s: {writes:.0f} writes, {idle_requests:.0f} requests, "
           f"{idle_cpu:.2f}s CPU")
    assert rejected > 0, "no 429: the priority level was not tight enough to test anything"
    assert requests / BURST <= REQUESTS_PER_SANDBOX, requests
    assert cpu <= CPU_BASE + CPU_PER_SANDBOX * BURST, cpu
    assert writes == 0, f"{writes} writes after convergence: a loop"
    assert idle_cpu <= 0.5, f"{idle_cpu:.2f}s CPU in {QUIET}s of quiet: a loop"


ALLOW_ALL = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
RACE_SECONDS = 20


def test_409_races_with_outside_edits_converge_without_a_loop(kubectl, api, controllers,
                                                              namespaces):
    ns = namespaces("race")
    ctl = controllers("race")
    names = [f"sbx-{i}" for i in range(5)]
    expect = {(ns, n): sandbox(ns, n)["spec"] for n in names}
    apply_all(kubectl, [sandbox(ns, n) for n in names])
    wait_converged(api, [ns], expect, ctl=ctl)
    before = metrics(ctl.port)
    mark = len(log_entries(ctl, "restoring network policy"))

    # Editors, two per policy: read, add an egress rule of their own (a
    # new address each time), write back at the version read. A restore by
    # kage or the other editor's write in between makes the write fail with
    # 409; the editor reads again and goes on.
    stop = threading.Event()
    counts = {"edits": 0, "conflicts": 0}
    lock = threading.Lock()
    errors = []

    def editor(name, who):
        path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{name}"
        k = 0
        try:
            while not stop.is_set():
                try:
                    pol = api.request("GET", path)
                except ApiError as e:
                    if e.status == 404:
                        continue
                    raise
                k += 1
                cidr = f"10.{who}.{k // 256 % 256}.{k % 256}/32"
                pol["spec"].setdefault("egress", []).append(
                    {"to": [{"ipBlock": {"cidr": cidr}}]})
                try:
                    api.request("PUT", path, pol)
                    with lock:
                        counts["edits"] += 1
                except ApiError as e:
                    if e.status != 409:
                        raise
                    with lock:
                        counts["conflicts"] += 1
                time.sleep(0.02)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=editor, args=(n, w), daemon=True)
               for n in names for w in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(RACE_SECONDS)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    took = wait_converged(api, [ns], expect, ctl=ctl, timeout=60)
    after = metrics(ctl.port)
    restores = len(log_entries(ctl, "restoring network policy")) - mark
    updates = after['kage_writes_total{kind="update"}'] - before['kage_writes_total{kind="update"}']
    writes, idle_requests, idle_cpu = quiet_window(ctl)
    figure("race[409]",
           f"{counts['edits']} outside edits in {RACE_SECONDS}s, {counts['conflicts']} of the "
           f"editor's writes lost a race (409); kage restored {restores} times "
           f"({updates:.0f} update writes), converged {took:.1f}s after the last edit; idle "
           f"{QUIET}s: {writes:.0f} writes, {idle_cpu:.2f}s CPU")
    assert counts["edits"] >= len(names), counts
    # Every restore answers an edit; an edit is answered at most once.
    assert 1 <= restores <= counts["edits"], (restores, counts)
    assert updates == restores
    assert writes == 0, f"{writes} writes after convergence: a loop"
    assert idle_cpu <= 0.5, f"{idle_cpu:.2f}s CPU in {QUIET}s of quiet: a loop"


def test_a_policy_whose_label_was_removed_is_restored(kubectl, api, controllers, namespaces):
    """Removing app.kubernetes.io/managed-by from a sandbox's policy takes
    it out of kage's watch (a label selector): kage must still put the
    policy back as it renders it, labels included, and keep restoring it
    when it is edited afterwards. On the way, kage's create gets 409
    AlreadyExists."""
    ns = namespaces("label")
    ctl = controllers("label")
    expect = {(ns, "sbx-0"): sandbox(ns, "sbx-0")["spec"]}
    apply_all(kubectl, [sandbox(ns, "sbx-0")])
    wait_converged(api, [ns], expect, ctl=ctl)
    before = metrics(ctl.port)
    kubectl.run("-n", ns, "label", "networkpolicy", "sbx-0", "app.kubernetes.io/managed-by-")
    time.sleep(3)
    kubectl.run("-n", ns, "patch", "networkpolicy", "sbx-0", "--type=json", "-p",
                json.dumps([{"op": "add", "path": "/spec/egress/-", "value": ALLOW_ALL}]))
    after = metrics(ctl.port)
    conflicts = metric_sum(after, "kage_api_responses_total", verb="POST", code="409") - \
        metric_sum(before, "kage_api_responses_total", verb="POST", code="409")
    wait_converged(api, [ns], expect, ctl=ctl, timeout=30)
    figure("label[409]", f"{conflicts:.0f} POST 409 (AlreadyExists) on the way")
