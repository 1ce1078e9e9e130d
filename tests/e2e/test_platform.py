# SPDX-License-Identifier: Apache-2.0
"""The platform team's controls end to end, with kage-controller running under
its own ServiceAccount (conftest's `kage`) against a real API server, in
namespaces that enforce Pod Security "restricted":

- SandboxClasses: defaults filled in, pod settings added, maxima, the
  egress ceiling and denied ranges enforced (PolicyViolation), a missing
  class (ClassNotFound), the default class, and a changed class
  re-evaluating its Sandboxes;
- quotas: Kubernetes' own ResourceQuota, at admission (count of Sandboxes)
  and at pod creation (QuotaExceeded, retried until quota frees);
- lifetime: expiresAt, shutdownPolicy Delete and Retain, and a deadline
  that outlives a controller restart;
- pause and resume;
- how kstatus (Flux) and Argo CD's health script read live Sandboxes;
- `kubectl explain` and `kubectl get sbx`.

SandboxClasses are cluster-scoped and a default class would shape every
Sandbox in the cluster: every class (and RuntimeClass) made here carries
this run's label and is deleted by the fixture that made it, even when a
test fails, and once more when the module ends.
"""

import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import expected
from conftest import REPO, wait_for
from expected import (API_VERSION, DNS_RULE, HARDENED_CONTAINER, KEEPALIVE, NODE, RESTRICTED,
                      SERVER_FIELDS, SERVER_TOLERATIONS, gate_container)
from sandboxes import condition, get, wait_reason

IMAGE = "busybox:1.36"
CONVERGE = 10  # seconds a change may take to show
RUN = uuid.uuid4().hex[:8]
RUN_LABEL = "e2e.kage.dev/run"
DEFAULT_ANNOTATION = "sandboxclass.kage.dev/is-default-class"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# ---- helpers ---------------------------------------------------------------


def sandbox(ns, name, **spec):
    spec.setdefault("image", IMAGE)
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def condition_types(sbx):
    return [c["type"] for c in sbx["status"]["conditions"]]


def create_ready(kubectl, ns, name, timeout=20, **spec):
    kubectl.apply(sandbox(ns, name, **spec))
    return wait_reason(kubectl, ns, name, "SandboxReady", timeout=timeout)


def wait_gone(kubectl, ns, kind, name, timeout=CONVERGE):
    wait_for(lambda: get(kubectl, ns, kind, name) is None, timeout=timeout,
             what=f"{kind} {ns}/{name} to be gone")


def wait_new_pod(kubectl, ns, name, old_uid=None, timeout=CONVERGE):
    """A pod of that name, not being deleted, with another uid than old_uid."""
    def check():
        pod = get(kubectl, ns, "pod", name)
        if pod and pod["metadata"]["uid"] != old_uid and "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    return wait_for(check, timeout=timeout, what=f"a new pod {ns}/{name}")


