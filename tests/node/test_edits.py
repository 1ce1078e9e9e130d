# SPDX-License-Identifier: Apache-2.0
"""Changes to a running sandbox's allow list reach the packets, and how
fast: a loop inside the sandbox tries 203.0.113.10 on ports 80 and 443
every 100 ms while the Sandbox is edited; the time from the edit to the
first try with the new outcome is printed and bounded. And a policy of
kage's deleted from outside is put back without the traffic it blocked
ever passing."""

import json
import os
import time

import pytest

from probes import TEST_HOST, Watch, apply_all, sandbox, wait_ready
from conftest import wait_for

BOUND = float(os.environ.get("KAGE_NODE_EDIT_BOUND", "10"))  # seconds an edit may take


def allow(*ports):
    return {"allow": [{"cidr": f"{TEST_HOST}/32",
                       "ports": [{"port": p, "protocol": "TCP"} for p in ports]}]}


@pytest.fixture(scope="module")
def running(kubectl, namespaces, real_node_class):
    """Two sandboxes allowed 203.0.113.10:443, made at once: `edited` and
    `guarded`."""
    ns = namespaces("edits")
    objects = [sandbox(ns, name, real_node_class, egress=allow(443))
               for name in ("edited", "guarded")]
    apply_all(kubectl, objects)
    wait_ready(kubectl, objects)
    return ns


@pytest.fixture
def watch(kubectl, running):
    made = []

    def make(name):
        w = Watch(kubectl, running, name, (80, 443))
        made.append(w)
        mark = time.monotonic()
        # The loop runs and sees the starting state: 443 open, 80 closed.
        assert w.state_after(mark, 443) is True
        assert w.state_after(mark, 80) is False
        return w

    yield make
    for w in made:
        w.stop()


def patch(kubectl, ns, name, body, kind="merge"):
    kubectl.run("-n", ns, "patch", "sandbox", name, f"--type={kind}", "-p", json.dumps(body))


def test_widening_narrowing_and_removing_the_allow_list_take_effect(
        kubectl, running, watch, figures):
    w = watch("edited")

    t = time.monotonic()
    patch(kubectl, running, "edited", {"spec": {"egress": allow(443, 80)}})
    widened = w.settle(t, 80, True, BOUND)
    assert w.since(t, 443) and all(s[2] for s in w.since(t, 443)), "443 closed while widening"

    t = time.monotonic()
    patch(kubectl, running, "edited", {"spec": {"egress": allow(80)}})
    narrowed = w.settle(t, 443, False, BOUND)
    assert all(s[2] for s in w.since(t, 80)), "80 closed while narrowing to it"

    t = time.monotonic()
    patch(kubectl, running, "edited", [{"op": "remove", "path": "/spec/egress/allow"}],
          kind="json")
    removed = w.settle(t, 80, False, BOUND)
    assert not any(s[2] for s in w.since(t, 443)), "443 opened again"
    policy = kubectl.json("-n", running, "get", "networkpolicy", "edited")
    assert len(policy["spec"]["egress"]) == 1  # the DNS rule alone

    figures.add("edit to packets", f"widen (add 80): {widened * 1000:.0f} ms; "
                f"narrow (remove 443): {narrowed * 1000:.0f} ms; "
                f"remove the allow list: {removed * 1000:.0f} ms (bound {BOUND:.0f} s)")


def test_a_deleted_policy_is_put_back_and_what_it_blocked_stays_blocked(
        kubectl, running, watch, figures):
    """The admin deletes kage's policy of the sandbox. Until kage writes it
    again the namespace's baseline (deny all) still selects the pod, so
    port 80 stays closed all along; 443, allowed by the deleted policy,
    may close for that while and must open again."""
    w = watch("guarded")
    old = kubectl.json("-n", running, "get", "networkpolicy", "guarded")["metadata"]["uid"]

    t = time.monotonic()
    kubectl.run("-n", running, "delete", "networkpolicy", "guarded", "--wait=false")

    def back():
        proc = kubectl.run("-n", running, "get", "networkpolicy", "guarded", "-o",
                           "jsonpath={.metadata.uid}", "--ignore-not-found", check=False)
        uid = proc.stdout.strip()
        return uid if uid and uid != old else None
    wait_for(back, timeout=BOUND, interval=0.1, what="kage to write the policy again")
    restored = time.monotonic() - t
    reopened = w.settle(t, 443, True, BOUND)
    # Keep trying a while after, then count.
    end = time.monotonic() + 2
    wait_for(lambda: w.since(end, 80), timeout=10, what="more tries of port 80")
    tries80 = w.since(t, 80)
    closed443 = [s for s in w.since(t, 443) if not s[2]]
    figures.add("policy deleted", f"put back after {restored * 1000:.0f} ms; 443 open again "
                f"{reopened * 1000:.0f} ms after the deletion ({len(closed443)} tries of 443 "
                f"refused meanwhile); port 80 tried {len(tries80)} times, "
                f"{sum(1 for s in tries80 if s[2])} got through")
    assert len(tries80) >= 5
    assert [s for s in tries80 if s[2]] == []
