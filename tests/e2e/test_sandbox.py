# SPDX-License-Identifier: Apache-2.0
"""Sandbox reconciliation end to end: what kage-controller (running under its
own ServiceAccount, see conftest's `kage`) makes of a Sandbox on a real API
server, in namespaces that enforce Pod Security "restricted".

- the exact NetworkPolicies and pod one Sandbox becomes;
- the status `kubectl wait --for=condition=Ready` and kstatus read;
- the order of writes (policies before the pod);
- drift: children deleted, edited or outdated converge back, without a
  write loop; deleting the Sandbox removes its children;
- objects kage does not own are never touched (NameConflict);
- how a dying pod and an API refusal show in the status (kwok runs no
  containers, so the kubelet's status reports are written by hand, as the
  admin, through the pods/status subresource: kwok leaves a pod's status
  alone once the pod has an IP);
- and the controller's log has no error for any of it.
"""

import json
import re
import subprocess
import threading
import time

import pytest

from conftest import wait_for
from expected import (API_VERSION, BASELINE_LABELS, BASELINE_SPEC, BEFORE_SCRIPT_WRAPPER, DNS_RULE,
                      HARDENED_CONTAINER, KEEPALIVE, NODE, RESTRICTED, gate_container,
                      split_pod_spec)
from sandboxes import condition, get, wait_reason

IMAGE = "busybox:1.36"
CONVERGE = 10  # seconds a drift may take to be repaired

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# ---- helpers ---------------------------------------------------------------


def sandbox(ns, name, **spec):
    spec.setdefault("image", IMAGE)
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def create_ready(kubectl, ns, name, **spec):
    """Applies a Sandbox and waits, as a user would, for it to be Ready."""
    kubectl.apply(sandbox(ns, name, **spec))
    proc = kubectl.run("-n", ns, "wait", "--for=condition=Ready", f"sandbox/{name}",
                       "--timeout=30s", check=False)
    sbx = get(kubectl, ns, "sandbox", name)
    assert proc.returncode == 0, f"{name} not Ready: {(sbx or {}).get('status')}"
    return sbx


def owner_refs(sbx):
    return [{"apiVersion": API_VERSION, "kind": "Sandbox", "name": sbx["metadata"]["name"],
             "uid": sbx["metadata"]["uid"], "controller": True}]


def pod_ref(pod):
    """The ownerReference a sandbox's policy holds to its pod: the garbage
    collector keeps the policy until the pod is gone too."""
    return {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"], "controller": False}


def sandbox_labels(name):
    return {"kage.dev/sandbox": name, "app.kubernetes.io/managed-by": "kage"}


def policy_spec(name, egress):
    spec = {"podSelector": {"matchLabels": {"kage.dev/sandbox": name}},
            "policyTypes": ["Ingress", "Egress"]}
    if egress:
        spec["egress"] = egress
    return spec




def assert_policy(kubectl, sbx, egress):
    """The sandbox's NetworkPolicy is exactly the one rendered from egress."""
    ns, name = sbx["metadata"]["namespace"], sbx["metadata"]["name"]
    pol = kubectl.json("-n", ns, "get", "networkpolicy", name)
    assert pol["spec"] == policy_spec(name, egress)
    assert "ingress" not in pol["spec"]  # no rule: all ingress denied
    assert pol["metadata"]["labels"] == sandbox_labels(name)
    pod = kubectl.json("-n", ns, "get", "pod", name)
    assert pol["metadata"]["ownerReferences"] == owner_refs(sbx) + [pod_ref(pod)]
    return pol


def expected_pod_spec(container, run_as_user=65532, run_as_group=65532):
    return {
        "runtimeClassName": "kata-fc",
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # hostNetwork, hostPID and hostIPC are false: the API server leaves
        # a false out, and any other key would fail the comparison.
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as_user,
            "runAsGroup": run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
            # The groups the pod names, none that the image's /etc/group adds.
            "supplementalGroupsPolicy": "Strict",
        },
        # The policy gate runs first, with the sandbox's resources.
        "initContainers": [gate_container(container["resources"])],
        "containers": [container],
    }