def assert_blocked(sbx, reason, message, phase, kind):
    """Ready False with reason and message, the phase, and the kstatus
    condition kind ("Stalled" or "Reconciling") saying the same."""
    ready = condition(sbx, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", reason, message)
    assert ready["observedGeneration"] == sbx["metadata"]["generation"]
    assert sbx["status"]["phase"] == phase
    assert condition_types(sbx) == ["Ready", "NetworkIsolated", kind]
    extra = condition(sbx, kind)
    assert (extra["status"], extra["reason"], extra["message"]) == ("True", reason, message)
    assert extra["observedGeneration"] == sbx["metadata"]["generation"]


def assert_policy_violation(kubectl, ns, name, message):
    """The block is reported once kage has asked for the pod's deletion; the
    pod goes after its grace period (kwok ends it within moments, a kubelet
    after the container stops), so its end is waited for, not assumed."""
    sbx = wait_reason(kubectl, ns, name, "PolicyViolation")
    assert_blocked(sbx, "PolicyViolation", message, "Failed", "Stalled")
    wait_gone(kubectl, ns, "pod", name)
    for key in ("podName", "podIP", "nodeName", "startTime"):
        assert key not in sbx["status"], key
    return sbx


def assert_no_pod_for_a_while(kubectl, ns, *names, seconds=2):
    """Retries go on meanwhile (with backoff): still no pod after them."""
    time.sleep(seconds)
    for name in names:
        assert get(kubectl, ns, "pod", name) is None, name


def policy_spec(name, egress):
    spec = {"podSelector": {"matchLabels": {"kage.dev/sandbox": name}},
            "policyTypes": ["Ingress", "Egress"]}
    if egress:
        spec["egress"] = egress
    return spec


def sandbox_labels(name):
    return {"kage.dev/sandbox": name, "app.kubernetes.io/managed-by": "kage"}


def split_pod_spec(pod):
    """The pod's spec without the fields the server fills in; the
    tolerations stay (a class adds its own before the server's)."""
    return expected.split_pod_spec(pod, SERVER_FIELDS)


def container(resources=("1", "1Gi", "2Gi")):
    cpu, memory, storage = resources
    amounts = {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}
    return {
        "name": "sandbox",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", KEEPALIVE],
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "securityContext": HARDENED_CONTAINER,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def pod_resources(pod):
    r = pod["spec"]["containers"][0]["resources"]
    assert r["requests"] == r["limits"]
    return r["limits"]


def parse_time(text):
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


def plus_seconds(text, seconds):
    return (parse_time(text) + timedelta(seconds=seconds)).strftime(TIME_FORMAT)


def wait_until(moment, extra=0.0):
    """Sleeps until the wall clock passes moment (an RFC 3339 time) + extra."""
    left = (parse_time(moment) - datetime.now(timezone.utc)).total_seconds() + extra
    if left > 0:
        time.sleep(left)


def quota(ns, name, hard):
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": ns}, "spec": {"hard": hard}}


def make_quota(kubectl, ns, name, hard):
    """A ResourceQuota, once the quota controller has counted it (until then
    admission answers "status unknown" rather than "exceeded")."""
    kubectl.create(quota(ns, name, hard))
    return wait_for(
        lambda: (lambda q: q if set(q.get("status", {}).get("used", {})) == set(hard) else None)(
            get(kubectl, ns, "resourcequota", name)),
        timeout=30, what=f"quota {ns}/{name} to be counted")


def class_manifest(name, spec, default=False):
    metadata = {"name": name, "labels": {RUN_LABEL: RUN}}
    if default:
        metadata["annotations"] = {DEFAULT_ANNOTATION: "true"}
    return {"apiVersion": API_VERSION, "kind": "SandboxClass", "metadata": metadata,
            "spec": spec}


def default_classes(kubectl):
    return sorted(c["metadata"]["name"] for c in kubectl.json("get", "sandboxclasses")["items"]
                  if c["metadata"].get("annotations", {}).get(DEFAULT_ANNOTATION) == "true")


# ---- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def run_cleanup(kubectl, kage):
    """No default class may be around when the module starts (it would
    shape every sandbox here); whatever this run made is gone at the end."""
    assert default_classes(kubectl) == [], "a default SandboxClass is left from elsewhere"
    yield
    kubectl.run("delete", "sandboxclasses", "-l", f"{RUN_LABEL}={RUN}", "--ignore-not-found",
                check=False)
    kubectl.run("delete", "runtimeclasses", "-l", f"{RUN_LABEL}={RUN}", "--ignore-not-found",
                check=False)


@pytest.fixture(scope="module", autouse=True)
def log_mark(kage):
    return len(kage.log_lines())


@pytest.fixture
def classes(kubectl):
    """Makes (or changes) SandboxClasses; deletes every one it made, even
    when the test fails."""
    made = []

    def make(name, spec, default=False):
        if name not in made:
            made.append(name)
        kubectl.apply(class_manifest(name, spec, default))
        return name

    yield make
    for name in made:
        kubectl.run("delete", "sandboxclass", name, "--ignore-not-found", check=False)


@pytest.fixture
def runtime_class(kubectl):
    """A second RuntimeClass (only kata-fc exists); deleted afterwards."""
    name = f"e2e-x-{RUN}-{uuid.uuid4().hex[:6]}"
    kubectl.create({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                    "metadata": {"name": name, "labels": {RUN_LABEL: RUN}}, "handler": "x"})
    yield name
    kubectl.run("delete", "runtimeclass", name, "--ignore-not-found", check=False)


# ---- 1. classes: defaults and pod settings -----------------------------------


def test_class_defaults_and_pod_settings_reach_the_pod(kubectl, kage, make_namespace, classes,
                                                       runtime_class):
    ns = make_namespace("plat", RESTRICTED)
    toleration = {"key": "kage.dev/sandboxes-only", "operator": "Exists", "effect": "NoSchedule"}
    annotations = {"io.katacontainers.config.hypervisor.default_vcpus": "2",
                   "example.com/note": "from the class"}
    cls = classes(f"shaped-{ns}", {
        "runtimeClassName": runtime_class,
        "defaultResources": {"cpu": "250m", "memory": "256Mi", "ephemeralStorage": "512Mi"},
        "nodeSelector": {"type": "kwok"},
        "tolerations": [toleration],
        "podAnnotations": annotations,
        "podLabels": {"team": "a", "example.com/tier": "sandbox"},
    })
    all_defaults = create_ready(kubectl, ns, "all-defaults", sandboxClassName=cls)
    # One value at a time: what the Sandbox sets stays, the rest is the class's.
    some = create_ready(kubectl, ns, "some-set", sandboxClassName=cls,
                        resources={"cpu": "500m"})

    for sbx, resources in ((all_defaults, ("250m", "256Mi", "512Mi")),
                           (some, ("500m", "256Mi", "512Mi"))):
        name = sbx["metadata"]["name"]
        pod = kubectl.json("-n", ns, "get", "pod", name)
        assert split_pod_spec(pod) == {
            "runtimeClassName": runtime_class,
            "nodeSelector": {"type": "kwok"},
            "tolerations": [toleration] + SERVER_TOLERATIONS,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"},
                                "supplementalGroupsPolicy": "Strict"},
            "initContainers": [gate_container(container(resources)["resources"])],
            "containers": [container(resources)],
        }
        md = pod["metadata"]
        assert md["labels"] == {"team": "a", "example.com/tier": "sandbox",
                                **sandbox_labels(name)}
        hash_ = md["annotations"].pop("kage.dev/spec-hash")
        assert len(hash_) == 16
        assert md["annotations"] == annotations
        assert sbx["status"]["phase"] == "Running"
        assert sbx["status"]["nodeName"] == NODE


def test_default_resources_stay_under_the_class_maximum(kubectl, kage, make_namespace, classes):
    """Without defaultResources the built-in default (1 CPU, 1Gi, 2Gi) is
    lowered to a smaller maximum."""
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"capped-{ns}", {"maxResources": {"cpu": "500m", "memory": "4Gi"}})
    create_ready(kubectl, ns, "capped", sandboxClassName=cls)
    pod = kubectl.json("-n", ns, "get", "pod", "capped")
    assert pod_resources(pod) == {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "2Gi"}
    assert pod["spec"]["runtimeClassName"] == "kata-fc"  # the controller's default


# ---- 1. classes: guardrails --------------------------------------------------


def test_resources_above_the_class_maximum_are_a_policy_violation(kubectl, kage, make_namespace,
                                                                  classes):
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"small-{ns}", {"maxResources": {"cpu": "2", "memory": "2Gi",
                                                   "ephemeralStorage": "4Gi"}})
    kubectl.apply(sandbox(ns, "greedy-cpu", sandboxClassName=cls, resources={"cpu": "3"}))
    kubectl.apply(sandbox(ns, "greedy-memory", sandboxClassName=cls,
                          resources={"cpu": "2", "memory": "4Gi"}))
    kubectl.apply(sandbox(ns, "greedy-disk", sandboxClassName=cls,
                          resources={"ephemeralStorage": "5Gi"}))
    assert_policy_violation(kubectl, ns, "greedy-cpu",
                            f"spec.resources.cpu: 3 exceeds the maximum 2 of SandboxClass {cls}")
    assert_policy_violation(
        kubectl, ns, "greedy-memory",
        f"spec.resources.memory: 4Gi exceeds the maximum 2Gi of SandboxClass {cls}")
    assert_policy_violation(
        kubectl, ns, "greedy-disk",
        f"spec.resources.ephemeralStorage: 5Gi exceeds the maximum 4Gi of SandboxClass {cls}")
    assert_no_pod_for_a_while(kubectl, ns, "greedy-cpu", "greedy-memory", "greedy-disk")
    # At the maximum is allowed.
    create_ready(kubectl, ns, "at-the-limit", sandboxClassName=cls,
                 resources={"cpu": "2", "memory": "2Gi", "ephemeralStorage": "4Gi"})


