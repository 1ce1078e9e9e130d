# SPDX-License-Identifier: Apache-2.0
"""Tenancy, against the real API server, with the controller as shipped
(strict: a Sandbox no SandboxClass applies to gets no pod):

- a class is for the namespaces its namespaceSelector selects; a Sandbox
  elsewhere that names it gets no pod (ClassNotAllowed), and one that ran
  loses its pod when its namespace loses the grant;
- with no class applying, a Sandbox gets no pod (NoClass); the shipped
  default class (manifests/classes) gives it guardrails fit for untrusted
  code;
- whatever blocks a running Sandbox fails closed: its pod goes and its own
  policy allows nothing.
"""

import ipaddress
import time
import uuid

import pytest
import yaml

from conftest import REPO, Controller
from expected import API_VERSION, DNS_RULE, RESTRICTED
from sandboxes import condition, get, wait_reason

IMAGE = "python:3.12-slim"
RUN = uuid.uuid4().hex[:8]
TEAM = "e2e.kage.dev/team"


@pytest.fixture(scope="module")
def strict(kage):
    """The controller as shipped, in place of the session's (which runs
    with --allow-no-class) for this module."""
    assert kage.stop() == 0
    ctl = Controller(kage.kubeconfig, kage.log_path.parent / "strict.log",
                     "--http-addr", "", strict=True).start()
    ctl.wait_synced()
    yield ctl
    assert ctl.stop() == 0
    kage.start()
    kage.wait_synced()


@pytest.fixture
def classes(kubectl):
    made = []

    def make(name, spec, default=False):
        md = {"name": name}
        if default:
            md["annotations"] = {"sandboxclass.kage.dev/is-default-class": "true"}
        kubectl.apply({"apiVersion": API_VERSION, "kind": "SandboxClass", "metadata": md,
                       "spec": spec})
        made.append(name)
        return name

    yield make
    for name in made:
        kubectl.run("delete", "sandboxclass", name, "--ignore-not-found", check=False)


def sandbox(ns, name, **spec):
    spec.setdefault("image", IMAGE)
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def label_namespace(kubectl, ns, value):
    """Sets (or, with None, removes) the team label of namespace ns."""
    kubectl.run("label", "namespace", ns, f"{TEAM}-" if value is None else f"{TEAM}={value}",
                "--overwrite")


def no_pod_for_a_while(kubectl, ns, name, seconds=2):
    time.sleep(seconds)
    assert get(kubectl, ns, "pod", name) is None


def ready(sbx):
    c = condition(sbx, "Ready")
    return c["status"], c["reason"], c["message"]


def test_a_class_is_only_for_the_namespaces_it_selects(kubectl, strict, make_namespace,
                                                        classes):
    ns = make_namespace("tnt", RESTRICTED)
    team = f"t-{RUN}"
    cls = classes(f"team-only-{RUN}", {"namespaceSelector": {"matchLabels": {TEAM: team}}})
    kubectl.apply(sandbox(ns, "borrower", sandboxClassName=cls))
    sbx = wait_reason(kubectl, ns, "borrower", "ClassNotAllowed")
    assert ready(sbx) == (
        "False", "ClassNotAllowed",
        f"SandboxClass {cls} may not be used in namespace {ns}: its namespaceSelector does not "
        "select it; use a class granted to this namespace")
    assert sbx["status"]["phase"] == "Pending"
    no_pod_for_a_while(kubectl, ns, "borrower")
    assert get(kubectl, ns, "networkpolicy", "borrower") is None

    # Granted: the label brings it up.
    label_namespace(kubectl, ns, team)
    wait_reason(kubectl, ns, "borrower", "SandboxReady", timeout=30)

    # The grant taken back: the pod goes, the policy allows nothing.
    label_namespace(kubectl, ns, None)
    wait_reason(kubectl, ns, "borrower", "ClassNotAllowed", timeout=30)
    wait_for_gone(kubectl, ns, "pod", "borrower")
    policy = kubectl.json("-n", ns, "get", "networkpolicy", "borrower")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in policy["spec"] or policy["spec"]["egress"] == []
    assert "ingress" not in policy["spec"] or policy["spec"]["ingress"] == []


def wait_for_gone(kubectl, ns, kind, name, timeout=30):
    deadline = time.monotonic() + timeout
    while get(kubectl, ns, kind, name) is not None:
        assert time.monotonic() < deadline, f"{kind} {ns}/{name} still there"
        time.sleep(0.25)


def test_with_no_class_applying_a_sandbox_gets_no_pod(kubectl, strict, make_namespace,
                                                      classes):
    ns = make_namespace("tnt", RESTRICTED)
    # A default class, but for other namespaces only.
    classes(f"others-{RUN}", {"namespaceSelector": {"matchLabels": {TEAM: "nobody"}}},
            default=True)
    kubectl.apply(sandbox(ns, "classless"))
    sbx = wait_reason(kubectl, ns, "classless", "NoClass")
    assert ready(sbx) == (
        "False", "NoClass",
        f"no SandboxClass applies in namespace {ns}: set spec.sandboxClassName to a class "
        "granted to it, or ask for a default class that selects it")
    no_pod_for_a_while(kubectl, ns, "classless")
    assert get(kubectl, ns, "networkpolicy", "classless") is None


def nat64(cidr):
    """An IPv4 block under the NAT64 well-known prefix, as kage writes it."""
    net = ipaddress.ip_network(cidr)
    base = int(ipaddress.IPv6Address("64:ff9b::"))
    return str(ipaddress.ip_network((base + int(net.network_address), 96 + net.prefixlen)))


