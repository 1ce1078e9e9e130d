# SPDX-License-Identifier: Apache-2.0
"""The namespace baseline (kage-baseline: deny everything to every pod
labelled kage.dev/sandbox) is never missing while a sandbox pod exists.

- A Sandbox is deleted while its own policy is gone (the policy deleted,
  then the Sandbox, at once): for the whole time its pod exists, until the
  garbage collector removes it, the baseline exists and selects the pod.
  Rather than polling (which can miss a short gap), the test watches pods
  and policies in the namespace and replays every event in
  resourceVersion order (one etcd: one order for all), checking the
  invariant after each.
- kage-baseline deleted from outside is back quickly.
"""

import time

from faults.common import (BASELINE, BASELINE_LABELS, BASELINE_SPEC, SANDBOX_LABEL, Watcher,
                           apply_all, figure, sandbox, wait_converged)

BACK_WITHIN = 5.0  # seconds for kage to put a deleted baseline back


def replay(pod_w, pol_w):
    """Merges the two watches by resourceVersion; returns every moment a
    sandbox pod existed without a baseline selecting it, and the number of
    states checked."""
    pods = {p["metadata"]["name"]: p for p in pod_w.initial}
    pols = {p["metadata"]["name"]: p for p in pol_w.initial}
    events = [("pod", ev) for _, ev in pod_w.events] + [("pol", ev) for _, ev in pol_w.events]
    events.sort(key=lambda e: int(e[1]["object"]["metadata"]["resourceVersion"]))
    bad = []

    def check(rv):
        base = pols.get(BASELINE)
        guarded = base is not None and base["spec"] == BASELINE_SPEC
        for name, p in pods.items():
            if not guarded or SANDBOX_LABEL not in p["metadata"].get("labels", {}):
                bad.append(f"rv {rv}: pod {name} exists ({p['status'].get('phase')}, "
                           f"deleting={bool(p['metadata'].get('deletionTimestamp'))}) while "
                           f"baseline={'present' if base else 'absent'}, labels "
                           f"{p['metadata'].get('labels')}")

    check("initial")
    for kind, ev in events:
        o = ev["object"]
        table = pods if kind == "pod" else pols
        if ev["type"] == "DELETED":
            table.pop(o["metadata"]["name"], None)
        else:
            table[o["metadata"]["name"]] = o
        check(o["metadata"]["resourceVersion"])
    return bad, len(events)


def test_baseline_guards_a_pod_until_it_is_gone(kubectl, api, controllers, namespaces):
    ns = namespaces("base")
    ctl = controllers("baseline")
    names = [f"sbx-{i}" for i in range(6)]
    expect = {(ns, n): sandbox(ns, n)["spec"] for n in names}
    apply_all(kubectl, [sandbox(ns, n) for n in names])
    wait_converged(api, [ns], expect, ctl=ctl)

    pod_w = Watcher(api, f"/api/v1/namespaces/{ns}/pods")
    pol_w = Watcher(api, f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")
    try:
        # One at a time, the last one included (no sandbox left to need
        # the baseline by then, but its pod still does until it is gone).
        for n in names:
            api.delete(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{n}")
            api.delete(f"/apis/kage.dev/v1alpha1/namespaces/{ns}/sandboxes/{n}")
            del expect[(ns, n)]
            time.sleep(0.5)
        # Until the garbage collector has removed every pod and policy.
        wait_converged(api, [ns], expect, ctl=ctl)
        time.sleep(1)
    finally:
        pod_w.stop()
        pol_w.stop()
    bad, n_events = replay(pod_w, pol_w)
    figure("baseline[delete]", f"{len(names)} Sandboxes deleted right after their policies; "
                               f"{n_events} pod/policy events replayed, {len(bad)} unguarded")
    assert not bad, "a sandbox pod existed without the baseline:\n" + "\n".join(bad[:20])
    assert n_events >= 2 * len(names), "the watches saw too little to judge"


def test_a_deleted_baseline_is_back_quickly(kubectl, api, controllers, namespaces):
    ns = namespaces("base")
    ctl = controllers("baseline-back")
    names = ["sbx-a", "sbx-b"]
    expect = {(ns, n): sandbox(ns, n)["spec"] for n in names}
    apply_all(kubectl, [sandbox(ns, n) for n in names])
    wait_converged(api, [ns], expect, ctl=ctl)
    path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{BASELINE}"
    gaps = []
    for _ in range(3):
        old = api.get(path)["metadata"]["uid"]
        api.delete(path)
        t0 = time.monotonic()
        while True:
            cur = api.get_or_none(path)
            if cur is not None and cur["metadata"]["uid"] != old:
                break
            assert time.monotonic() - t0 < 30, "kage-baseline was not put back in 30s"
            time.sleep(0.02)
        gaps.append(time.monotonic() - t0)
        assert cur["spec"] == BASELINE_SPEC and cur["metadata"]["labels"] == BASELINE_LABELS
    wait_converged(api, [ns], expect, ctl=ctl)
    figure("baseline[back]", f"deleted 3 times, back after {[round(g, 2) for g in gaps]}s")
    assert max(gaps) <= BACK_WITHIN, gaps