def test_egress_outside_the_ceiling_is_a_policy_violation(kubectl, kage, make_namespace, classes):
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"ceiling-{ns}", {"egress": {
        "allowedCIDRs": ["203.0.113.0/24", "2001:db8::/32"]}})
    kubectl.apply(sandbox(ns, "outside", sandboxClassName=cls, egress={"allow": [
        {"cidr": "203.0.113.128/25"},
        {"cidr": "198.51.100.0/24", "ports": [{"port": 443}]},
    ]}))
    kubectl.apply(sandbox(ns, "wider", sandboxClassName=cls, egress={"allow": [
        {"cidr": "203.0.112.0/23"}]}))
    assert_policy_violation(
        kubectl, ns, "outside",
        "spec.egress.allow[1].cidr: 198.51.100.0/24 is outside the allowed CIDRs "
        f'["203.0.113.0/24","2001:db8::/32"] of SandboxClass {cls}')
    assert_policy_violation(
        kubectl, ns, "wider",
        "spec.egress.allow[0].cidr: 203.0.112.0/23 is outside the allowed CIDRs "
        f'["203.0.113.0/24","2001:db8::/32"] of SandboxClass {cls}')
    assert_no_pod_for_a_while(kubectl, ns, "outside", "wider")

    inside = create_ready(kubectl, ns, "inside", sandboxClassName=cls, egress={"allow": [
        {"cidr": "203.0.113.0/24"}, {"cidr": "2001:db8:1::/48", "ports": [{"port": 443}]}]})
    pol = kubectl.json("-n", ns, "get", "networkpolicy", "inside")
    assert pol["spec"] == policy_spec("inside", [
        DNS_RULE,
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]},
        {"to": [{"ipBlock": {"cidr": "2001:db8:1::/48"}}],
         "ports": [{"protocol": "TCP", "port": 443}]},
    ])
    assert inside["status"]["phase"] == "Running"


def test_denied_cidrs_are_carved_out_of_every_allow_rule(kubectl, kage, make_namespace, classes):
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"denied-{ns}", {"egress": {
        "deniedCIDRs": ["169.254.0.0/16", "10.96.0.0/12", "fd00::/8"]}})
    create_ready(kubectl, ns, "world", sandboxClassName=cls, egress={"allow": [
        {"cidr": "0.0.0.0/0", "ports": [{"port": 443}]},
        {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]},
        {"cidr": "192.0.2.0/24"},  # holds no denied range
        {"cidr": "::/0"},
    ]})
    pol = kubectl.json("-n", ns, "get", "networkpolicy", "world")
    assert pol["spec"] == policy_spec("world", [
        DNS_RULE,
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "10.96.0.0/12"]}}],
         "ports": [{"protocol": "TCP", "port": 443}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.96.0.0/12"]}}]},
        {"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]},
        # An IPv4 denied range is denied through NAT64 (64:ff9b::/96) too.
        {"to": [{"ipBlock": {"cidr": "::/0", "except": [
            "64:ff9b::a9fe:0/112", "64:ff9b::a60:0/108", "fd00::/8"]}}]},
    ])
    # The Sandbox's own spec is left as written: the carving is kage's.
    assert kubectl.json("-n", ns, "get", "sandbox", "world")["spec"]["egress"]["allow"][0] == \
        {"cidr": "0.0.0.0/0", "ports": [{"port": 443, "protocol": "TCP"}]}  # the CRD's default

    kubectl.apply(sandbox(ns, "metadata", sandboxClassName=cls, egress={"allow": [
        {"cidr": "203.0.113.0/24"}, {"cidr": "169.254.169.254/32"}]}))
    kubectl.apply(sandbox(ns, "services", sandboxClassName=cls, egress={"allow": [
        {"cidr": "10.96.0.0/12"}]}))
    assert_policy_violation(
        kubectl, ns, "metadata",
        f"spec.egress.allow[1].cidr: 169.254.169.254/32 lies inside 169.254.0.0/16, which "
        f"SandboxClass {cls} denies")
    assert_policy_violation(
        kubectl, ns, "services",
        f"spec.egress.allow[0].cidr: 10.96.0.0/12 lies inside 10.96.0.0/12, which "
        f"SandboxClass {cls} denies")
    kubectl.apply(sandbox(ns, "nat64", sandboxClassName=cls, egress={"allow": [
        {"cidr": "64:ff9b::a9fe:a9fe/128"}]}))
    assert_policy_violation(
        kubectl, ns, "nat64",
        f"spec.egress.allow[0].cidr: 64:ff9b::a9fe:a9fe/128 lies inside 64:ff9b::a9fe:0/112 (the "
        f"NAT64 form of a denied IPv4 range), which SandboxClass {cls} denies")
    assert_no_pod_for_a_while(kubectl, ns, "metadata", "services", "nat64")


def test_class_hardening_options_reach_the_pod(kubectl, kage, make_namespace, classes):
    """A class may run its sandboxes in user namespaces, keep the image's
    supplementary groups (Merge, for nodes that cannot do Strict) and fix
    the image pull policy; a Sandbox asking for another policy than the
    class's (but Always) is refused."""
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"userns-{ns}", {"hostUsers": False, "supplementalGroupsPolicy": "Merge",
                                   "imagePullPolicy": "Always"})
    create_ready(kubectl, ns, "userns", sandboxClassName=cls)
    pod = kubectl.json("-n", ns, "get", "pod", "userns")
    assert pod["spec"]["hostUsers"] is False
    # Merge is what a pod without the field gets: left out.
    assert "supplementalGroupsPolicy" not in pod["spec"]["securityContext"]
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    # The policy gate pulls as the class says too.
    assert pod["spec"]["initContainers"][0]["imagePullPolicy"] == "Always"
    kubectl.apply(sandbox(ns, "cached", sandboxClassName=cls, imagePullPolicy="IfNotPresent"))
    assert_policy_violation(
        kubectl, ns, "cached",
        f"spec.imagePullPolicy: IfNotPresent is not allowed by SandboxClass {cls}, which pulls "
        f"images with Always")
    assert_no_pod_for_a_while(kubectl, ns, "cached")



def test_a_class_may_turn_the_policy_gate_off(kubectl, kage, make_namespace, classes):
    """spec.egress.policyGate Disabled: the pod has no init container, and
    NetworkIsolated says the sandbox does not wait for its policy."""
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"nogate-{ns}", {"egress": {"policyGate": "Disabled"}})
    sbx = create_ready(kubectl, ns, "nogate", sandboxClassName=cls)
    pod = kubectl.json("-n", ns, "get", "pod", "nogate")
    assert "initContainers" not in pod["spec"]
    net = condition(sbx, "NetworkIsolated")
    assert (net["status"], net["reason"]) == ("True", "PoliciesApplied")
    assert net["message"] == (
        "all ingress denied; egress limited to 1 rule by NetworkPolicy nogate; no policy gate: "
        "SandboxClass spec.egress.policyGate is Disabled, so the sandbox starts without waiting "
        "for the policy to be enforced")

