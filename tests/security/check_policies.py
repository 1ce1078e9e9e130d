#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Policy check: reads the NetworkPolicies of namespaces with Sandboxes
(`kubectl get networkpolicies -o json`) beside the Sandboxes, their
SandboxClasses and, optionally, the pods, and fails on any policy that
lets a sandbox reach more than its spec and class allow.

For each Sandbox's own policy (label kage.dev/sandbox, owned by the
Sandbox): it selects exactly that sandbox's pod; policyTypes are Ingress
and Egress; there is no ingress rule; every egress rule is either exactly
the DNS rule (kube-system pods k8s-app=kube-dns, port 53 UDP and TCP, and
only when spec.egress.dns is not false) or ipBlock peers alone (a
podSelector or namespaceSelector peer would open the cluster) each inside
one spec.egress.allow entry, no wider in addresses or ports; the class's
deniedCIDRs are carved out (ipBlock.except) and its allowedCIDRs hold.
The namespace's kage-baseline selects every pod with kage.dev/sandbox and
has no rule. A policy not written by kage that selects a sandbox pod and
allows anything is reported too: NetworkPolicies add up.

    check_policies.py POLICIES.json SANDBOXES.json [CLASSES.json [PODS.json]]
    check_policies.py --self-test

Each file holds one object or a List (the output of kubectl get -o json).
Findings are printed one a line; the exit code is 1 when there is any."""

import copy
import ipaddress
import json
import sys

SANDBOX_LABEL = "kage.dev/sandbox"
MANAGED_BY = "app.kubernetes.io/managed-by"
BASELINE = "kage-baseline"
DEFAULT_CLASS = "sandboxclass.kage.dev/is-default-class"
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = {("UDP", 53, 53), ("TCP", 53, 53)}
BASELINE_SELECTOR = {"matchExpressions": [{"key": SANDBOX_LABEL, "operator": "Exists"}]}
ALL_PORTS = None  # a rule or allow entry without ports: every port, every protocol


def items(obj):
    """The objects of a List, or the object itself."""
    if obj is None:
        return []
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and "items" in obj and obj.get("kind", "").endswith("List"):
        return obj["items"] or []
    return [obj]


def meta(obj, key, default=None):
    return (obj.get("metadata") or {}).get(key, default)


def labels(obj):
    return meta(obj, "labels") or {}


def network(text):
    """An ip_network (host bits allowed, as the API server allows), or None."""
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def within(inner, outer):
    return inner.version == outer.version and inner.subnet_of(outer)


def ports_of(ports):
    """A port list as {(protocol, first, last)}, or ALL_PORTS when empty.
    A named port (a string) is kept as (protocol, name, name)."""
    if not ports:
        return ALL_PORTS
    out = set()
    for p in ports:
        proto = p.get("protocol") or "TCP"
        port = p.get("port")
        if port is None:  # every port of the protocol
            out.add((proto, 1, 65535))
        elif isinstance(port, str):
            out.add((proto, port, port))
        else:
            out.add((proto, int(port), int(p.get("endPort") or port)))
    return out


def ports_covered(rule_ports, allowed_ports):
    """Whether every port the rule opens is one the allow entry opens."""
    if allowed_ports is ALL_PORTS:
        return True
    if rule_ports is ALL_PORTS:
        return False
    for proto, lo, hi in rule_ports:
        if isinstance(lo, str):
            return False  # a named port cannot be matched to numbers
        if not any(proto == aproto and alo <= lo and hi <= ahi
                   for aproto, alo, ahi in allowed_ports):
            return False
    return True


def excepts_cover(block_net, block_excepts, entry_excepts):
    """Whether the rule carves out (at least) every range the allow entry
    carves out of the rule's block."""
    for e in entry_excepts:
        if e.version != block_net.version or not e.overlaps(block_net):
            continue
        if block_net.subnet_of(e):
            return False  # the entry excludes the whole block; the rule allows it
        if not any(within(e, x) for x in block_excepts):
            return False
    return True


