# SPDX-License-Identifier: Apache-2.0
"""A deleted Sandbox's own NetworkPolicy goes after its pod, on the real
API server and the real garbage collector (kube-controller-manager).

The policy has two owners once the pod exists: the Sandbox (its
controller) and the pod (not a controller, no blockOwnerDeletion). The
garbage collector deletes an object only once all its owners are gone, so
the policy lives as long as the pod does when the Sandbox is deleted in
the background (kubectl's default) or orphaning its children; a
foreground delete takes dependents first, by the collector's own rule,
and the namespace's baseline alone guards the pod while it terminates.

kwok finishes a pod's deletion at once, so a pod that outlives its Sandbox
is made here the way a slow kubelet would: the sandbox's class schedules
it nowhere (no kubelet ever confirms its end) and an administrator's
finalizer holds it, then lets it go.
"""

import time
import uuid

import pytest

from conftest import wait_for
from expected import API_VERSION, BASELINE_SPEC, RESTRICTED
from sandboxes import get, wait_reason

IMAGE = "busybox:1.36"
RUN = uuid.uuid4().hex[:8]
HOLD = "e2e.kage.dev/hold"
CONVERGE = 10  # seconds kage or the garbage collector may take
HELD = 3  # seconds a held pod is watched for its policy


def sandbox(ns, name, **spec):
    spec.setdefault("image", IMAGE)
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def sandbox_ref(sbx):
    return {"apiVersion": API_VERSION, "kind": "Sandbox", "name": sbx["metadata"]["name"],
            "uid": sbx["metadata"]["uid"], "controller": True}


def pod_ref(pod):
    return {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"], "controller": False}


def owners(kubectl, ns, name):
    pol = get(kubectl, ns, "networkpolicy", name)
    return None if pol is None else pol["metadata"].get("ownerReferences", [])


def wait_owners(kubectl, ns, name, want, what):
    wait_for(lambda: owners(kubectl, ns, name) == want, timeout=CONVERGE, what=what)


@pytest.fixture
def nowhere(kubectl):
    """A class whose pods are never scheduled: no kubelet ends them."""
    name = f"nowhere-{RUN}-{uuid.uuid4().hex[:6]}"
    kubectl.apply({"apiVersion": API_VERSION, "kind": "SandboxClass",
                   "metadata": {"name": name},
                   "spec": {"nodeSelector": {"type": "no-such-node"}}})
    yield name
    kubectl.run("delete", "sandboxclass", name, "--ignore-not-found", check=False)


def garbage_collector_follows_sandboxes(kubectl, make_namespace, nowhere):
    """These tests time the garbage collector. It watches a kind only once
    its periodic discovery (every 30 s) has found it, and it rebuilds its
    watches after an API server restart: until then it deletes nothing a
    Sandbox owns. A ConfigMap owned by a throwaway Sandbox, deleted with
    it, shows that it follows Sandboxes now."""
    ns = make_namespace("gcprobe", RESTRICTED)
    kubectl.apply(sandbox(ns, "probe", sandboxClassName=nowhere))
    sbx = wait_for(lambda: get(kubectl, ns, "sandbox", "probe"), timeout=CONVERGE,
                   what="the probe Sandbox")
    kubectl.create({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "probe", "namespace": ns,
                                 "ownerReferences": [sandbox_ref(sbx)]}})
    kubectl.run("-n", ns, "delete", "sandbox", "probe", "--wait=false")
    wait_for(lambda: get(kubectl, ns, "configmap", "probe") is None, timeout=90,
             what="the garbage collector to follow Sandboxes")