def test_lifetime_is_bounded_by_the_class(kubectl, kage, make_namespace, classes):
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"brief-{ns}", {"maxLifetimeSeconds": 600})
    kubectl.apply(sandbox(ns, "too-long", sandboxClassName=cls,
                          lifetime={"ttlSeconds": 601, "shutdownPolicy": "Retain"}))
    assert_policy_violation(
        kubectl, ns, "too-long",
        f"spec.lifetime.ttlSeconds: 601 exceeds the maximum lifetime of 600 seconds of "
        f"SandboxClass {cls}")
    # No ttl: the class's maximum is the lifetime.
    unset = create_ready(kubectl, ns, "unbounded", sandboxClassName=cls)
    assert unset["status"]["expiresAt"] == \
        plus_seconds(unset["metadata"]["creationTimestamp"], 600)
    assert "lifetime" not in unset["spec"]  # the Sandbox is left as written
    at_max = create_ready(kubectl, ns, "at-max", sandboxClassName=cls,
                          lifetime={"ttlSeconds": 600})
    assert at_max["status"]["expiresAt"] == \
        plus_seconds(at_max["metadata"]["creationTimestamp"], 600)
    shorter = create_ready(kubectl, ns, "shorter", sandboxClassName=cls,
                           lifetime={"ttlSeconds": 60})
    assert shorter["status"]["expiresAt"] == \
        plus_seconds(shorter["metadata"]["creationTimestamp"], 60)
    assert_no_pod_for_a_while(kubectl, ns, "too-long", seconds=0)


# ---- 1. classes: which class applies -----------------------------------------


def test_missing_class_waits_until_it_is_created(kubectl, kage, make_namespace, classes):
    ns = make_namespace("plat", RESTRICTED)
    name = f"later-{ns}"
    kubectl.apply(sandbox(ns, "early", sandboxClassName=name))
    sbx = wait_reason(kubectl, ns, "early", "ClassNotFound")
    message = f"SandboxClass {name} does not exist; create it or change spec.sandboxClassName"
    assert_blocked(sbx, "ClassNotFound", message, "Pending", "Stalled")
    assert_no_pod_for_a_while(kubectl, ns, "early")
    # Nothing is written for it while its class is unknown.
    assert get(kubectl, ns, "networkpolicy", "early") is None

    classes(name, {"podLabels": {"class": "later"}})
    sbx = wait_reason(kubectl, ns, "early", "SandboxReady", timeout=CONVERGE)
    assert condition_types(sbx) == ["Ready", "NetworkIsolated"]
    assert sbx["status"]["phase"] == "Running"
    pod = kubectl.json("-n", ns, "get", "pod", "early")
    assert pod["metadata"]["labels"] == {"class": "later", **sandbox_labels("early")}


def test_missing_runtime_class_stalls_until_it_is_created(kubectl, kage, make_namespace, classes):
    """A class naming a RuntimeClass the cluster lacks: the API server's
    RuntimeClass admission refuses the pod, the Sandbox says so (Stalled:
    a person must act), its policies stay, and once the RuntimeClass
    exists the retries bring the pod up."""
    ns = make_namespace("plat", RESTRICTED)
    rc = f"e2e-missing-{RUN}-{uuid.uuid4().hex[:6]}"
    cls = classes(f"missing-rc-{ns}", {"runtimeClassName": rc})
    kubectl.apply(sandbox(ns, "no-rc", sandboxClassName=cls))
    sbx = wait_reason(kubectl, ns, "no-rc", "RuntimeClassNotFound")
    message = f'pods "no-rc" is forbidden: pod rejected: RuntimeClass "{rc}" not found'
    assert_blocked(sbx, "RuntimeClassNotFound", message, "Pending", "Stalled")
    assert get(kubectl, ns, "pod", "no-rc") is None
    assert get(kubectl, ns, "networkpolicy", "no-rc") is not None

    kubectl.create({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                    "metadata": {"name": rc, "labels": {RUN_LABEL: RUN}}, "handler": "x"})
    try:
        sbx = wait_reason(kubectl, ns, "no-rc", "SandboxReady", timeout=60)
        assert sbx["status"]["phase"] == "Running"
        assert condition_types(sbx) == ["Ready", "NetworkIsolated"]
        assert kubectl.json("-n", ns, "get", "pod", "no-rc")["spec"]["runtimeClassName"] == rc
    finally:
        kubectl.run("delete", "sandbox", "-n", ns, "no-rc", "--wait=true", check=False)
        kubectl.run("delete", "runtimeclass", rc, "--ignore-not-found", check=False)


def test_default_class_applies_to_sandboxes_without_a_class(kubectl, kage, make_namespace,
                                                             classes):
    ns = make_namespace("plat", RESTRICTED)
    first = classes(f"default-a-{ns}", {"defaultResources": {"cpu": "300m"},
                                        "podLabels": {"default-class": "a"}}, default=True)
    kubectl.apply(sandbox(ns, "plain"))

    def pod_of_the_default_class():
        pod = get(kubectl, ns, "pod", "plain")
        if pod and pod["metadata"]["labels"].get("default-class") == "a" and \
                "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    # (The controller may see the Sandbox before the class: its first pod
    # is then replaced.)
    pod = wait_for(pod_of_the_default_class, timeout=CONVERGE, what="the default class's pod")
    assert pod_resources(pod) == {"cpu": "300m", "memory": "1Gi", "ephemeral-storage": "2Gi"}
    wait_reason(kubectl, ns, "plain", "SandboxReady", timeout=CONVERGE)

    # A second default class: no Sandbox without a class can tell which.
    second = classes(f"default-b-{ns}", {"podLabels": {"default-class": "b"}}, default=True)
    kubectl.apply(sandbox(ns, "undecided"))
    sbx = wait_reason(kubectl, ns, "undecided", "ClassNotFound")
    both = [f"2 SandboxClasses are marked default ({a}, {b}): mark one, or set "
            "spec.sandboxClassName" for a, b in ((first, second), (second, first))]
    assert condition(sbx, "Ready")["message"] in both
    assert_blocked(sbx, "ClassNotFound", condition(sbx, "Ready")["message"], "Pending", "Stalled")
    assert_no_pod_for_a_while(kubectl, ns, "undecided")
    # The class change re-evaluated the Sandbox that already ran, too.
    sbx = wait_reason(kubectl, ns, "plain", "ClassNotFound", timeout=CONVERGE)
    assert condition(sbx, "Ready")["message"] in both

    # Back to one default: both run under it, by themselves.
    kubectl.run("delete", "sandboxclass", second)
    for name in ("plain", "undecided"):
        wait_reason(kubectl, ns, name, "SandboxReady", timeout=CONVERGE)
        pod = kubectl.json("-n", ns, "get", "pod", name)
        assert pod["metadata"]["labels"] == {"default-class": "a", **sandbox_labels(name)}
        assert pod_resources(pod)["cpu"] == "300m"

    # A named class wins over the default.
    named = classes(f"named-{ns}", {"podLabels": {"named": "yes"}})
    create_ready(kubectl, ns, "chosen", sandboxClassName=named)
    assert kubectl.json("-n", ns, "get", "pod", "chosen")["metadata"]["labels"] == \
        {"named": "yes", **sandbox_labels("chosen")}