def test_the_shipped_default_class_guards_a_sandbox_that_names_none(kubectl, strict,
                                                                    make_namespace):
    shipped = yaml.safe_load((REPO / "manifests/classes/untrusted.yaml").read_text())
    kubectl.run("apply", "-k", str(REPO / "manifests/classes"))
    try:
        ns = make_namespace("tnt", RESTRICTED)
        kubectl.apply(sandbox(ns, "guarded", egress={"allow": [{"cidr": "0.0.0.0/0"},
                                                               {"cidr": "::/0"}]}))
        wait_reason(kubectl, ns, "guarded", "SandboxReady", timeout=30)
        pod = kubectl.json("-n", ns, "get", "pod", "guarded")
        assert pod["spec"]["runtimeClassName"] == "kata-fc"
        amounts = {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"}
        assert pod["spec"]["containers"][0]["resources"] == {"requests": amounts,
                                                              "limits": amounts}
        denied = shipped["spec"]["egress"]["deniedCIDRs"]
        policy = kubectl.json("-n", ns, "get", "networkpolicy", "guarded")
        assert policy["spec"]["egress"] == [
            DNS_RULE,
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                 "except": [c for c in denied if ":" not in c]}}]},
            # An IPv4 denied range is denied in its NAT64 form (64:ff9b::/96) too.
            {"to": [{"ipBlock": {"cidr": "::/0",
                                 "except": [c if ":" in c else nat64(c) for c in denied]}}]},
        ]
        sbx = get(kubectl, ns, "sandbox", "guarded")
        assert sbx["status"]["expiresAt"]  # the class's maximum lifetime applies

        # Above the class's maximum: no pod.
        kubectl.apply(sandbox(ns, "greedy", resources={"memory": "8Gi"}))
        wait_reason(kubectl, ns, "greedy", "PolicyViolation")
        no_pod_for_a_while(kubectl, ns, "greedy")
    finally:
        kubectl.run("delete", "-k", str(REPO / "manifests/classes"), "--ignore-not-found",
                    check=False)


def test_a_running_sandbox_whose_class_goes_fails_closed(kubectl, strict, make_namespace,
                                                          classes):
    ns = make_namespace("tnt", RESTRICTED)
    cls = classes(f"going-{RUN}", {})
    kubectl.apply(sandbox(ns, "orphan", sandboxClassName=cls,
                          egress={"allow": [{"cidr": "203.0.113.0/24"}]}))
    wait_reason(kubectl, ns, "orphan", "SandboxReady", timeout=30)
    kubectl.run("delete", "sandboxclass", cls)
    wait_reason(kubectl, ns, "orphan", "ClassNotFound", timeout=30)
    wait_for_gone(kubectl, ns, "pod", "orphan")
    policy = kubectl.json("-n", ns, "get", "networkpolicy", "orphan")
    assert policy["spec"].get("egress", []) == []
    events = kubectl.json("-n", ns, "get", "events.events.k8s.io",
                          "--field-selector", "regarding.name=orphan")["items"]
    assert any(e["reason"] == "PolicyNarrowed" and e["note"] ==
               f"NetworkPolicy {ns}/orphan narrowed to allow nothing while the sandbox is "
               "blocked" for e in events)


def test_a_policy_not_kages_that_selects_a_sandbox_takes_its_pod_away(kubectl, strict,
                                                                       make_namespace, classes):
    """NetworkPolicies add up: one that is not kage's and selects a sandbox
    pod may let it reach more than its allow list. The pod goes until that
    policy does."""
    ns = make_namespace("tnt", RESTRICTED)
    cls = classes(f"plain-{RUN}", {})
    kubectl.apply(sandbox(ns, "watched", sandboxClassName=cls))
    wait_reason(kubectl, ns, "watched", "SandboxReady", timeout=30)
    kubectl.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "let-out", "namespace": ns},
                   "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}})
    sbx = wait_reason(kubectl, ns, "watched", "ForeignPolicy", timeout=30)
    message = (f"NetworkPolicy {ns}/let-out, not kage's, selects this sandbox's pod and may let "
               "it reach more than its own policy allows; kage removes the pod until the "
               "policy goes")
    assert ready(sbx) == ("False", "ForeignPolicy", message)
    isolated = condition(sbx, "NetworkIsolated")
    assert (isolated["status"], isolated["reason"]) == ("False", "ForeignPolicy")
    wait_for_gone(kubectl, ns, "pod", "watched")

    kubectl.run("-n", ns, "delete", "networkpolicy", "let-out")
    wait_reason(kubectl, ns, "watched", "SandboxReady", timeout=30)


def test_kages_own_policy_that_lost_its_owner_is_not_trusted(kubectl, strict, make_namespace,
                                                            classes):
    ns = make_namespace("tnt", RESTRICTED)
    cls = classes(f"plain2-{RUN}", {})
    kubectl.apply(sandbox(ns, "disowned", sandboxClassName=cls))
    wait_reason(kubectl, ns, "disowned", "SandboxReady", timeout=30)
    kubectl.run("-n", ns, "patch", "networkpolicy", "disowned", "--type=json",
                "-p", '[{"op":"remove","path":"/metadata/ownerReferences"}]')
    wait_reason(kubectl, ns, "disowned", "NameConflict", timeout=30)
    wait_for_gone(kubectl, ns, "pod", "disowned")