@pytest.fixture
def held(kubectl, kage, make_namespace, nowhere):
    """A Sandbox whose pod (never scheduled) an administrator's finalizer
    holds; returns (ns, sandbox, pod) once the policy names the pod. The
    finalizer is taken off at the end whatever happened."""
    garbage_collector_follows_sandboxes(kubectl, make_namespace, nowhere)
    ns = make_namespace("order", RESTRICTED)
    kubectl.apply(sandbox(ns, "held", sandboxClassName=nowhere))
    pod = wait_for(lambda: get(kubectl, ns, "pod", "held"), timeout=CONVERGE,
                   what="the sandbox's pod")
    sbx = get(kubectl, ns, "sandbox", "held")
    wait_owners(kubectl, ns, "held", [sandbox_ref(sbx), pod_ref(pod)],
                "the policy to name the pod")
    kubectl.run("-n", ns, "patch", "pod", "held", "--type=merge",
                "-p", f'{{"metadata":{{"finalizers":["{HOLD}"]}}}}')
    yield ns, sbx, pod
    release(kubectl, ns)


def release(kubectl, ns):
    pod = get(kubectl, ns, "pod", "held")
    if pod and HOLD in pod["metadata"].get("finalizers", []):
        kubectl.run("-n", ns, "patch", "pod", "held", "--type=json",
                    "-p", '[{"op":"remove","path":"/metadata/finalizers"}]', check=False)


def going(kubectl, ns, name):
    pod = get(kubectl, ns, "pod", name)
    return pod if pod and "deletionTimestamp" in pod["metadata"] else None


def policy_goes_with_the_pod(kubectl, ns, pod):
    """While the pod is held, the policy stays, owned by the pod alone (the
    garbage collector drops the reference to the Sandbox gone); once the
    pod is gone, the policy follows within a few seconds. Returns that
    delay, in seconds."""
    wait_owners(kubectl, ns, "held", [pod_ref(pod)], "the policy held by the pod alone")
    before = get(kubectl, ns, "networkpolicy", "held")
    end = time.monotonic() + HELD
    while time.monotonic() < end:
        assert going(kubectl, ns, "held"), "the pod went while held"
        pol = get(kubectl, ns, "networkpolicy", "held")
        assert pol is not None, "the policy went before the pod"
        assert pol["spec"] == before["spec"]
        time.sleep(0.25)
    release(kubectl, ns)
    wait_for(lambda: get(kubectl, ns, "pod", "held") is None, timeout=CONVERGE,
             interval=0.05, what="the pod to go once released")
    gone = time.monotonic()
    wait_for(lambda: get(kubectl, ns, "networkpolicy", "held") is None, timeout=CONVERGE,
             interval=0.05, what="the policy to follow its pod")
    delay = time.monotonic() - gone
    print(f"policy gone {delay:.2f}s after its pod")
    return delay


def test_a_deleted_sandboxs_policy_outlives_its_pod(kubectl, held):
    ns, _, pod = held
    kubectl.run("-n", ns, "delete", "sandbox", "held", "--wait=false")
    wait_for(lambda: get(kubectl, ns, "sandbox", "held") is None, timeout=CONVERGE,
             what="the Sandbox to go")
    wait_for(lambda: going(kubectl, ns, "held"), timeout=CONVERGE,
             what="the garbage collector to delete the pod")
    assert policy_goes_with_the_pod(kubectl, ns, pod) < CONVERGE
    # The namespace's baseline is not the Sandbox's: it stays.
    assert get(kubectl, ns, "networkpolicy", "kage-baseline") is not None


def test_an_orphaning_delete_leaves_the_policy_to_the_pod(kubectl, held):
    """--cascade=orphan keeps the pod running: its policy stays with it,
    and goes when the pod is deleted."""
    ns, _, pod = held
    kubectl.run("-n", ns, "delete", "sandbox", "held", "--cascade=orphan", "--wait=false")
    # The garbage collector orphans only through its watch of Sandboxes,
    # which it starts within its discovery period (30 s) after the CRD is
    # installed.
    wait_for(lambda: get(kubectl, ns, "sandbox", "held") is None, timeout=60,
             what="the garbage collector to orphan the Sandbox's children")
    wait_for(lambda: "ownerReferences" not in get(kubectl, ns, "pod", "held")["metadata"],
             timeout=CONVERGE, what="the pod to be orphaned")
    wait_owners(kubectl, ns, "held", [pod_ref(pod)], "the policy owned by the pod alone")
    time.sleep(1)
    assert get(kubectl, ns, "pod", "held") is not None
    assert owners(kubectl, ns, "held") == [pod_ref(pod)]
    kubectl.run("-n", ns, "delete", "pod", "held", "--wait=false")
    assert policy_goes_with_the_pod(kubectl, ns, pod) < CONVERGE