def test_changing_a_class_reevaluates_its_sandboxes(kubectl, kage, make_namespace, classes):
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"elastic-{ns}", {"maxResources": {"cpu": "2"}})
    create_ready(kubectl, ns, "tenant", sandboxClassName=cls, resources={"cpu": "1"})
    old = kubectl.json("-n", ns, "get", "pod", "tenant")

    classes(cls, {"maxResources": {"cpu": "500m"}})
    assert_policy_violation(
        kubectl, ns, "tenant",
        f"spec.resources.cpu: 1 exceeds the maximum 500m of SandboxClass {cls}")
    wait_gone(kubectl, ns, "pod", "tenant")
    # The policies stay, the sandbox's narrowed to allow nothing (what it
    # allowed may be what the class now denies): the namespace keeps its guard.
    wait_for(lambda: kubectl.json("-n", ns, "get", "networkpolicy", "tenant")["spec"] ==
             policy_spec("tenant", []), timeout=CONVERGE, what="the policy to be narrowed")
    assert get(kubectl, ns, "networkpolicy", "kage-baseline") is not None

    classes(cls, {"maxResources": {"cpu": "2"}})
    pod = wait_new_pod(kubectl, ns, "tenant", old["metadata"]["uid"])
    assert pod_resources(pod)["cpu"] == "1"
    assert kubectl.json("-n", ns, "get", "networkpolicy", "tenant")["spec"] == \
        policy_spec("tenant", [DNS_RULE])  # its egress back
    sbx = wait_reason(kubectl, ns, "tenant", "SandboxReady", timeout=CONVERGE)
    assert condition_types(sbx) == ["Ready", "NetworkIsolated"]
    assert sbx["status"]["phase"] == "Running"


def test_a_sandbox_blocked_by_its_class_still_reports_the_policies_it_keeps(kubectl, kage,
                                                                           make_namespace,
                                                                           classes):
    """NetworkIsolated says whether the sandbox's policies exist (DESIGN.md).
    A Sandbox that a class change puts against its class keeps them, its own
    narrowed to allow nothing (its pod goes), so the condition must not
    claim they are still being created."""
    ns = make_namespace("plat", RESTRICTED)
    cls = classes(f"shrinking-{ns}", {"maxResources": {"memory": "2Gi"}})
    create_ready(kubectl, ns, "kept-guard", sandboxClassName=cls, resources={"memory": "1Gi"})
    classes(cls, {"maxResources": {"memory": "512Mi"}})
    wait_reason(kubectl, ns, "kept-guard", "PolicyViolation")
    wait_gone(kubectl, ns, "pod", "kept-guard")
    assert kubectl.json("-n", ns, "get", "networkpolicy", "kept-guard")["spec"] == \
        policy_spec("kept-guard", [])
    sbx = get(kubectl, ns, "sandbox", "kept-guard")
    isolated = condition(sbx, "NetworkIsolated")
    assert (isolated["status"], isolated["reason"], isolated["message"]) == (
        "True", "PoliciesApplied",
        "all ingress denied; egress limited to 0 rules by NetworkPolicy kept-guard")


# ---- 2. quotas -----------------------------------------------------------------


