# SPDX-License-Identifier: Apache-2.0
"""A sandbox that is not meant to run has no pod on the node (paused,
expired), and a deleted sandbox loses its pod before whatever isolates
it."""

import calendar
import json
import time

import pytest

from probes import (TEST_HOST, WATCHED, Watch, apply_all, boot_seconds, sandbox, wait_gone,
                    wait_ready)
from conftest import wait_for
from sandboxes import condition, get


@pytest.fixture(scope="module")
def ns(namespaces):
    return namespaces("life")


def stamp(rfc3339):
    """Seconds since the epoch of an RFC 3339 time in UTC with whole seconds."""
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


def phase(kubectl, ns, name):
    s = get(kubectl, ns, "sandbox", name)
    return (s or {}).get("status", {}).get("phase")


def test_paused_and_expired_sandboxes_have_no_pod(kubectl, tenant, ns, real_node_class,
                                                  figures):
    cls = real_node_class
    running = [sandbox(ns, "to-pause", cls), sandbox(ns, "to-expire", cls,
                                                     lifetime={"ttlSeconds": 20,
                                                               "shutdownPolicy": "Retain"})]
    idle = [sandbox(ns, "born-paused", cls, paused=True),
            sandbox(ns, "short-lived", cls, lifetime={"ttlSeconds": 20,
                                                       "shutdownPolicy": "Delete"})]
    apply_all(kubectl, running + idle, tenant)
    wait_ready(kubectl, running)

    wait_for(lambda: phase(kubectl, ns, "born-paused") == "Paused", timeout=30,
             what="born-paused to be Paused")
    assert get(kubectl, ns, "pod", "born-paused") is None
    ready = condition(get(kubectl, ns, "sandbox", "born-paused"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Paused")

    t = time.monotonic()
    tenant.run("-n", ns, "patch", "sandbox", "to-pause", "--type=merge",
                "-p", json.dumps({"spec": {"paused": True}}))
    wait_gone(kubectl, ns, "pod", "to-pause")
    paused_in = time.monotonic() - t
    wait_for(lambda: phase(kubectl, ns, "to-pause") == "Paused", timeout=30,
             what="to-pause to be Paused")

    # Retain: the Sandbox stays, Expired, without a pod.
    wait_for(lambda: phase(kubectl, ns, "to-expire") == "Expired", timeout=60, interval=0.5,
             what="to-expire to be Expired")
    wait_gone(kubectl, ns, "pod", "to-expire")
    expired = get(kubectl, ns, "sandbox", "to-expire")
    ready = condition(expired, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Expired")
    # Whole seconds (RFC 3339): the lifetime from creation, and how late
    # the Expired condition came after status.expiresAt.
    lifetime = stamp(expired["status"]["expiresAt"]) - stamp(
        expired["metadata"]["creationTimestamp"])
    late = stamp(ready["lastTransitionTime"]) - stamp(expired["status"]["expiresAt"])
    assert lifetime == 20, expired["status"]
    assert 0 <= late <= 5, (ready, expired["status"])
    # Delete: the Sandbox goes, and its pod with it.
    wait_gone(kubectl, ns, "sandbox", "short-lived", timeout=60)
    wait_gone(kubectl, ns, "pod", "short-lived")
    figures.add("lifecycle", f"paused: pod gone {paused_in * 1000:.0f} ms after the edit; "
                f"ttlSeconds 20: expiresAt {lifetime} s after creation, Expired {late} s after "
                "expiresAt (whole seconds)")

    # A paused sandbox still has no pod a while later.
    time.sleep(2)
    for name in ("born-paused", "to-pause", "to-expire"):
        assert get(kubectl, ns, "pod", name) is None, name


def test_a_deleted_sandbox_loses_its_pod_before_what_isolates_it(kubectl, tenant, ns,
                                                                   real_node_class, figures):
    """The Sandbox's pod goes by the garbage collector, gracefully (its
    processes run on for the grace period); its own NetworkPolicy names the
    pod as a second owner, so the collector keeps it until the pod is gone,
    and the namespace's baseline (deny all) outlives every sandbox. Polled
    every ~100 ms: both policies exist at every poll while the pod does,
    the sandbox's own goes after it, and a loop in the pod never reaches
    port 80."""
    name = "deleted"
    obj = sandbox(ns, name, real_node_class, resources=WATCHED, egress={"allow": [
        {"cidr": f"{TEST_HOST}/32", "ports": [{"port": 443, "protocol": "TCP"}]}]})
    apply_all(kubectl, [obj], tenant)
    wait_ready(kubectl, [obj])
    w = Watch(kubectl, ns, name, (80,))
    try:
        assert w.state_after(boot_seconds(), 80) is False
        grace = kubectl.json("-n", ns, "get", "pod", name)["spec"]["terminationGracePeriodSeconds"]
        t, boot = time.monotonic(), boot_seconds()
        tenant.run("-n", ns, "delete", "sandbox", name, "--wait=false")
        polls, pod_gone, policy_gone = [], None, None
        while policy_gone is None and time.monotonic() - t < 90:
            items = kubectl.json("-n", ns, "get", "pods,networkpolicies")["items"]
            now = time.monotonic() - t
            names = {(i["kind"], i["metadata"]["name"]) for i in items}
            polls.append((now, names))
            if ("Pod", name) not in names and pod_gone is None:
                pod_gone = now
            if ("NetworkPolicy", name) not in names:
                policy_gone = now
            time.sleep(0.1)
        assert pod_gone is not None and policy_gone is not None, \
            f"pod gone at {pod_gone}, policy gone at {policy_gone}: not both within 90 s"
    finally:
        w.stop()
    unguarded = [p for p in polls if ("Pod", name) in p[1] and not
                 {("NetworkPolicy", "kage-baseline"), ("NetworkPolicy", name)} <= p[1]]
    tries = w.since(boot, 80)
    # The loop runs until the kubelet kills the container, within the grace
    # period; the pod object goes a moment after. Watched without a gap from
    # the delete to its last try, which is late in the grace period.
    watched = tries[-1][0] - boot if tries else 0.0
    gap = w.widest_gap(80, boot, boot + watched)
    figures.add("deletion order", f"{len(polls)} polls; pod gone at {pod_gone * 1000:.0f} ms, "
                f"own policy gone at {policy_gone * 1000:.0f} ms after the delete; both "
                f"policies present while the pod was: {not unguarded}; port 80 tried "
                f"{len(tries)} times meanwhile (at most {gap * 1000:.0f} ms apart over the "
                f"{watched:.1f} s the loop ran on), "
                f"{sum(1 for s in tries if s[2])} got through")
    assert unguarded == [], f"the pod existed without both policies: {unguarded}"
    assert pod_gone <= policy_gone
    assert watched >= grace - 2.0, f"the loop stopped {watched:.1f} s after the delete"
    assert gap < 0.75, f"port 80 was not watched continuously for the {watched:.1f} s the pod ran on"
    assert not any(s[2] for s in tries), tries