def test_the_policy_follows_the_pod_through_edits_and_pauses(kubectl, kage, make_namespace):
    ns = make_namespace("order", RESTRICTED)
    kubectl.apply(sandbox(ns, "moving"))
    sbx = wait_reason(kubectl, ns, "moving", "SandboxReady", timeout=30)
    first = get(kubectl, ns, "pod", "moving")
    # Ready comes after the policy names the pod.
    assert owners(kubectl, ns, "moving") == [sandbox_ref(sbx), pod_ref(first)]

    kubectl.run("-n", ns, "patch", "sandbox", "moving", "--type=merge",
                "-p", '{"spec":{"image":"busybox:1.37"}}')
    second = wait_for(lambda: (p := get(kubectl, ns, "pod", "moving")) and
                      p["metadata"]["uid"] != first["metadata"]["uid"] and p,
                      timeout=CONVERGE, what="the pod to be replaced")
    wait_owners(kubectl, ns, "moving", [sandbox_ref(sbx), pod_ref(second)],
                "the policy to name the new pod")
    wait_reason(kubectl, ns, "moving", "SandboxReady", timeout=CONVERGE)

    kubectl.run("-n", ns, "patch", "sandbox", "moving", "--type=merge",
                "-p", '{"spec":{"paused":true}}')
    wait_reason(kubectl, ns, "moving", "Paused", timeout=CONVERGE)
    wait_for(lambda: get(kubectl, ns, "pod", "moving") is None, timeout=CONVERGE,
             what="the paused sandbox's pod to go")
    # The garbage collector drops the reference to the pod gone; kage
    # leaves that be, and the policy stays the Sandbox's.
    wait_owners(kubectl, ns, "moving", [sandbox_ref(sbx)], "the reference to the pod to go")
    pol = get(kubectl, ns, "networkpolicy", "moving")
    time.sleep(2)
    assert get(kubectl, ns, "networkpolicy", "moving")["metadata"]["resourceVersion"] == \
        pol["metadata"]["resourceVersion"]

    kubectl.run("-n", ns, "patch", "sandbox", "moving", "--type=merge",
                "-p", '{"spec":{"paused":false}}')
    wait_reason(kubectl, ns, "moving", "SandboxReady", timeout=CONVERGE)
    third = get(kubectl, ns, "pod", "moving")
    assert owners(kubectl, ns, "moving") == [sandbox_ref(sbx), pod_ref(third)]



def test_a_foreground_delete_takes_the_policy_first_and_the_baseline_stays(kubectl, held):
    """--cascade=foreground is the garbage collector's "dependents first":
    the pod, having a dependent (its policy), is deleted in the foreground
    too, and so the policy goes at once, while the pod still terminates.
    No ownership can change that; the namespace's baseline, which no
    Sandbox owns, still selects the pod and denies it everything."""
    ns, _, pod = held
    kubectl.run("-n", ns, "delete", "sandbox", "held", "--cascade=foreground", "--wait=false")
    t0 = time.monotonic()
    # The garbage collector's foreground pass may take it twice (first
    # dropping the Sandbox's reference while the pod is not yet marked,
    # then for the pod), with its own backoff between: its time, not
    # kage's. The held pod stays whatever it takes, so the order is tested.
    wait_for(lambda: get(kubectl, ns, "networkpolicy", "held") is None, timeout=60,
             what="the garbage collector to delete the policy")
    print(f"foreground: policy gone {time.monotonic() - t0:.2f}s after the delete")
    held_pod = going(kubectl, ns, "held")
    assert held_pod and held_pod["metadata"]["uid"] == pod["metadata"]["uid"]
    base = get(kubectl, ns, "networkpolicy", "kage-baseline")
    assert base["spec"] == BASELINE_SPEC
    assert "kage.dev/sandbox" in held_pod["metadata"]["labels"]