def test_sandbox_count_quota_refuses_a_sandbox_at_apply(kubectl, kage, make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    make_quota(kubectl, ns, "sandboxes", {"count/sandboxes.kage.dev": "2"})
    kubectl.apply(sandbox(ns, "one"))
    kubectl.apply(sandbox(ns, "two"))
    proc = kubectl.apply(sandbox(ns, "three"), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": sandboxes.kage.dev "three" '
        "is forbidden: exceeded quota: sandboxes, requested: count/sandboxes.kage.dev=1, "
        "used: count/sandboxes.kage.dev=2, limited: count/sandboxes.kage.dev=2")
    assert get(kubectl, ns, "sandbox", "three") is None
    for name in ("one", "two"):
        wait_reason(kubectl, ns, name, "SandboxReady")


def test_cpu_quota_holds_a_sandbox_until_quota_frees(kubectl, kage, make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    make_quota(kubectl, ns, "cpu", {"requests.cpu": "1500m"})
    create_ready(kubectl, ns, "first")  # 1 CPU
    kubectl.apply(sandbox(ns, "second"))
    sbx = wait_reason(kubectl, ns, "second", "QuotaExceeded")
    assert_blocked(
        sbx, "QuotaExceeded",
        'pods "second" is forbidden: exceeded quota: cpu, requested: requests.cpu=1, '
        "used: requests.cpu=1, limited: requests.cpu=1500m",
        "Pending", "Reconciling")
    assert condition(sbx, "NetworkIsolated")["status"] == "True"  # the policies went in
    assert get(kubectl, ns, "pod", "second") is None

    # Freeing quota (the first sandbox goes) lets the second start by itself.
    kubectl.run("-n", ns, "delete", "sandbox", "first", "--wait=false")
    sbx = wait_reason(kubectl, ns, "second", "SandboxReady", timeout=30)
    assert sbx["status"]["phase"] == "Running"
    assert condition_types(sbx) == ["Ready", "NetworkIsolated"]


# ---- 3. lifetime ----------------------------------------------------------------


def wait_expires_at(kubectl, ns, name):
    return wait_for(
        lambda: (lambda s: s if s and s.get("status", {}).get("expiresAt") else None)(
            get(kubectl, ns, "sandbox", name)),
        timeout=CONVERGE, what=f"{ns}/{name} to show expiresAt")


def test_expired_sandbox_with_delete_policy_is_deleted(kubectl, kage, make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    kubectl.apply(sandbox(ns, "mayfly", lifetime={"ttlSeconds": 5, "shutdownPolicy": "Delete"}))
    sbx = wait_expires_at(kubectl, ns, "mayfly")
    expires = sbx["status"]["expiresAt"]
    assert expires == plus_seconds(sbx["metadata"]["creationTimestamp"], 5)
    wait_for(lambda: get(kubectl, ns, "pod", "mayfly"), timeout=CONVERGE, what="its pod")
    wait_until(expires)
    wait_for(lambda: get(kubectl, ns, "sandbox", "mayfly") is None and
             get(kubectl, ns, "pod", "mayfly") is None,
             timeout=15, what="the expired Sandbox and its pod to be gone")


def assert_expired(kubectl, ns, name, expires, timeout=15):
    sbx = wait_reason(kubectl, ns, name, "Expired", timeout=timeout)
    ready = condition(sbx, "Ready")
    # Not usable, so not Ready; settled all the same (see below).
    assert (ready["status"], ready["message"]) == (
        "False", f"the sandbox's lifetime ended at {expires}; its pod was removed and the "
                "Sandbox kept (shutdownPolicy Retain)")
    assert sbx["status"]["phase"] == "Expired"
    assert sbx["status"]["expiresAt"] == expires
    # Settled: neither Reconciling nor Stalled.
    assert condition_types(sbx) == ["Ready", "NetworkIsolated"]
    assert condition(sbx, "NetworkIsolated")["status"] == "True"
    wait_gone(kubectl, ns, "pod", name)
    assert kubectl.json("-n", ns, "get", "networkpolicy", name)["spec"] == \
        policy_spec(name, [DNS_RULE])
    assert get(kubectl, ns, "networkpolicy", "kage-baseline") is not None
    return sbx


def test_expired_sandbox_with_retain_policy_is_kept_without_its_pod(kubectl, kage,
                                                                    make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    kubectl.apply(sandbox(ns, "keeper", lifetime={"ttlSeconds": 5, "shutdownPolicy": "Retain"}))
    sbx = wait_expires_at(kubectl, ns, "keeper")
    expires = sbx["status"]["expiresAt"]
    assert expires == plus_seconds(sbx["metadata"]["creationTimestamp"], 5)
    wait_reason(kubectl, ns, "keeper", "SandboxReady")
    wait_until(expires)
    assert_expired(kubectl, ns, "keeper", expires)
    time.sleep(2)  # and it stays so: no new pod, the Sandbox kept
    assert get(kubectl, ns, "pod", "keeper") is None
    assert get(kubectl, ns, "sandbox", "keeper")["status"]["phase"] == "Expired"


def test_deadline_survives_a_controller_restart(kubectl, kage, make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    kubectl.apply(sandbox(ns, "kept", lifetime={"ttlSeconds": 8, "shutdownPolicy": "Retain"}))
    kubectl.apply(sandbox(ns, "dropped", lifetime={"ttlSeconds": 8}))  # Delete by default
    kept = wait_reason(kubectl, ns, "kept", "SandboxReady")
    wait_reason(kubectl, ns, "dropped", "SandboxReady")
    expires = kept["status"]["expiresAt"]
    dropped_expires = get(kubectl, ns, "sandbox", "dropped")["status"]["expiresAt"]

    assert kage.stop() == 0
    try:
        wait_until(max(expires, dropped_expires), extra=1.0)
        # Nobody handled the deadline meanwhile.
        assert get(kubectl, ns, "sandbox", "kept")["status"]["phase"] == "Running"
        assert get(kubectl, ns, "sandbox", "dropped") is not None
    finally:
        kage.start()
        kage.wait_synced()
    # At once after the restart (no new timer of a full ttl): the Sandbox
    # with shutdownPolicy Delete is deleted, the other one expires.
    wait_for(lambda: get(kubectl, ns, "sandbox", "dropped") is None,
             timeout=5, what="the expired Sandbox to be deleted")
    assert_expired(kubectl, ns, "kept", expires, timeout=5)
    wait_gone(kubectl, ns, "pod", "dropped")


# ---- 4. pause and resume ---------------------------------------------------------


def test_pause_frees_the_pod_and_its_quota_and_resume_brings_a_new_one(kubectl, kage,
                                                                       make_namespace):
    ns = make_namespace("plat", RESTRICTED)
    make_quota(kubectl, ns, "compute", {"requests.cpu": "4", "limits.memory": "8Gi"})
    create_ready(kubectl, ns, "napper")
    old = kubectl.json("-n", ns, "get", "pod", "napper")
    used = lambda: get(kubectl, ns, "resourcequota", "compute")["status"]["used"]  # noqa: E731
    wait_for(lambda: used() == {"requests.cpu": "1", "limits.memory": "1Gi"},
             timeout=CONVERGE, what="the quota to count the pod")
    policies = {n: kubectl.json("-n", ns, "get", "networkpolicy", n)["metadata"]["uid"]
                for n in ("napper", "kage-baseline")}

    kubectl.run("-n", ns, "patch", "sandbox", "napper", "--type=merge",
                "-p", '{"spec":{"paused":true}}')
    wait_gone(kubectl, ns, "pod", "napper")
    sbx = wait_reason(kubectl, ns, "napper", "Paused")
    sbx = wait_for(lambda: (lambda s: s if condition(s, "Ready")["message"].startswith(
        "the sandbox is paused") else None)(get(kubectl, ns, "sandbox", "napper")),
        timeout=CONVERGE, what="the status to say the pod is gone")
    ready = condition(sbx, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "Paused", "the sandbox is paused: it has no pod; the network policies stay")
    assert sbx["status"]["phase"] == "Paused"
    assert condition_types(sbx) == ["Ready", "NetworkIsolated"]  # no Reconciling, no Stalled
    assert condition(sbx, "NetworkIsolated")["status"] == "True"
    for key in ("podName", "podIP", "nodeName", "startTime"):
        assert key not in sbx["status"], key
    assert {n: kubectl.json("-n", ns, "get", "networkpolicy", n)["metadata"]["uid"]
            for n in policies} == policies
    wait_for(lambda: used() == {"requests.cpu": "0", "limits.memory": "0"},
             timeout=CONVERGE, what="the quota to be given back")
    assert_no_pod_for_a_while(kubectl, ns, "napper")

    kubectl.run("-n", ns, "patch", "sandbox", "napper", "--type=merge",
                "-p", '{"spec":{"paused":false}}')
    pod = wait_new_pod(kubectl, ns, "napper", old["metadata"]["uid"])
    assert pod["metadata"]["uid"] != old["metadata"]["uid"]
    sbx = wait_reason(kubectl, ns, "napper", "SandboxReady", timeout=CONVERGE)
    assert sbx["status"]["phase"] == "Running"
    assert sbx["status"]["podName"] == "napper"
    assert sbx["status"]["observedGeneration"] == 3
    wait_for(lambda: used() == {"requests.cpu": "1", "limits.memory": "1Gi"},
             timeout=CONVERGE, what="the quota to count the new pod")


# ---- 5. health as kstatus and Argo CD read it ---------------------------------------


@pytest.fixture(scope="module")
def live_states(kubectl, kage):
    """Sandboxes in each state the controller reports, live, keyed by state.
    Built once for the kstatus and the Argo CD checks."""
    ns = f"plat-health-{RUN}"
    quota_ns = f"plat-health-q-{RUN}"
    for n in (ns, quota_ns):
        kubectl.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": n, "labels": RESTRICTED}})
    guard = f"health-guard-{RUN}"
    nowhere = f"health-nowhere-{RUN}"
    try:
        kubectl.apply(class_manifest(guard, {"maxResources": {"cpu": "1"}}))
        kubectl.apply(class_manifest(nowhere, {"nodeSelector": {"type": "no-such-node"}}))
        make_quota(kubectl, quota_ns, "tiny", {"requests.cpu": "100m"})
        specs = {
            "running": (ns, {}),
            "creating": (ns, {}),
            "unschedulable": (ns, {"sandboxClassName": nowhere}),
            "quota-exceeded": (quota_ns, {}),
            "policy-violation": (ns, {"sandboxClassName": guard, "resources": {"cpu": "2"}}),
            "class-not-found": (ns, {"sandboxClassName": f"health-missing-{RUN}"}),
            "paused": (ns, {"paused": True}),
            "expired": (ns, {"lifetime": {"ttlSeconds": 4, "shutdownPolicy": "Retain"}}),
        }
        for name, (n, spec) in specs.items():
            kubectl.apply(sandbox(n, name, **spec))
        wait_reason(kubectl, ns, "creating", "SandboxReady")
        # What a kubelet reports while the container is not ready yet (kwok
        # leaves the status of a pod with an IP alone).
        kubectl.run("-n", ns, "patch", "pod", "creating", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "False"},
                        {"type": "ContainersReady", "status": "False"}]}}))
        reasons = {
            "running": "SandboxReady", "creating": "ContainerNotReady",
            "unschedulable": "Unschedulable", "quota-exceeded": "QuotaExceeded",
            "policy-violation": "PolicyViolation", "class-not-found": "ClassNotFound",
            "paused": "Paused", "expired": "Expired",
        }
        objects = {}
        for name, reason in reasons.items():
            n = specs[name][0]
            objects[name] = wait_reason(kubectl, n, name, reason, timeout=20)
        # The paused one's final word (its pod never existed).
        assert condition(objects["paused"], "Ready")["message"] == \
            "the sandbox is paused: it has no pod; the network policies stay"
        time.sleep(1)  # the last status writes land; read everything once more
        objects = {name: get(kubectl, specs[name][0], "sandbox", name) for name in reasons}
        for name, reason in reasons.items():
            assert condition(objects[name], "Ready")["reason"] == reason, name
        yield objects
    finally:
        for n in (ns, quota_ns):
            kubectl.run("delete", "namespace", n, "--wait=false", "--ignore-not-found",
                        check=False)
        for c in (guard, nowhere):
            kubectl.run("delete", "sandboxclass", c, "--ignore-not-found", check=False)