def describe_ports(ports):
    if ports is ALL_PORTS:
        return "every port"
    return ", ".join(f"{p}/{lo}" + (f"-{hi}" if hi != lo else "") for p, lo, hi in sorted(
        ports, key=str))


def match_selector(selector, pod_labels):
    """A metav1.LabelSelector against a label set; None selector matches nothing."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if pod_labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and pod_labels.get(key) not in values:
            return False
        if op == "NotIn" and key in pod_labels and pod_labels[key] in values:
            return False
        if op == "Exists" and key not in pod_labels:
            return False
        if op == "DoesNotExist" and key in pod_labels:
            return False
    return True


class Inputs:
    def __init__(self, policies, sandboxes, classes=(), pods=None):
        self.policies = items(policies)
        self.sandboxes = {(meta(s, "namespace"), meta(s, "name")): s for s in items(sandboxes)}
        self.classes = {meta(c, "name"): c for c in items(classes)}
        self.pods = None if pods is None else items(pods)

    def class_of(self, sandbox):
        """(class spec or None, a finding or None)."""
        name = (sandbox.get("spec") or {}).get("sandboxClassName")
        if name:
            cls = self.classes.get(name)
            return ((cls or {}).get("spec") or {}), None
        defaults = [c for c in self.classes.values()
                    if (meta(c, "annotations") or {}).get(DEFAULT_CLASS) == "true"]
        if len(defaults) > 1:
            return None, f"{len(defaults)} default SandboxClasses"
        return ((defaults[0].get("spec") or {}) if defaults else None), None

    def sandbox_pod_labels(self, ns):
        """{pod name: labels} of the sandbox pods of a namespace: the live
        pods when given, else the labels kage gives them."""
        if self.pods is not None:
            return {meta(p, "name"): labels(p) for p in self.pods
                    if meta(p, "namespace") == ns and SANDBOX_LABEL in labels(p)}
        return {name: {SANDBOX_LABEL: name, MANAGED_BY: "kage"}
                for (sns, name) in self.sandboxes if sns == ns}


def is_dns_rule(rule):
    return rule.get("to") == [DNS_PEER] and ports_of(rule.get("ports")) == DNS_PORTS and \
        set(rule) <= {"to", "ports"}


def check_egress_rule(where, i, rule, sandbox, class_spec):
    out = []
    at = f"{where} egress[{i}]"
    spec = sandbox.get("spec") or {}
    egress = spec.get("egress") or {}
    if set(rule) - {"to", "ports"}:
        out.append(f"{at}: unknown fields {sorted(set(rule) - {'to', 'ports'})}")
    peers = rule.get("to") or []
    if not peers:
        return out + [f"{at}: no 'to': the rule allows every destination"]
    if is_dns_rule(rule):
        if egress.get("dns") is False:
            out.append(f"{at}: the DNS rule, though spec.egress.dns is false")
        return out
    rule_ports = ports_of(rule.get("ports"))
    entries = []
    for entry in egress.get("allow") or []:
        net = network(entry.get("cidr"))
        if net is not None:
            entries.append((net, [x for x in map(network, entry.get("except") or []) if x],
                            ports_of(entry.get("ports"))))
    cls = class_spec or {}
    cegress = cls.get("egress") or {}
    denied = [x for x in map(network, cegress.get("deniedCIDRs") or []) if x]
    allowed = cegress.get("allowedCIDRs")
    ceiling = None if allowed is None else [x for x in map(network, allowed) if x]

    for j, peer in enumerate(peers):
        pat = f"{at}.to[{j}]"
        if set(peer) != {"ipBlock"}:
            others = sorted(set(peer) - {"ipBlock"})
            out.append(f"{pat}: peer {others or 'without ipBlock'} opens in-cluster reach "
                       "(only the DNS rule may select pods or namespaces)")
            continue
        block = peer["ipBlock"] or {}
        net = network(block.get("cidr"))
        if net is None:
            out.append(f"{pat}: ipBlock cidr {block.get('cidr')!r} is not a CIDR")
            continue
        excepts = [x for x in map(network, block.get("except") or []) if x]
        if not any(within(net, enet) and excepts_cover(net, excepts, eex) and
                   ports_covered(rule_ports, eports) for enet, eex, eports in entries):
            out.append(f"{pat}: {net} minus {[str(x) for x in excepts]} on "
                       f"{describe_ports(rule_ports)} is wider than any spec.egress.allow entry")
        for d in denied:
            if d.version != net.version:
                continue
            if within(net, d):
                out.append(f"{pat}: {net} lies inside {d}, which the class denies")
            elif within(d, net) and not any(within(d, x) for x in excepts):
                out.append(f"{pat}: {net} does not carve out {d}, which the class denies")
        if ceiling is not None and not any(within(net, c) for c in ceiling):
            out.append(f"{pat}: {net} is outside the class's allowedCIDRs "
                       f"{[str(c) for c in ceiling]}")
    return out


def check_sandbox_policy(pol, inputs):
    ns, name = meta(pol, "namespace"), meta(pol, "name")
    where = f"NetworkPolicy {ns}/{name}"
    spec = pol.get("spec") or {}
    out = []
    sbx_name = labels(pol).get(SANDBOX_LABEL)
    owners = [o for o in meta(pol, "ownerReferences") or []
              if o.get("kind") == "Sandbox" and o.get("controller")]
    sandbox = inputs.sandboxes.get((ns, sbx_name))
    if sbx_name != name or len(owners) != 1 or owners[0].get("name") != name:
        out.append(f"{where}: labelled as kage's, but not the policy of one Sandbox "
                   f"(label {SANDBOX_LABEL}={sbx_name!r}, owners {owners})")
    if sandbox is None:
        return out + [f"{where}: no Sandbox {ns}/{sbx_name} to compare it with"]
    if owners and owners[0].get("uid") != meta(sandbox, "uid"):
        out.append(f"{where}: owned by another Sandbox of that name (uid "
                   f"{owners[0].get('uid')}, the Sandbox is {meta(sandbox, 'uid')})")
    if spec.get("podSelector") != {"matchLabels": {SANDBOX_LABEL: name}}:
        out.append(f"{where}: podSelector {spec.get('podSelector')} is not exactly "
                   f"{SANDBOX_LABEL}={name}: it would give the sandbox's egress to other pods")
    types = spec.get("policyTypes") or []
    if sorted(types) != ["Egress", "Ingress"]:
        out.append(f"{where}: policyTypes {types}, not Ingress and Egress")
    if spec.get("ingress"):
        out.append(f"{where}: has {len(spec['ingress'])} ingress rule(s): all ingress must be "
                   "denied")
    class_spec, problem = inputs.class_of(sandbox)
    if problem:
        out.append(f"{where}: {problem}")
    for i, rule in enumerate(spec.get("egress") or []):
        out.extend(check_egress_rule(where, i, rule, sandbox, class_spec))
    unknown = set(spec) - {"podSelector", "policyTypes", "ingress", "egress"}
    if unknown:
        out.append(f"{where}: unexpected spec fields {sorted(unknown)}")
    return out


def check_baseline(pol):
    where = f"NetworkPolicy {meta(pol, 'namespace')}/{BASELINE}"
    spec = pol.get("spec") or {}
    out = []
    if spec.get("podSelector") != BASELINE_SELECTOR:
        out.append(f"{where}: podSelector {spec.get('podSelector')} is not "
                   f"'{SANDBOX_LABEL} Exists'")
    if sorted(spec.get("policyTypes") or []) != ["Egress", "Ingress"]:
        out.append(f"{where}: policyTypes {spec.get('policyTypes')}, not Ingress and Egress")
    for kind in ("ingress", "egress"):
        if spec.get(kind):
            out.append(f"{where}: has {kind} rules {spec[kind]}: the baseline denies everything")
    unknown = set(spec) - {"podSelector", "policyTypes", "ingress", "egress"}
    if unknown:
        out.append(f"{where}: unexpected spec fields {sorted(unknown)}")
    return out


def check(policies, sandboxes, classes=(), pods=None):
    """Every finding, as one string each; [] when all holds."""
    inputs = Inputs(policies, sandboxes, classes, pods)
    out = []
    namespaces = {ns for ns, _ in inputs.sandboxes}
    namespaces |= {meta(p, "namespace") for p in inputs.policies
                   if labels(p).get(MANAGED_BY) == "kage"}
    if inputs.pods is not None:
        namespaces |= {meta(p, "namespace") for p in inputs.pods if SANDBOX_LABEL in labels(p)}
    by_ns = {}
    for p in inputs.policies:
        by_ns.setdefault(meta(p, "namespace"), []).append(p)

    for ns in sorted(namespaces):
        pols = by_ns.get(ns, [])
        kage_pols = {meta(p, "name"): p for p in pols if labels(p).get(MANAGED_BY) == "kage"}
        baseline = kage_pols.get(BASELINE)
        if baseline is None:
            out.append(f"namespace {ns}: no {BASELINE} NetworkPolicy")
        else:
            out.extend(check_baseline(baseline))
        for name, pol in sorted(kage_pols.items()):
            if name != BASELINE:
                out.extend(check_sandbox_policy(pol, inputs))
        # A pod of a sandbox runs only under its own policy.
        for pod, pod_labels in sorted(inputs.sandbox_pod_labels(ns).items()):
            if inputs.pods is not None and pod_labels.get(SANDBOX_LABEL) not in kage_pols:
                out.append(f"pod {ns}/{pod}: runs without its NetworkPolicy "
                           f"{pod_labels.get(SANDBOX_LABEL)}")
        # Policies add up: another policy that selects a sandbox pod and
        # allows something widens it.
        for p in pols:
            if labels(p).get(MANAGED_BY) == "kage":
                continue
            spec = p.get("spec") or {}
            opens = [k for k in ("ingress", "egress") if spec.get(k)]
            hit = sorted(pod for pod, pl in inputs.sandbox_pod_labels(ns).items()
                         if match_selector(spec.get("podSelector"), pl))
            if opens and hit:
                out.append(f"NetworkPolicy {ns}/{meta(p, 'name')}: not kage's, selects "
                           f"sandbox pod(s) {hit} and allows {' and '.join(opens)}")
    return out


# ---- self-test -----------------------------------------------------------------

def _sandbox(name, egress=None, cls=None, ns="team-a"):
    spec = {"image": "busybox"}
    if egress is not None:
        spec["egress"] = egress
    if cls:
        spec["sandboxClassName"] = cls
    return {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}, "spec": spec}


def _policy(name, egress, ns="team-a"):
    spec = {"podSelector": {"matchLabels": {SANDBOX_LABEL: name}},
            "policyTypes": ["Ingress", "Egress"]}
    if egress:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {SANDBOX_LABEL: name, MANAGED_BY: "kage"},
                         "ownerReferences": [{"apiVersion": "kage.dev/v1alpha1",
                                              "kind": "Sandbox", "name": name,
                                              "uid": f"uid-{name}", "controller": True}]},
            "spec": spec}


def _baseline(ns="team-a"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": BASELINE, "namespace": ns,
                         "labels": {MANAGED_BY: "kage", "kage.dev/baseline": "true"}},
            "spec": {"podSelector": copy.deepcopy(BASELINE_SELECTOR),
                     "policyTypes": ["Ingress", "Egress"]}}


DNS_RULE = {"to": [copy.deepcopy(DNS_PEER)],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def _world():
    """A correct picture: two sandboxes, one under a class with denied ranges."""
    cls = {"apiVersion": "kage.dev/v1alpha1", "kind": "SandboxClass",
           "metadata": {"name": "guarded"},
           "spec": {"egress": {"deniedCIDRs": ["169.254.0.0/16", "10.96.0.0/12"],
                               "allowedCIDRs": ["0.0.0.0/0", "::/0"]}}}
    sandboxes = [
        _sandbox("web", {"allow": [
            {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32"],
             "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8000, "endPort": 8100,
                                                          "protocol": "TCP"}]}]}),
        _sandbox("wide", {"dns": False, "allow": [
            {"cidr": "0.0.0.0/0", "ports": [{"port": 443, "protocol": "TCP"}]},
            {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]}, cls="guarded"),
    ]
    policies = [
        _baseline(),
        _policy("web", [copy.deepcopy(DNS_RULE), {
            "to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32"]}}],
            "ports": [{"protocol": "TCP", "port": 443},
                      {"protocol": "TCP", "port": 8000, "endPort": 8100}]}]),
        _policy("wide", [
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                 "except": ["169.254.0.0/16", "10.96.0.0/12"]}}],
             "ports": [{"protocol": "TCP", "port": 443}]},
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                 "except": ["10.1.0.0/16", "10.96.0.0/12"]}}]}]),
    ]
    pods = [{"metadata": {"name": n, "namespace": "team-a",
                          "labels": {SANDBOX_LABEL: n, MANAGED_BY: "kage"}}}
            for n in ("web", "wide")]
    return {"policies": policies, "sandboxes": sandboxes, "classes": [cls], "pods": pods}


def _pol(w, name):
    return next(p for p in w["policies"] if meta(p, "name") == name)


def _rule(w, name, i):
    return _pol(w, name)["spec"]["egress"][i]


# (id, how to spoil the correct picture, a piece of the finding it must produce)
HOSTILE = [
    ("ingress-rule", lambda w: _pol(w, "web")["spec"].__setitem__(
        "ingress", [{"from": [{"podSelector": {}}]}]), "ingress rule(s)"),
    ("ingress-type-missing", lambda w: _pol(w, "web")["spec"].__setitem__(
        "policyTypes", ["Egress"]), "policyTypes ['Egress']"),
    ("egress-type-missing", lambda w: _pol(w, "web")["spec"].__setitem__(
        "policyTypes", ["Ingress"]), "policyTypes ['Ingress']"),
    ("selector-widened", lambda w: _pol(w, "web")["spec"].__setitem__("podSelector", {}),
     "podSelector {} is not exactly"),
    ("pod-selector-peer", lambda w: _rule(w, "web", 1)["to"].append({"podSelector": {}}),
     "opens in-cluster reach"),
    ("namespace-selector-peer", lambda w: _rule(w, "web", 1)["to"].append(
        {"namespaceSelector": {}}), "opens in-cluster reach"),
    ("ipblock-and-selector-in-one-peer", lambda w: _rule(w, "web", 1)["to"][0].__setitem__(
        "namespaceSelector", {"matchLabels": {"a": "b"}}), "opens in-cluster reach"),
    ("dns-rule-to-every-namespace", lambda w: _rule(w, "web", 0)["to"][0].pop(
        "namespaceSelector"), "opens in-cluster reach"),
    ("dns-rule-on-every-port", lambda w: _rule(w, "web", 0).pop("ports"),
     "opens in-cluster reach"),
    ("dns-rule-though-dns-false", lambda w: _pol(w, "wide")["spec"]["egress"].insert(
        0, copy.deepcopy(DNS_RULE)), "the DNS rule, though spec.egress.dns is false"),
    ("rule-without-to", lambda w: _rule(w, "web", 1).pop("to"),
     "the rule allows every destination"),
    ("cidr-widened", lambda w: _rule(w, "web", 1)["to"][0]["ipBlock"].__setitem__(
        "cidr", "203.0.112.0/23"), "is wider than any spec.egress.allow entry"),
    ("except-dropped", lambda w: _rule(w, "web", 1)["to"][0]["ipBlock"].pop("except"),
     "is wider than any spec.egress.allow entry"),
    ("port-added", lambda w: _rule(w, "web", 1)["ports"].append(
        {"protocol": "TCP", "port": 22}), "TCP/22"),
    ("port-range-widened", lambda w: _rule(w, "web", 1)["ports"][1].__setitem__(
        "endPort", 9000), "is wider than any spec.egress.allow entry"),
    ("protocol-changed", lambda w: _rule(w, "web", 1)["ports"][0].__setitem__(
        "protocol", "UDP"), "UDP/443"),
    ("ports-dropped", lambda w: _rule(w, "web", 1).pop("ports"), "on every port"),
    ("unasked-rule", lambda w: _pol(w, "web")["spec"]["egress"].append(
        {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}),
        "is wider than any spec.egress.allow entry"),
    ("denied-range-not-carved", lambda w: _rule(w, "wide", 0)["to"][0]["ipBlock"].__setitem__(
        "except", ["10.96.0.0/12"]), "does not carve out 169.254.0.0/16"),
    ("denied-range-half-carved", lambda w: _rule(w, "wide", 1)["to"][0]["ipBlock"].__setitem__(
        "except", ["10.1.0.0/16", "10.96.0.0/13"]), "does not carve out 10.96.0.0/12"),
    ("inside-a-denied-range", lambda w: (
        w["sandboxes"][1]["spec"]["egress"]["allow"].append({"cidr": "169.254.169.254/32"}),
        _pol(w, "wide")["spec"]["egress"].append(
            {"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]})),
     "lies inside 169.254.0.0/16, which the class denies"),
    ("outside-the-ceiling", lambda w: w["classes"][0]["spec"]["egress"].__setitem__(
        "allowedCIDRs", ["203.0.113.0/24"]), "outside the class's allowedCIDRs"),
    ("baseline-missing", lambda w: w["policies"].remove(_pol(w, BASELINE)),
     "no kage-baseline NetworkPolicy"),
    ("baseline-allows-egress", lambda w: _pol(w, BASELINE)["spec"].__setitem__(
        "egress", [{}]), "the baseline denies everything"),
    ("baseline-narrowed", lambda w: _pol(w, BASELINE)["spec"]["podSelector"].__setitem__(
        "matchLabels", {"team": "a"}), "is not 'kage.dev/sandbox Exists'"),
    ("baseline-ingress-only", lambda w: _pol(w, BASELINE)["spec"].__setitem__(
        "policyTypes", ["Ingress"]), "not Ingress and Egress"),
    ("policy-missing-for-a-pod", lambda w: w["policies"].remove(_pol(w, "web")),
     "pod team-a/web: runs without its NetworkPolicy web"),
    ("foreign-policy-opens-ingress", lambda w: w["policies"].append({
        "metadata": {"name": "allow-all", "namespace": "team-a"},
        "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}),
        "not kage's, selects sandbox pod(s) ['web', 'wide'] and allows ingress"),
    ("forged-kage-policy", lambda w: w["policies"].append({
        "metadata": {"name": "sneaky", "namespace": "team-a",
                     "labels": {MANAGED_BY: "kage", SANDBOX_LABEL: "web"}},
        "spec": {"podSelector": {"matchLabels": {SANDBOX_LABEL: "web"}},
                 "policyTypes": ["Ingress", "Egress"], "egress": [{}]}}),
        "labelled as kage's, but not the policy of one Sandbox"),
    ("owned-by-an-older-sandbox", lambda w: _pol(w, "web")["metadata"]["ownerReferences"][0]
     .__setitem__("uid", "uid-old"), "owned by another Sandbox of that name"),
]


def self_test():
    failures = []
    clean = check(**_world())
    if clean:
        failures.append(f"the correct picture has findings: {clean}")
    for name, spoil, want in HOSTILE:
        w = _world()
        spoil(w)
        found = check(**w)
        if not any(want in f for f in found):
            failures.append(f"hostile {name}: expected a finding with {want!r}, got {found}")
    # Without the pods, the sandboxes' own labels stand in for them.
    w = _world()
    w.pop("pods")
    if check(**w):
        failures.append(f"without pods: unexpected findings {check(**w)}")
    for f in failures:
        print(f"self-test FAILED: {f}")
    total = len(HOSTILE) + 2
    print(f"check_policies self-test: {total - len(failures)}/{total} passed "
          f"({len(HOSTILE)} hostile policies, 2 correct pictures)")
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if not 3 <= len(argv) <= 5:
        print(__doc__, file=sys.stderr)
        return 2
    loaded = []
    for path in argv[1:]:
        with open(path) as f:
            loaded.append(json.load(f))
    findings = check(*loaded)
    for f in findings:
        print(f)
    print(f"check_policies: {len(items(loaded[0]))} policies, {len(items(loaded[1]))} "
          f"sandboxes: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