def expected_container(command, *, args=None, env=None, resources=("1", "1Gi", "2Gi"),
                       working_dir=None, readiness=False, pull="IfNotPresent"):
    cpu, memory, storage = resources
    amounts = {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}
    c = {
        "name": "sandbox",
        "image": IMAGE,
        "imagePullPolicy": pull,
        "command": command,
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        "securityContext": HARDENED_CONTAINER,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if args is not None:
        c["args"] = args
    if env:
        c["env"] = env
    if working_dir:
        c["workingDir"] = working_dir
    if readiness:
        c["readinessProbe"] = {
            "exec": {"command": ["/bin/sh", "-c", "test -e /tmp/.kage-ready"]},
            "periodSeconds": 2, "failureThreshold": 1,
            # server defaults
            "successThreshold": 1, "timeoutSeconds": 1,
        }
    return c


def assert_pod_metadata(pod, sbx):
    name = sbx["metadata"]["name"]
    md = pod["metadata"]
    assert md["labels"] == sandbox_labels(name)
    assert list(md["annotations"]) == ["kage.dev/spec-hash"]
    assert re.fullmatch(r"[0-9a-f]{16}", md["annotations"]["kage.dev/spec-hash"])
    assert md["ownerReferences"] == owner_refs(sbx)


def versions(kubectl, ns, *objects):
    """resourceVersion of each (kind, name)."""
    return {o: get(kubectl, ns, *o)["metadata"]["resourceVersion"] for o in objects}


@pytest.fixture(scope="module", autouse=True)
def log_mark(kage):
    """Where the controller's log stood when this module began."""
    return len(kage.log_lines())


# ---- 1. exact shapes: the NetworkPolicies ---------------------------------


def test_policy_has_the_dns_rule_then_one_rule_per_allow_entry(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "two-rules", egress={"allow": [
        {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32"],
         "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8000, "endPort": 8100}]},
        {"cidr": "2001:db8::/32"},
    ]})
    assert_policy(kubectl, sbx, [
        DNS_RULE,
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32"]}}],
         "ports": [{"protocol": "TCP", "port": 443},
                   {"protocol": "TCP", "port": 8000, "endPort": 8100}]},
        {"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]},
    ])


def test_policy_without_dns_has_no_dns_rule(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    one = create_ready(kubectl, ns, "no-dns", egress={
        "dns": False, "allow": [{"cidr": "198.51.100.0/24", "ports": [{"port": 22}]}]})
    nothing = create_ready(kubectl, ns, "no-egress-at-all", egress={"dns": False})
    assert_policy(kubectl, one, [
        {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}],
         "ports": [{"protocol": "TCP", "port": 22}]},
    ])
    # No rule at all: every egress is denied.
    assert_policy(kubectl, nothing, [])
    assert "egress" not in kubectl.json("-n", ns, "get", "networkpolicy", "no-egress-at-all")["spec"]
    assert condition(nothing, "NetworkIsolated")["message"] == \
        "all ingress denied; egress limited to 0 rules by NetworkPolicy no-egress-at-all"


def test_policy_without_egress_allows_only_dns(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "dns-only")
    assert_policy(kubectl, sbx, [DNS_RULE])


def test_policy_cidrs_are_written_in_canonical_form(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "canonical", egress={"dns": False, "allow": [
        {"cidr": "203.0.113.5/24", "except": ["203.0.113.9/31"]},
        {"cidr": "2001:DB8:0:0:1::5/64", "except": ["2001:db8::1:0:0:5/96"]},
        {"cidr": "2001:DB8::1/32"},
    ]})
    assert_policy(kubectl, sbx, [
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.8/31"]}}]},
        {"to": [{"ipBlock": {"cidr": "2001:db8::/64", "except": ["2001:db8:0:0:1::/96"]}}]},
        {"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]},
    ])


def test_baseline_policy_denies_everything_for_every_sandbox_pod(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "first")
    create_ready(kubectl, ns, "second")
    base = kubectl.json("-n", ns, "get", "networkpolicy", "kage-baseline")
    assert base["spec"] == BASELINE_SPEC
    assert base["metadata"]["labels"] == BASELINE_LABELS
    assert "ownerReferences" not in base["metadata"]  # the namespace's, not one Sandbox's
    names = sorted(p["metadata"]["name"] for p in
                   kubectl.json("-n", ns, "get", "networkpolicies")["items"])
    assert names == ["first", "kage-baseline", "second"]


# ---- 1. exact shapes: the pod --------------------------------------------


def test_pod_carries_everything_the_spec_gives(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(
        kubectl, ns, "full",
        command=["python3", "-m", "http.server"],
        args=["8000", "--bind", "0.0.0.0"],
        workingDir="/work",
        imagePullPolicy="Always",
        env=[
            {"name": "PLAIN", "value": "v"},
            {"name": "EMPTY"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        ],
        resources={"cpu": "500m", "memory": "512Mi", "ephemeralStorage": "1Gi"},
        securityContext={"runAsUser": 1000, "runAsGroup": 2000},
    )
    pod = kubectl.json("-n", ns, "get", "pod", "full")
    assert_pod_metadata(pod, sbx)
    assert split_pod_spec(pod) == expected_pod_spec(
        expected_container(
            ["python3", "-m", "http.server"],
            args=["8000", "--bind", "0.0.0.0"],
            working_dir="/work",
            pull="Always",
            env=[
                {"name": "PLAIN", "value": "v"},
                {"name": "EMPTY"},  # the empty value, as the API server stores it
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "MODE",
                 "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            ],
            resources=("500m", "512Mi", "1Gi"),
        ),
        run_as_user=1000, run_as_group=2000,
    )
    assert pod["status"]["qosClass"] == "Guaranteed"  # requests = limits


def test_pod_defaults_keep_an_idle_sandbox_alive(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "idle")
    pod = kubectl.json("-n", ns, "get", "pod", "idle")
    assert_pod_metadata(pod, sbx)
    # No command: a shell that sleeps until told to stop, ready for exec;
    # resources 1 CPU, 1Gi memory, 2Gi scratch; user and group 65532.
    assert split_pod_spec(pod) == expected_pod_spec(
        expected_container(["/bin/sh", "-c", KEEPALIVE]))


def test_pod_runs_the_before_script_through_the_environment(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    script = 'pip install requests && echo "$HOME" $$ $(FOO) \'quoted\''
    sbx = create_ready(kubectl, ns, "prepared", beforeScript=script,
                       command=["python3", "app.py"], args=["--port", "8000"],
                       env=[{"name": "FOO", "value": "bar"}])
    pod = kubectl.json("-n", ns, "get", "pod", "prepared")
    assert_pod_metadata(pod, sbx)
    # sh -c WRAPPER kage-sandbox <command> <args>: the script is never
    # spliced into the program; it comes in through KAGE_BEFORE_SCRIPT.
    assert split_pod_spec(pod) == expected_pod_spec(expected_container(
        ["/bin/sh", "-c", BEFORE_SCRIPT_WRAPPER, "kage-sandbox",
         "python3", "app.py", "--port", "8000"],
        # Every $ doubled: the kubelet expands $(VAR) and turns $$ into $ in
        # env values, so this is how the script reaches the shell unchanged.
        env=[{"name": "FOO", "value": "bar"},
             {"name": "KAGE_BEFORE_SCRIPT", "value": script.replace("$", "$$")}],
        readiness=True,
    ))
    assert script not in "".join(pod["spec"]["containers"][0]["command"])


def test_before_script_without_command_keeps_the_sandbox_alive(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "prepared-idle", beforeScript="true")
    pod = kubectl.json("-n", ns, "get", "pod", "prepared-idle")
    assert split_pod_spec(pod) == expected_pod_spec(expected_container(
        ["/bin/sh", "-c", BEFORE_SCRIPT_WRAPPER, "kage-sandbox"],
        env=[{"name": "KAGE_BEFORE_SCRIPT", "value": "true"}],
        readiness=True,
    ))


# ---- 2. status -------------------------------------------------------------


def test_ready_sandbox_reports_where_it_runs(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "status", egress={"allow": [{"cidr": "192.0.2.0/24"}]})
    pod = kubectl.json("-n", ns, "get", "pod", "status")
    st = sbx["status"]
    gen = sbx["metadata"]["generation"]
    for c in st["conditions"]:
        assert RFC3339.match(c.pop("lastTransitionTime")), c
    assert pod["status"]["podIP"]
    record = st.pop("podRecord")
    assert sorted(record) == ["digestVersion", "formDigest", "inputsDigest", "uid"]
    assert (record["uid"], record["digestVersion"]) == (pod["metadata"]["uid"], 1)
    assert re.fullmatch(r"[0-9a-f]{16}", record["formDigest"])
    assert re.fullmatch(r"[0-9a-f]{16}", record["inputsDigest"])
    assert st == {
        "phase": "Running",
        "observedGeneration": gen,
        "podName": "status",
        "podIP": pod["status"]["podIP"],
        "nodeName": NODE,
        "startTime": pod["status"]["startTime"],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "SandboxReady",
             "message": f"the sandbox runs on node {NODE}", "observedGeneration": gen},
            {"type": "NetworkIsolated", "status": "True", "reason": "PoliciesApplied",
             "message": "all ingress denied; egress limited to 2 rules by NetworkPolicy status",
             "observedGeneration": gen},
        ],
    }
    assert pod["spec"]["nodeName"] == NODE
    assert RFC3339.match(st["startTime"])


# ---- 3. order ----------------------------------------------------------------


class AddedWatch:
    """A raw watch on a collection, started before the objects exist: the
    resourceVersion of each object's ADDED event is the version it was
    created at (later updates, such as the policy's second owner, do not
    change it)."""

    def __init__(self, kubectl, path):
        self.proc = subprocess.Popen(
            [kubectl.bin, "--kubeconfig", kubectl.kubeconfig, "get", "--raw", path + "?watch=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.added = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            md = ev["object"]["metadata"]
            if ev["type"] == "ADDED":
                with self.lock:
                    self.added.setdefault(md["name"], int(md["resourceVersion"]))

    def version(self, name):
        with self.lock:
            return self.added.get(name)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def test_policies_exist_before_the_pod(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    pods = AddedWatch(kubectl, f"/api/v1/namespaces/{ns}/pods")
    policies = AddedWatch(kubectl, f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")
    try:
        # Both watches are open once the namespace's (empty) lists answer
        # through them: a marker policy created now must show up.
        wait_for(lambda: kubectl.json("-n", ns, "get", "networkpolicy")["items"] == [],
                 timeout=10, what="the empty policy list")
        time.sleep(1)
        kubectl.apply(sandbox(ns, "ordered"))
        pod_rv = wait_for(lambda: pods.version("ordered"), timeout=30, what="the pod's ADDED event")
        own_rv = wait_for(lambda: policies.version("ordered"), timeout=10, what="the policy's ADDED event")
        base_rv = wait_for(lambda: policies.version("kage-baseline"), timeout=10,
                           what="the baseline's ADDED event")
    finally:
        pods.stop()
        policies.stop()
    assert own_rv < pod_rv
    assert base_rv < pod_rv
    pod = kubectl.json("-n", ns, "get", "pod", "ordered")
    for name in ("ordered", "kage-baseline"):
        pol = kubectl.json("-n", ns, "get", "networkpolicy", name)
        # RFC 3339 in UTC with whole seconds: the strings order as times do.
        assert pol["metadata"]["creationTimestamp"] <= pod["metadata"]["creationTimestamp"]


# ---- 4. drift ----------------------------------------------------------------


def test_pod_deleted_from_outside_is_recreated(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "phoenix")
    old = kubectl.json("-n", ns, "get", "pod", "phoenix")
    kubectl.run("-n", ns, "delete", "pod", "phoenix", "--wait=false")

    def replaced():
        pod = get(kubectl, ns, "pod", "phoenix")
        if pod and pod["metadata"]["uid"] != old["metadata"]["uid"] and \
                "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    new = wait_for(replaced, timeout=CONVERGE, what="a new pod")
    assert new["metadata"]["annotations"] == old["metadata"]["annotations"]
    assert split_pod_spec(new) == split_pod_spec(old)
    assert_pod_metadata(new, sbx)
    wait_reason(kubectl, ns, "phoenix", "SandboxReady", timeout=CONVERGE)


@pytest.mark.parametrize("patch", [
    # Out of both policies' selectors: the pod would run unconfined.
    '[{"op":"remove","path":"/metadata/labels/kage.dev~1sandbox"}]',
    # Out of its own policy's selector (the baseline still denies all).
    '[{"op":"replace","path":"/metadata/labels/kage.dev~1sandbox","value":"other"}]',
], ids=["label-removed", "label-changed"])
def test_pod_relabelled_from_outside_is_replaced(kubectl, kage, make_namespace, patch):
    """Both policies select the sandbox's pod by its kage.dev/sandbox label,
    and the spec-hash covers the labels: a pod whose label was edited is no
    longer the pod kage rendered (without the label it runs unconfined), so
    it is replaced like any other drift. kage may not patch pods (RBAC), so
    replacing is the way back."""
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "relabel")
    old = kubectl.json("-n", ns, "get", "pod", "relabel")
    kubectl.run("-n", ns, "patch", "pod", "relabel", "--type=json", "-p", patch)

    def replaced():
        pod = get(kubectl, ns, "pod", "relabel")
        if pod and pod["metadata"]["uid"] != old["metadata"]["uid"] and \
                "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    try:
        new = wait_for(replaced, timeout=CONVERGE, what="the relabelled pod to be replaced")
    except AssertionError as e:
        pod = get(kubectl, ns, "pod", "relabel")
        now = get(kubectl, ns, "sandbox", "relabel")
        raise AssertionError(
            f"{e}; pod uid {pod['metadata']['uid']} (old {old['metadata']['uid']}) labels "
            f"{pod['metadata'].get('labels')}; sandbox Ready {condition(now, 'Ready')}, "
            f"NetworkIsolated {condition(now, 'NetworkIsolated')}") from None
    assert_pod_metadata(new, sbx)
    wait_reason(kubectl, ns, "relabel", "SandboxReady", timeout=CONVERGE)


def wait_replaced(kubectl, ns, name, old_uid, what):
    def replaced():
        pod = get(kubectl, ns, "pod", name)
        if pod and pod["metadata"]["uid"] != old_uid and "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    return wait_for(replaced, timeout=CONVERGE, what=what)


@pytest.mark.parametrize("patch", [
    # Pods let a container's image change in place; the annotation stays.
    '[{"op":"replace","path":"/spec/containers/0/image","value":"busybox:1.37"}]',
    # A label another NetworkPolicy might select.
    '[{"op":"add","path":"/metadata/labels/app","value":"web"}]',
], ids=["image", "label-added"])
def test_pod_edited_in_place_is_replaced(kubectl, kage, make_namespace, patch):
    """Drift is judged against the pod kage renders, not the spec-hash
    annotation the pod carries: an edit that leaves the annotation alone is
    still seen, and the pod is replaced."""
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "edited")
    old = kubectl.json("-n", ns, "get", "pod", "edited")
    kubectl.run("-n", ns, "patch", "pod", "edited", "--type=json", "-p", patch)
    new = wait_replaced(kubectl, ns, "edited", old["metadata"]["uid"], "the edited pod to go")
    assert new["spec"]["containers"][0]["image"] == IMAGE
    assert "app" not in new["metadata"]["labels"]
    assert_pod_metadata(new, sbx)
    wait_reason(kubectl, ns, "edited", "SandboxReady", timeout=CONVERGE)


def test_forged_pod_with_kages_annotation_and_owner_is_replaced(kubectl, kage, make_namespace):
    """A pod made by someone else in the sandbox's place, with kage's labels,
    spec-hash annotation and a controller owner reference to the Sandbox,
    but no runtime class and a service-account token, is not adopted."""
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "forged")
    real = kubectl.json("-n", ns, "get", "pod", "forged")
    # Swapped while the controller is down, so it finds the forged pod in
    # its place when it starts.
    assert kage.stop() == 0
    try:
        kubectl.run("-n", ns, "delete", "pod", "forged", "--wait=true")
        fake = foreign_pod(ns, "forged", real["metadata"]["labels"])
        fake["metadata"]["annotations"] = real["metadata"]["annotations"]
        fake["metadata"]["ownerReferences"] = real["metadata"]["ownerReferences"]
        kubectl.create(fake)
        fake_uid = kubectl.json("-n", ns, "get", "pod", "forged")["metadata"]["uid"]
    finally:
        kage.start()
        kage.wait_synced()
    new = wait_replaced(kubectl, ns, "forged", fake_uid, "the forged pod to be replaced")
    assert new["spec"]["runtimeClassName"] == "kata-fc"
    assert new["spec"]["automountServiceAccountToken"] is False
    assert_pod_metadata(new, sbx)
    wait_reason(kubectl, ns, "forged", "SandboxReady", timeout=CONVERGE)


def test_image_change_replaces_the_pod(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "upgrade")
    old = kubectl.json("-n", ns, "get", "pod", "upgrade")
    kubectl.run("-n", ns, "patch", "sandbox", "upgrade", "--type=merge",
                "-p", '{"spec":{"image":"busybox:1.37"}}')

    def replaced():
        pod = get(kubectl, ns, "pod", "upgrade")
        if pod and pod["metadata"]["uid"] != old["metadata"]["uid"] and \
                "deletionTimestamp" not in pod["metadata"]:
            return pod
        return None
    new = wait_for(replaced, timeout=CONVERGE, what="the pod to be replaced")
    assert new["spec"]["containers"][0]["image"] == "busybox:1.37"
    old_hash = old["metadata"]["annotations"]["kage.dev/spec-hash"]
    new_hash = new["metadata"]["annotations"]["kage.dev/spec-hash"]
    assert re.fullmatch(r"[0-9a-f]{16}", new_hash) and new_hash != old_hash
    sbx = wait_reason(kubectl, ns, "upgrade", "SandboxReady", timeout=CONVERGE)
    assert sbx["metadata"]["generation"] == 2
    assert sbx["status"]["observedGeneration"] == 2
    assert_pod_metadata(new, sbx)


def test_egress_change_updates_the_policy_and_keeps_the_pod(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "reroute", egress={"allow": [{"cidr": "192.0.2.0/24"}]})
    pod = kubectl.json("-n", ns, "get", "pod", "reroute")
    kubectl.run("-n", ns, "patch", "sandbox", "reroute", "--type=merge",
                "-p", '{"spec":{"egress":{"allow":[{"cidr":"198.51.100.0/24"}]}}}')
    want = policy_spec("reroute", [DNS_RULE, {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}])
    wait_for(lambda: kubectl.json("-n", ns, "get", "networkpolicy", "reroute")["spec"] == want,
             timeout=CONVERGE, what="the policy to follow the spec")
    sbx = wait_reason(kubectl, ns, "reroute", "SandboxReady", timeout=CONVERGE)
    assert sbx["status"]["observedGeneration"] == 2
    after = kubectl.json("-n", ns, "get", "pod", "reroute")
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert after["metadata"]["annotations"] == pod["metadata"]["annotations"]


def test_edited_policy_is_put_back_exactly(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "guarded", egress={"allow": [
        {"cidr": "203.0.113.0/24", "ports": [{"port": 443}]}]})
    original = kubectl.json("-n", ns, "get", "networkpolicy", "guarded")
    want = original["spec"]

    def restored():
        pol = kubectl.json("-n", ns, "get", "networkpolicy", "guarded")
        return pol if pol["spec"] == want else None

    # Select some other pod: the sandbox would lose its own policy.
    kubectl.run("-n", ns, "patch", "networkpolicy", "guarded", "--type=merge",
                "-p", '{"spec":{"podSelector":{"matchLabels":{"kage.dev/sandbox":"other"}}}}')
    wait_for(restored, timeout=CONVERGE, what="the podSelector to be restored")
    # An extra label in the selector (a server-side apply would keep it).
    kubectl.run("-n", ns, "patch", "networkpolicy", "guarded", "--type=merge",
                "-p", '{"spec":{"podSelector":{"matchLabels":{"extra":"x"}}}}')
    wait_for(restored, timeout=CONVERGE, what="the extra selector label to go")
    # Open the sandbox to the world.
    kubectl.run("-n", ns, "patch", "networkpolicy", "guarded", "--type=json", "-p",
                '[{"op":"add","path":"/spec/egress/-","value":{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}}]')
    wait_for(restored, timeout=CONVERGE, what="the added egress rule to go")
    # Allow ingress.
    kubectl.run("-n", ns, "patch", "networkpolicy", "guarded", "--type=merge",
                "-p", '{"spec":{"ingress":[{}]}}')
    pol = wait_for(restored, timeout=CONVERGE, what="the ingress rule to go")
    assert pol["metadata"]["uid"] == original["metadata"]["uid"]  # put back, not recreated
    assert_policy(kubectl, sbx, want["egress"])
    wait_reason(kubectl, ns, "guarded", "SandboxReady", timeout=CONVERGE)


def test_deleted_policies_are_recreated(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    sbx = create_ready(kubectl, ns, "rebuilt")
    own = kubectl.json("-n", ns, "get", "networkpolicy", "rebuilt")
    base = kubectl.json("-n", ns, "get", "networkpolicy", "kage-baseline")

    def recreated(name, uid):
        def check():
            pol = get(kubectl, ns, "networkpolicy", name)
            if pol and pol["metadata"]["uid"] != uid and "deletionTimestamp" not in pol["metadata"]:
                return pol
            return None
        return check

    kubectl.run("-n", ns, "delete", "networkpolicy", "rebuilt", "--wait=false")
    wait_for(recreated("rebuilt", own["metadata"]["uid"]), timeout=CONVERGE,
             what="the sandbox's policy to be recreated")
    assert_policy(kubectl, sbx, [DNS_RULE])

    kubectl.run("-n", ns, "delete", "networkpolicy", "kage-baseline", "--wait=false")
    new_base = wait_for(recreated("kage-baseline", base["metadata"]["uid"]), timeout=CONVERGE,
                        what="kage-baseline to be recreated")
    assert new_base["spec"] == BASELINE_SPEC
    assert new_base["metadata"]["labels"] == BASELINE_LABELS
    # The pod stayed: it was guarded by the other policy all along.
    wait_reason(kubectl, ns, "rebuilt", "SandboxReady", timeout=CONVERGE)


def test_deleting_the_sandbox_removes_its_pod_and_policy(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "doomed")
    kubectl.run("-n", ns, "delete", "sandbox", "doomed")
    wait_for(lambda: get(kubectl, ns, "pod", "doomed") is None and
             get(kubectl, ns, "networkpolicy", "doomed") is None,
             timeout=60, interval=1, what="the garbage collector to remove pod and policy")


def test_sandbox_recreated_under_the_same_name_gets_fresh_children(kubectl, kage,
                                                                    make_namespace):
    """kubectl delete + apply: the old pod and policy belong to the old
    Sandbox until the garbage collector removes them; then the new Sandbox
    gets its own."""
    ns = make_namespace("sbx", RESTRICTED)
    old = create_ready(kubectl, ns, "again")
    old_pod = kubectl.json("-n", ns, "get", "pod", "again")
    kubectl.run("-n", ns, "delete", "sandbox", "again")
    kubectl.apply(sandbox(ns, "again"))
    new = wait_reason(kubectl, ns, "again", "SandboxReady", timeout=60)
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    pod = kubectl.json("-n", ns, "get", "pod", "again")
    assert pod["metadata"]["uid"] != old_pod["metadata"]["uid"]
    assert_pod_metadata(pod, new)
    assert_policy(kubectl, new, [DNS_RULE])


def test_no_writes_once_converged(kubectl, kage, make_namespace):
    ns = make_namespace("sbx", RESTRICTED)
    # Inputs the API server stores differently from how they were written
    # (quantities, CIDRs): a careless comparison would rewrite forever.
    create_ready(kubectl, ns, "settled",
                 resources={"cpu": "0.5", "memory": "1G", "ephemeralStorage": 1073741824},
                 env=[{"name": "EMPTY"}, {"name": "A", "value": "1"}],
                 beforeScript="true",
                 egress={"allow": [
                     {"cidr": "203.0.113.5/24", "except": ["203.0.113.7/32"],
                      "ports": [{"port": 8000, "endPort": 8100}, {"port": 53, "protocol": "UDP"}]},
                     {"cidr": "2001:DB8::1/32"}]})
    objects = [("pod", "settled"), ("networkpolicy", "settled"),
               ("networkpolicy", "kage-baseline"), ("sandbox", "settled")]
    time.sleep(1)  # kwok's and kage's last status writes land
    before = versions(kubectl, ns, *objects)
    lines = len(kage.log_lines())
    time.sleep(5)
    assert versions(kubectl, ns, *objects) == before
    news = [l for l in kage.log_lines()[lines:] if f"{ns}/" in str(l)]
    assert news == []


# ---- 5. NameConflict -------------------------------------------------------


def foreign_pod(ns, name, labels):
    """A restricted-compliant pod that kage does not own."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


@pytest.mark.parametrize("labels", [
    {"app": "mine"},
    # labelled like a sandbox pod, so it is in kage's pod cache
    {"kage.dev/sandbox": "taken"},
], ids=["unlabelled", "sandbox-labelled"])
def test_foreign_pod_of_the_same_name_is_left_alone(kubectl, kage, make_namespace, labels):
    ns = make_namespace("sbx", RESTRICTED)
    kubectl.create(foreign_pod(ns, "taken", labels))
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "pod/taken", "--timeout=30s")
    time.sleep(0.5)  # kwok's last status write
    before = kubectl.json("-n", ns, "get", "pod", "taken")
    kubectl.apply(sandbox(ns, "taken"))
    sbx = wait_reason(kubectl, ns, "taken", "NameConflict")
    ready = condition(sbx, "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == (
        f"pod {ns}/taken exists and is not owned by this Sandbox; kage leaves it alone "
        "until it is renamed or removed")
    assert sbx["status"]["phase"] == "Pending"
    assert condition(sbx, "NetworkIsolated")["status"] == "True"
    assert "podIP" not in sbx["status"] and "podName" not in sbx["status"]
    time.sleep(2)  # retries happen with backoff meanwhile
    after = kubectl.json("-n", ns, "get", "pod", "taken")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after == before


@pytest.mark.parametrize("labels", [
    {"team": "net"},
    # labelled as kage's, so it is in kage's policy cache, but owned by no Sandbox
    {"app.kubernetes.io/managed-by": "kage", "kage.dev/sandbox": "walled"},
], ids=["unlabelled", "kage-labelled"])
def test_foreign_policy_of_the_same_name_is_left_alone(kubectl, kage, make_namespace, labels):
    ns = make_namespace("sbx", RESTRICTED)
    kubectl.create({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "walled", "namespace": ns, "labels": labels},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    })
    before = kubectl.json("-n", ns, "get", "networkpolicy", "walled")
    kubectl.apply(sandbox(ns, "walled"))
    sbx = wait_reason(kubectl, ns, "walled", "NameConflict")
    message = (f"NetworkPolicy {ns}/walled exists and is not owned by this Sandbox; kage "
               "leaves it alone and creates no pod until it is renamed or removed")
    ready = condition(sbx, "Ready")
    isolated = condition(sbx, "NetworkIsolated")
    assert (ready["status"], ready["message"]) == ("False", message)
    assert (isolated["status"], isolated["reason"], isolated["message"]) == \
        ("False", "NameConflict", message)
    assert sbx["status"]["phase"] == "Pending"
    time.sleep(2)
    assert get(kubectl, ns, "pod", "walled") is None
    assert kubectl.json("-n", ns, "get", "networkpolicy", "walled") == before


# ---- 6. how a pod's end shows --------------------------------------------


def container_status(state, ready=False):
    return [{"name": "sandbox", "image": IMAGE, "imageID": "", "ready": ready,
             "restartCount": 0, "state": state}]


FAILURES = {
    "oom-killed": (
        {"resources": {"memory": "256Mi"}},
        {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 137, "reason": "OOMKilled"}})},
        ("Failed", "False", "OOMKilled",
         "the sandbox ran out of memory: it used more than its memory limit of 256Mi"),
    ),
    "before-script-failed": (
        {"beforeScript": "exit 3"},
        {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 3, "reason": "Error",
                             "message": "kage: beforeScript failed with exit code 3\n"}})},
        ("Failed", "False", "BeforeScriptFailed", "the beforeScript exited with code 3"),
    ),
    "image-pull-back-off": (
        {},
        {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"waiting": {"reason": "ImagePullBackOff",
                          "message": f'Back-off pulling image "{IMAGE}"'}})},
        ("Creating", "False", "ImagePullBackOff",
         f'cannot pull image "{IMAGE}": Back-off pulling image "{IMAGE}"'),
    ),
    "succeeded": (
        {"command": ["true"]},
        {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 0, "reason": "Completed"}})},
        # Finished as asked, and no longer usable: Ready False, reason Completed.
        ("Succeeded", "False", "Completed", "the command exited with code 0"),
    ),
    "command-failed": (
        {"command": ["false"]},
        {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 2, "reason": "Error"}})},
        ("Failed", "False", "CommandFailed", "the command exited with code 2"),
    ),
    # The termination message is the sandbox's own text: quoted as such,
    # one line without control characters, never a reason.
    "command-output-is-the-sandboxs": (
        {"command": ["false"]},
        {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 1, "reason": "Error",
                             "message": "\x1b[31mboom\r\nfake: SandboxReady\u202e"}})},
        ("Failed", "False", "CommandFailed",
         'the command exited with code 1; the sandbox wrote: "[31mboom fake: SandboxReady"'),
    ),
    # The wrapper's line from a pod that was Ready (its Ready condition
    # changed after the container started): the command wrote it.
    "before-script-line-after-ready": (
        {"beforeScript": "true"},
        {"phase": "Failed",
         "conditions": [{"type": "Ready", "status": "False",
                         "lastTransitionTime": "2026-11-28T10:04:58Z"}],
         "containerStatuses": container_status(
             {"terminated": {"exitCode": 3, "reason": "Error",
                             "startedAt": "2026-11-28T09:59:56Z",
                             "message": "kage: beforeScript failed with exit code 3\n"}})},
        ("Failed", "False", "CommandFailed",
         'the command exited with code 3; the sandbox wrote: "kage: beforeScript failed with '
         'exit code 3"'),
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_pod_state_maps_to_a_reason(kubectl, kage, make_namespace, case):
    spec, pod_status, (phase, ready_status, reason, message) = FAILURES[case]
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, case, **spec)
    # What the kubelet would report, written as the admin. kwok leaves the
    # status of a pod that has an IP alone (checked below), so it stays.
    kubectl.run("-n", ns, "patch", "pod", case, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": pod_status}))
    sbx = wait_reason(kubectl, ns, case, reason, timeout=CONVERGE)
    pod = kubectl.json("-n", ns, "get", "pod", case)
    assert pod["status"]["phase"] == pod_status["phase"]
    want = pod_status["containerStatuses"][0]["state"]
    (kind, fields), = want.items()
    state = pod["status"]["containerStatuses"][0]["state"]
    assert {k: v for k, v in state[kind].items() if v is not None} == fields
    ready = condition(sbx, "Ready")
    assert sbx["status"]["phase"] == phase
    assert (ready["status"], ready["reason"], ready["message"]) == (ready_status, reason, message)
    assert ready["observedGeneration"] == sbx["metadata"]["generation"]
    assert condition(sbx, "NetworkIsolated")["reason"] == "PoliciesApplied"
    assert sbx["status"]["podName"] == case


# ---- 7. API refusals ---------------------------------------------------------


def test_quota_refusal_is_reported_and_retried_until_quota_frees(kubectl, kage, make_namespace):
    # The refusal is a 403, logged as warn "write refused" with "code":403.
    ns = make_namespace("sbx", RESTRICTED)
    kubectl.create({"apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": "tiny", "namespace": ns},
                    "spec": {"hard": {"requests.cpu": "100m"}}})
    # Until the quota controller has counted, admission says "status
    # unknown" rather than "exceeded".
    wait_for(lambda: get(kubectl, ns, "resourcequota", "tiny").get("status", {}).get("used"),
             timeout=30, what="the quota to be counted")
    kubectl.apply(sandbox(ns, "squeezed"))
    sbx = wait_reason(kubectl, ns, "squeezed", "QuotaExceeded")
    ready = condition(sbx, "Ready")
    assert ready["status"] == "False"
    assert ready["message"] == (
        'pods "squeezed" is forbidden: exceeded quota: tiny, requested: requests.cpu=1, '
        "used: requests.cpu=0, limited: requests.cpu=100m")
    assert sbx["status"]["phase"] == "Pending"
    assert condition(sbx, "NetworkIsolated")["status"] == "True"  # the policies went in
    assert get(kubectl, ns, "pod", "squeezed") is None

    kubectl.run("-n", ns, "delete", "resourcequota", "tiny")
    sbx = wait_reason(kubectl, ns, "squeezed", "SandboxReady", timeout=20)
    assert sbx["status"]["phase"] == "Running"


# ---- 8. the log --------------------------------------------------------------

TERMINATING = "because it is being terminated"


def test_deleting_a_namespace_with_sandboxes_makes_no_futile_writes(kubectl, kage,
                                                                      make_namespace):
    """While a namespace is deleted its pods and policies may go before its
    Sandboxes do; kage must not fight that: a write refused because the
    namespace is terminating (status cause NamespaceTerminating) means there
    is nothing to do, not a failure to retry with backoff and warn about."""
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "leaving")
    create_ready(kubectl, ns, "leaving-too")
    mark = len(kage.log_lines())
    kubectl.run("delete", "namespace", ns, "--timeout=60s")
    complaints = [l for l in kage.log_lines()[mark:]
                  if l.get("level") != "info" and ns in json.dumps(l)]
    assert complaints == []


def test_log_shows_no_error_only_the_expected_refusals(kage, log_mark):
    lines = kage.log_lines()[log_mark:]
    assert [l for l in lines if "raw" in l] == []
    assert [l for l in lines if l.get("level") == "error"] == []

    def expected(l):
        message = l.get("message", "")
        # Writes into the namespaces deleted after each test: the test
        # above guards against these.
        if l.get("code") == 403 and TERMINATING in message:
            return True
        # The quota test's refusal.
        return l.get("msg") == "write refused" and l.get("code") == 403 and \
            l.get("object") == "pod" and "exceeded quota" in message
    unexpected = [l for l in lines if l.get("level") == "warn" and not expected(l)]
    assert unexpected == []


def test_a_baseline_that_lost_its_label_is_taken_back(kubectl, kage, make_namespace):
    """kage watches its policies by the managed-by label: a baseline without
    it is out of sight. With rules exactly kage's it is still kage's: put
    back whole, and the sandboxes stay Ready (no NameConflict)."""
    ns = make_namespace("sbx", RESTRICTED)
    create_ready(kubectl, ns, "guarded")
    kubectl.run("-n", ns, "label", "networkpolicy", "kage-baseline",
                "app.kubernetes.io/managed-by-")
    # Another sandbox makes kage look at the baseline again.
    create_ready(kubectl, ns, "later")
    baseline = wait_for(
        lambda: (lambda p: p if p["metadata"].get("labels", {}).get(
            "app.kubernetes.io/managed-by") == "kage" else None)(
            kubectl.json("-n", ns, "get", "networkpolicy", "kage-baseline")),
        timeout=CONVERGE, what="the baseline's label to be put back")
    assert baseline["spec"] == {
        "podSelector": {"matchExpressions": [{"key": "kage.dev/sandbox", "operator": "Exists"}]},
        "policyTypes": ["Ingress", "Egress"]}
    for name in ("guarded", "later"):
        ready = condition(kubectl.json("-n", ns, "get", "sandbox", name), "Ready")
        assert (ready["status"], ready["reason"]) == ("True", "SandboxReady")