def ready_message(obj):
    return condition(obj, "Ready")["message"]


KSTATUS_BUILD = REPO / "tests" / "kstatus" / "build.sh"


def kstatus_tool():
    """Builds tests/kstatus with its build.sh; the tool's path."""
    proc = subprocess.run(["bash", str(KSTATUS_BUILD)], cwd=KSTATUS_BUILD.parent,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"tests/kstatus/build.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lines = [l.strip() for l in proc.stdout.splitlines() if l.strip()]
    candidates = ([lines[-1]] if lines else []) + [
        str(KSTATUS_BUILD.parent / "kstatus"), str(KSTATUS_BUILD.parent / "bin" / "kstatus"),
        str(REPO / "bin" / "kstatus")]
    for c in candidates:
        path = c if os.path.isabs(c) else str(KSTATUS_BUILD.parent / c)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    pytest.fail(f"tests/kstatus/build.sh built no kstatus tool that this test can find "
                f"(looked at {candidates}); its output: {proc.stdout[-1000:]}")


def test_kstatus_reads_live_sandboxes(live_states):
    if not KSTATUS_BUILD.exists():
        pytest.skip("tests/kstatus/build.sh does not exist (yet): no kstatus tool to run")
    tool = kstatus_tool()
    items = list(live_states.values())
    proc = subprocess.run([tool], input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": items}),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = {}
    for line in proc.stdout.splitlines():
        obj, status, *message = line.split(" ", 2)
        got[obj.split("/", 1)[1]] = (status, message[0] if message else "")
    s = live_states
    assert got == {
        "running": ("Current", "Resource is Ready"),
        "creating": ("InProgress", ready_message(s["creating"])),
        "unschedulable": ("InProgress", ready_message(s["unschedulable"])),
        "quota-exceeded": ("InProgress", ready_message(s["quota-exceeded"])),
        "policy-violation": ("Failed", ready_message(s["policy-violation"])),
        "class-not-found": ("Failed", ready_message(s["class-not-found"])),
        # Settled on purpose but not usable: Ready=False, which kstatus alone
        # reads as in progress (the Flux example's healthCheckExprs read
        # these as Current: tests/kstatus/flux_test.go).
        "paused": ("InProgress", ready_message(s["paused"])),
        "expired": ("InProgress", ready_message(s["expired"])),
    }


def table(kubectl, *args):
    """kubectl get's table as a list of {column: cell}, cut at the header's
    column starts (cells may hold spaces only in the last column)."""
    lines = kubectl.run("get", *args).stdout.splitlines()
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    names = header.split()
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line)])]
        rows.append(dict(zip(names, cells)))
    return rows


def test_printer_columns_say_ready_and_wide_says_more(kubectl, live_states):
    """READY is the Ready condition's status: False for a paused or expired
    sandbox; -o wide adds class, image, expiry and the Ready message."""
    ns = live_states["running"]["metadata"]["namespace"]
    rows = {r["NAME"]: r for r in table(kubectl, "-n", ns, "sandboxes")}
    assert [k for k in rows["running"]] == ["NAME", "READY", "PHASE", "REASON", "IP", "NODE", "AGE"]
    got = {n: (rows[n]["READY"], rows[n]["PHASE"], rows[n]["REASON"])
           for n in ("running", "paused", "expired", "policy-violation")}
    assert got == {
        "running": ("True", "Running", "SandboxReady"),
        "paused": ("False", "Paused", "Paused"),
        "expired": ("False", "Expired", "Expired"),
        "policy-violation": ("False", "Failed", "PolicyViolation"),
    }
    assert rows["running"]["NODE"] == NODE
    assert rows["running"]["IP"] == live_states["running"]["status"]["podIP"]

    wide = {r["NAME"]: r for r in table(kubectl, "-n", ns, "sandboxes", "-o", "wide")}
    assert [k for k in wide["running"]] == ["NAME", "READY", "PHASE", "REASON", "IP", "NODE",
                                            "AGE", "CLASS", "IMAGE", "EXPIRES", "MESSAGE"]
    guard = live_states["policy-violation"]["spec"]["sandboxClassName"]
    assert (wide["policy-violation"]["CLASS"], wide["policy-violation"]["IMAGE"],
            wide["policy-violation"]["MESSAGE"]) == (
        guard, IMAGE, ready_message(live_states["policy-violation"]))
    assert wide["paused"]["MESSAGE"] == \
        "the sandbox is paused: it has no pod; the network policies stay"
    for n in ("running", "expired"):
        has_expiry = "expiresAt" in live_states[n]["status"]
        assert (wide[n]["EXPIRES"] not in ("", "<none>")) == has_expiry, n
    assert "expiresAt" in live_states["expired"]["status"]


ARGO_SCRIPT = REPO / "manifests" / "argocd" / "sandbox-health.lua"
ARGO_RUNNER = REPO / "tests" / "argocd" / "run_health.lua"


def test_argocd_health_of_live_sandboxes(live_states, tmp_path):
    if not ARGO_SCRIPT.exists() or not ARGO_RUNNER.exists():
        pytest.skip("manifests/argocd/sandbox-health.lua or tests/argocd/run_health.lua is absent")
    lua = shutil.which("lua5.1")
    if not lua or subprocess.run([lua, "-e", 'require "cjson"'],
                                 capture_output=True).returncode != 0:
        pytest.skip("needs lua5.1 with lua-cjson (apt-get install lua5.1 lua-cjson)")
    files = []
    for name, obj in live_states.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(obj))
        files.append(str(path))
    proc = subprocess.run([lua, str(ARGO_RUNNER), str(ARGO_SCRIPT), *files],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = {}
    for line in proc.stdout.splitlines():
        name, status, message = line.split("\t", 2)
        got[name] = (status, message)
    s = live_states
    assert got == {
        "running": ("Healthy", f"the sandbox runs on node {NODE}"),
        "creating": ("Progressing", "ContainerNotReady: the container is not ready yet"),
        "unschedulable": ("Progressing", f"Unschedulable: {ready_message(s['unschedulable'])}"),
        "quota-exceeded": ("Progressing",
                           f"QuotaExceeded: {ready_message(s['quota-exceeded'])}"),
        "policy-violation": ("Degraded",
                             f"PolicyViolation: {ready_message(s['policy-violation'])}"),
        "class-not-found": ("Degraded", f"ClassNotFound: {ready_message(s['class-not-found'])}"),
        "paused": ("Suspended",
                   "paused: the sandbox is paused: it has no pod; the network policies stay"),
        "expired": ("Suspended", f"expired: {ready_message(s['expired'])}"),
    }
    # The messages behind them are the controller's, exactly.
    assert ready_message(s["quota-exceeded"]) == (
        'pods "quota-exceeded" is forbidden: exceeded quota: tiny, requested: requests.cpu=1, '
        "used: requests.cpu=0, limited: requests.cpu=100m")
    assert ready_message(s["policy-violation"]) == (
        f"spec.resources.cpu: 2 exceeds the maximum 1 of SandboxClass health-guard-{RUN}")
    assert ready_message(s["class-not-found"]) == (
        f"SandboxClass health-missing-{RUN} does not exist; create it or change "
        "spec.sandboxClassName")
    assert ready_message(s["unschedulable"]).startswith(
        "no node can run the sandbox: 0/1 nodes are available: 1 node(s) didn't match "
        "Pod's node affinity/selector.")
    assert ready_message(s["expired"]) == (
        f"the sandbox's lifetime ended at {s['expired']['status']['expiresAt']}; its pod was "
        "removed and the Sandbox kept (shutdownPolicy Retain)")


# ---- 6. kubectl's view ------------------------------------------------------------


def test_kubectl_explains_egress_and_lists_sandboxes_with_their_columns(kubectl, kage,
                                                                        make_namespace):
    out = kubectl.run("explain", "sandbox.spec.egress").stdout
    assert out.startswith("GROUP:      kage.dev\nKIND:       Sandbox\nVERSION:    v1alpha1\n")
    assert "FIELD: egress <Object>" in out
    assert "Outbound network access." in out
    for field in ("allow\t<[]Object>", "dns\t<boolean>"):
        assert field in out, field
    allow = kubectl.run("explain", "sandbox.spec.egress.allow.cidr").stdout
    assert "FIELD: cidr <string>" in allow

    ns = make_namespace("plat", RESTRICTED)
    create_ready(kubectl, ns, "listed")
    pod = kubectl.json("-n", ns, "get", "pod", "listed")
    lines = kubectl.run("-n", ns, "get", "sbx").stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].split() == ["NAME", "READY", "PHASE", "REASON", "IP", "NODE", "AGE"]
    row = lines[1].split()
    assert row[:6] == ["listed", "True", "Running", "SandboxReady", pod["status"]["podIP"], NODE]
    assert len(row) == 7 and row[6][-1] in "sm", row


# ---- the log ---------------------------------------------------------------------


def test_log_shows_no_error(kage, log_mark):
    lines = kage.log_lines()[log_mark:]
    assert [l for l in lines if "raw" in l] == []
    assert [l for l in lines if l.get("level") == "error"] == []

