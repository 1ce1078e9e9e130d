#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Static RBAC check: reads every YAML document under rbac/ and manifests/
(kustomization files excluded) and fails on any grant that would let the
controller, or a namespace user through the roles kage aggregates, reach
further than kage needs. No cluster is needed.

    check_rbac.py              the repository's rbac/ and manifests/
    check_rbac.py PATH...      other files or folders (no pinned objects)
    check_rbac.py --self-test  hostile snippets the check must flag

Each finding names the file, the object and the rule index; the exit code
is 1 when there is any. The controller's ClusterRole, its leader-election
Role and their bindings are also compared with the lists pinned below, so
widening them is a deliberate edit of this file, not an accident."""

import copy
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOTS = ("rbac", "manifests")
KUSTOMIZATION_FILES = {"kustomization.yaml", "kustomization.yml", "Kustomization"}

ROLE_KINDS = {"Role", "ClusterRole"}
BINDING_KINDS = {"RoleBinding", "ClusterRoleBinding"}

# Resources no kage rule may touch, whatever the verb or API group: each
# is a credential, a way into a running pod, or a node.
FORBIDDEN_RESOURCES = {
    "secrets": "secrets hold other tenants' credentials",
    "pods/exec": "pods/exec runs commands inside sandboxes",
    "pods/attach": "pods/attach reaches into a running sandbox",
    "pods/portforward": "pods/portforward opens a tunnel into a sandbox past its NetworkPolicy",
    "pods/proxy": "pods/proxy reaches a sandbox past its NetworkPolicy",
    # Not in the brief's list, same power: an ephemeral container is exec.
    "pods/ephemeralcontainers":
        "pods/ephemeralcontainers adds a debug container (exec by another name)",
    "services/proxy": "services/proxy reaches pods past their NetworkPolicies",
    "serviceaccounts/token": "serviceaccounts/token mints tokens for any ServiceAccount",
}
# Every subresource of these too.
FORBIDDEN_PREFIXES = {
    "nodes": "nodes (and nodes/proxy, nodes/status...) reach the kubelet and the hosts",
    "certificatesigningrequests": "certificatesigningrequests can mint cluster credentials",
}
FORBIDDEN_VERBS = {
    "escalate": "escalate grants permissions the holder does not have",
    "bind": "bind grants any role to anyone",
    "impersonate": "impersonate acts as any user, group or ServiceAccount",
}
# Writing these rewrites who may do what, or what the API server admits.
GUARDED_RESOURCES = {
    "roles", "rolebindings", "clusterroles", "clusterrolebindings",
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "customresourcedefinitions",
    # The in-process admission counterparts of webhooks (not in the brief).
    "validatingadmissionpolicies", "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}

# Built-in roles and groups that no kage binding may use.
POWERFUL_ROLES = {"cluster-admin", "admin", "edit"}
BROAD_GROUPS = {"system:authenticated", "system:unauthenticated", "system:serviceaccounts",
                "system:masters", "system:nodes"}
BROAD_USERS = {"system:anonymous"}
AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-"
KAGE_GROUP = "kage.dev"

CONTROLLER_SA = {"kind": "ServiceAccount", "name": "kage-controller", "namespace": "kage-system"}

# What the controller may do, exactly (rbac/cluster-role.yaml and
# rbac/leader-election-role.yaml). Changing either file without changing
# this list fails the check: widen on purpose, in review, or not at all.
EXPECTED_RULES = {
    ("ClusterRole", "", "kage-controller"): [
        {"apiGroups": ["kage.dev"], "resources": ["sandboxes"],
         "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": ["kage.dev"], "resources": ["sandboxclasses"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["kage.dev"], "resources": ["sandboxes/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"],
         "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
         "verbs": ["get", "list", "watch", "create", "update"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ],
    ("Role", "kage-system", "kage-leader-election"): [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": ["kage-controller"], "verbs": ["get", "update", "patch"]},
    ],
}
EXPECTED_BINDINGS = {
    ("ClusterRoleBinding", "", "kage-controller"): {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kage-controller"},
        "subjects": [CONTROLLER_SA],
    },
    ("RoleBinding", "kage-system", "kage-leader-election"): {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "kage-leader-election"},
        "subjects": [CONTROLLER_SA],
    },
}


class Doc:
    """One YAML document: where it came from and what it holds."""

    def __init__(self, source, index, obj):
        self.source, self.index, self.obj = source, index, obj

    @property
    def kind(self):
        return self.obj.get("kind", "")

    @property
    def name(self):
        return (self.obj.get("metadata") or {}).get("name", "")

    @property
    def namespace(self):
        return (self.obj.get("metadata") or {}).get("namespace", "") or ""

    def key(self):
        return (self.kind, self.namespace, self.name)

    def where(self, rule=None):
        doc = f"#{self.index}" if self.index else ""
        ident = f"{self.kind}/{self.name}" if self.name else self.kind or "document"
        if self.namespace:
            ident = f"{self.kind}/{self.namespace}/{self.name}"
        at = f" rules[{rule}]" if rule is not None else ""
        return f"{self.source}{doc}: {ident}{at}"


def relative(path):
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def yaml_files(roots):
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml") and \
                    path.name not in KUSTOMIZATION_FILES:
                yield path


def load_text(text, source):
    """The documents of one YAML text (List objects expanded), and any
    parse error as a finding."""
    docs, findings = [], []
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        return [], [f"{source}: not valid YAML: {e}"]
    for i, obj in enumerate(loaded):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            findings.append(f"{source}#{i}: a document that is not a mapping")
            continue
        if obj.get("kind") == "Kustomization":
            continue
        if obj.get("kind", "").endswith("List") and isinstance(obj.get("items"), list):
            docs.extend(Doc(f"{source}#{i}.items", j, item)
                        for j, item in enumerate(obj["items"]) if isinstance(item, dict))
            continue
        docs.append(Doc(source, i, obj))
    return docs, findings


def load(roots):
    docs, findings = [], []
    for path in yaml_files(roots):
        d, f = load_text(path.read_text(), relative(path))
        docs.extend(d)
        findings.extend(f)
    return docs, findings


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def rule_findings(rule, kind):
    """What is wrong with one PolicyRule of a Role or ClusterRole."""
    out = []
    if not isinstance(rule, dict):
        return ["is not a mapping"]
    for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
        for value in as_list(rule.get(field)):
            if not isinstance(value, str):
                out.append(f"{field} holds a non-string {value!r}")
            elif "*" in value:
                out.append(f"wildcard {value!r} in {field}")
    resources = [r for r in as_list(rule.get("resources")) if isinstance(r, str)]
    verbs = {v for v in as_list(rule.get("verbs")) if isinstance(v, str)}
    for res in resources:
        base = res.split("/", 1)[0]
        if res in FORBIDDEN_RESOURCES:
            out.append(f"touches {res}: {FORBIDDEN_RESOURCES[res]}")
        elif base == "secrets":
            out.append(f"touches {res}: {FORBIDDEN_RESOURCES['secrets']}")
        elif base in FORBIDDEN_PREFIXES:
            out.append(f"touches {res}: {FORBIDDEN_PREFIXES[base]}")
        if base in GUARDED_RESOURCES and verbs & WRITE_VERBS:
            out.append(f"{kind} may {'/'.join(sorted(verbs & WRITE_VERBS))} {res}: "
                       "writing it changes who may do what, or what the API server admits")
    for verb in sorted(verbs & set(FORBIDDEN_VERBS)):
        out.append(f"verb {verb}: {FORBIDDEN_VERBS[verb]}")
    return out


def role_findings(doc):
    out = []
    rules = doc.obj.get("rules")
    if doc.obj.get("aggregationRule") is not None:
        out.append(f"{doc.where()}: has an aggregationRule: its rules come from every "
                   "ClusterRole its selectors match and cannot be checked here")
    if rules is not None and not isinstance(rules, list):
        return out + [f"{doc.where()}: rules is not a list"]
    labels = (doc.obj.get("metadata") or {}).get("labels") or {}
    aggregated = sorted(k[len(AGGREGATE_LABEL):] for k, v in labels.items()
                        if k.startswith(AGGREGATE_LABEL) and str(v) == "true")
    for i, rule in enumerate(rules or []):
        for f in rule_findings(rule, doc.kind):
            out.append(f"{doc.where(i)}: {f}")
        # What aggregates into admin/edit/view reaches every namespace
        # user: it may only be about kage's own API.
        if aggregated and isinstance(rule, dict):
            groups = as_list(rule.get("apiGroups"))
            if groups != [KAGE_GROUP] or rule.get("nonResourceURLs"):
                out.append(f"{doc.where(i)}: aggregates into {', '.join(aggregated)} but "
                           f"grants apiGroups {groups}: only {KAGE_GROUP} belongs there")
    return out


def subject_is(subject, want):
    return isinstance(subject, dict) and all(subject.get(k) == v for k, v in want.items())


def binding_findings(doc):
    out = []
    ref = doc.obj.get("roleRef") or {}
    name = ref.get("name", "")
    if name in POWERFUL_ROLES or name.startswith("system:"):
        out.append(f"{doc.where()}: binds the built-in {ref.get('kind')} {name}")
    for i, s in enumerate(as_list(doc.obj.get("subjects"))):
        if not isinstance(s, dict):
            out.append(f"{doc.where()} subjects[{i}]: not a mapping")
            continue
        sname = s.get("name", "")
        if s.get("kind") == "Group" and (sname in BROAD_GROUPS or
                                        sname.startswith("system:serviceaccounts")):
            out.append(f"{doc.where()} subjects[{i}]: binds the group {sname}")
        if s.get("kind") == "User" and sname in BROAD_USERS:
            out.append(f"{doc.where()} subjects[{i}]: binds the user {sname}")
    return out


def normalized(rules):
    """Rules as sorted JSON strings, each with its lists sorted: the
    comparison ignores order but nothing else."""
    out = []
    for rule in rules or []:
        if isinstance(rule, dict):
            rule = {k: sorted(v) if isinstance(v, list) and all(isinstance(x, str) for x in v)
                    else v for k, v in rule.items()}
        out.append(json.dumps(rule, sort_keys=True))
    return sorted(out)


def pinned_findings(docs):
    """The controller's roles and bindings are exactly the pinned ones, and
    nothing else binds its ServiceAccount."""
    out = []
    by_key = {}
    for d in docs:
        by_key.setdefault(d.key(), []).append(d)
    for key, want in EXPECTED_RULES.items():
        found = by_key.get(key, [])
        label = f"{key[0]}/{key[1] + '/' if key[1] else ''}{key[2]}"
        if len(found) != 1:
            out.append(f"{label}: expected exactly one definition, found {len(found)}")
            continue
        doc = found[0]
        have, expect = normalized(doc.obj.get("rules")), normalized(want)
        if have != expect:
            extra = [r for r in have if r not in expect]
            missing = [r for r in expect if r not in have]
            out.append(f"{doc.where()}: rules differ from the list pinned in "
                       f"tests/security/check_rbac.py; not pinned: {extra}; "
                       f"pinned but absent: {missing}")
    for key, want in EXPECTED_BINDINGS.items():
        found = by_key.get(key, [])
        label = f"{key[0]}/{key[1] + '/' if key[1] else ''}{key[2]}"
        if len(found) != 1:
            out.append(f"{label}: expected exactly one definition, found {len(found)}")
            continue
        doc = found[0]
        for field in ("roleRef", "subjects"):
            if doc.obj.get(field) != want[field]:
                out.append(f"{doc.where()}: {field} is {doc.obj.get(field)!r}, "
                           f"pinned {want[field]!r}")
    for d in docs:
        if d.kind in BINDING_KINDS and d.key() not in EXPECTED_BINDINGS and \
                any(subject_is(s, {"kind": "ServiceAccount", "name": CONTROLLER_SA["name"]})
                    for s in as_list(d.obj.get("subjects"))):
            out.append(f"{d.where()}: binds the controller's ServiceAccount outside the "
                       "pinned bindings")
    return out


def check(docs, pinned=True):
    findings = []
    for d in docs:
        if d.kind in ROLE_KINDS:
            findings.extend(role_findings(d))
        elif d.kind in BINDING_KINDS:
            findings.extend(binding_findings(d))
    if pinned:
        findings.extend(pinned_findings(docs))
    return findings


# ---- self-test -----------------------------------------------------------------

ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hostile}
rules:
"""

# (id, YAML, a piece of the finding it must produce)
HOSTILE = [
    ("wildcard-verbs", ROLE + "  - {apiGroups: [''], resources: [pods], verbs: ['*']}",
     "wildcard '*' in verbs"),
    ("wildcard-resources", ROLE + "  - {apiGroups: [kage.dev], resources: ['*'], verbs: [get]}",
     "wildcard '*' in resources"),
    ("wildcard-group", ROLE + "  - {apiGroups: ['*'], resources: [sandboxes], verbs: [get]}",
     "wildcard '*' in apiGroups"),
    ("wildcard-subresources", ROLE + "  - {apiGroups: [''], resources: ['pods/*'], verbs: [get]}",
     "wildcard 'pods/*' in resources"),
    ("wildcard-names", ROLE + "  - {apiGroups: [''], resources: [pods], resourceNames: ['*'], "
     "verbs: [get]}", "wildcard '*' in resourceNames"),
    ("read-secrets", ROLE + "  - {apiGroups: [''], resources: [secrets], verbs: [get]}",
     "touches secrets"),
    ("list-secrets-among-others", ROLE +
     "  - {apiGroups: [''], resources: [pods, configmaps, secrets], verbs: [list, watch]}",
     "touches secrets"),
    ("exec", ROLE + "  - {apiGroups: [''], resources: [pods/exec], verbs: [create]}",
     "touches pods/exec"),
    ("attach", ROLE + "  - {apiGroups: [''], resources: [pods/attach], verbs: [get]}",
     "touches pods/attach"),
    ("port-forward", ROLE + "  - {apiGroups: [''], resources: [pods/portforward], "
     "verbs: [create]}", "touches pods/portforward"),
    ("pod-proxy", ROLE + "  - {apiGroups: [''], resources: [pods/proxy], verbs: [get]}",
     "touches pods/proxy"),
    ("ephemeral-containers", ROLE + "  - {apiGroups: [''], resources: [pods/ephemeralcontainers], "
     "verbs: [patch]}", "touches pods/ephemeralcontainers"),
    ("nodes", ROLE + "  - {apiGroups: [''], resources: [nodes], verbs: [list]}", "touches nodes"),
    ("node-proxy", ROLE + "  - {apiGroups: [''], resources: [nodes/proxy], verbs: [get]}",
     "touches nodes/proxy"),
    ("token-request", ROLE + "  - {apiGroups: [''], resources: [serviceaccounts/token], "
     "verbs: [create]}", "touches serviceaccounts/token"),
    ("csr-approval", ROLE + "  - {apiGroups: [certificates.k8s.io], "
     "resources: [certificatesigningrequests/approval], verbs: [update]}",
     "touches certificatesigningrequests/approval"),
    ("escalate", ROLE + "  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], "
     "verbs: [escalate]}", "verb escalate"),
    ("bind", ROLE + "  - {apiGroups: [rbac.authorization.k8s.io], resources: [roles], "
     "verbs: [bind]}", "verb bind"),
    ("impersonate", ROLE + "  - {apiGroups: [''], resources: [serviceaccounts], "
     "verbs: [impersonate]}", "verb impersonate"),
    ("write-rolebindings", """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: hostile, namespace: team-a}
rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}""",
     "Role may create rolebindings"),
    ("patch-clusterroles", ROLE + "  - {apiGroups: [rbac.authorization.k8s.io], "
     "resources: [clusterroles], verbs: [get, patch]}", "ClusterRole may patch clusterroles"),
    ("delete-crds", ROLE + "  - {apiGroups: [apiextensions.k8s.io], "
     "resources: [customresourcedefinitions], verbs: [delete]}",
     "may delete customresourcedefinitions"),
    ("mutating-webhook", ROLE + "  - {apiGroups: [admissionregistration.k8s.io], "
     "resources: [mutatingwebhookconfigurations], verbs: [update]}",
     "may update mutatingwebhookconfigurations"),
    ("validating-webhook", ROLE + "  - {apiGroups: [admissionregistration.k8s.io], "
     "resources: [validatingwebhookconfigurations], verbs: [deletecollection]}",
     "may deletecollection validatingwebhookconfigurations"),
    ("aggregation", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: hostile}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {rbac.example.com/aggregate-to-hostile: "true"}}]
rules: []""", "has an aggregationRule"),
    ("aggregated-user-role-reaches-pods", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: hostile
  labels: {rbac.authorization.k8s.io/aggregate-to-edit: "true"}
rules:
  - {apiGroups: [kage.dev, ""], resources: [sandboxes, pods], verbs: [get]}""",
     "aggregates into edit"),
    ("bind-cluster-admin", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hostile}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: kage-controller, namespace: kage-system}]""",
     "binds the built-in ClusterRole cluster-admin"),
    ("bind-everyone", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hostile}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kage-controller}
subjects: [{kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}]""",
     "binds the group system:authenticated"),
]

BENIGN = [
    ("read-sandboxes", ROLE + "  - {apiGroups: [kage.dev], resources: [sandboxes], "
     "verbs: [get, list, watch]}"),
    ("read-roles", ROLE + "  - {apiGroups: [rbac.authorization.k8s.io], resources: [roles], "
     "verbs: [get, list]}"),
    ("user-role", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: benign
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules:
  - apiGroups: [kage.dev]
    resources: [sandboxes, sandboxes/status]
    verbs: [get, list, watch]"""),
    ("other-kinds", """apiVersion: v1
kind: ConfigMap
metadata: {name: secrets}
data: {verbs: "*"}"""),
]


def self_test():
    failures = []
    ran = 0
    for name, text, want in HOSTILE:
        ran += 1
        docs, parse = load_text(text, f"<{name}>")
        found = parse + check(docs, pinned=False)
        if not any(want in f for f in found):
            failures.append(f"hostile {name}: expected a finding with {want!r}, got {found}")
    for name, text in BENIGN:
        ran += 1
        docs, parse = load_text(text, f"<{name}>")
        found = parse + check(docs, pinned=False)
        if found:
            failures.append(f"benign {name}: unexpected findings {found}")
    ran += 2  # the broken YAML, then the repository itself
    if not any("not valid YAML" in f for f in load_text("a: [", "<broken>")[1]):
        failures.append("broken YAML was not reported")

    # The pins: the repository as it is passes; each widening fails.
    real, parse = load([REPO / r for r in DEFAULT_ROOTS])
    baseline = parse + check(real)
    if baseline:
        failures.append(f"the repository itself has findings: {baseline}")

    def mutated(change, want, what):
        nonlocal ran
        ran += 1
        docs = [Doc(d.source, d.index, copy.deepcopy(d.obj)) for d in real]
        change(docs)
        found = check(docs)
        if not any(want in f for f in found):
            failures.append(f"pin {what}: expected a finding with {want!r}, got {found}")

    def find(docs, kind, name):
        return next(d for d in docs if d.kind == kind and d.name == name)

    mutated(lambda docs: find(docs, "ClusterRole", "kage-controller").obj["rules"][3]["verbs"]
            .append("patch"), "rules differ from the list pinned", "one more verb on pods")
    mutated(lambda docs: find(docs, "ClusterRole", "kage-controller").obj["rules"].append(
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}),
        "rules differ from the list pinned", "a harmless-looking extra rule")
    mutated(lambda docs: find(docs, "Role", "kage-leader-election").obj["rules"][1]
            .pop("resourceNames"), "rules differ from the list pinned",
            "leases no longer limited by name")
    mutated(lambda docs: docs.remove(find(docs, "ClusterRole", "kage-controller")),
            "expected exactly one definition, found 0", "the ClusterRole removed")
    mutated(lambda docs: find(docs, "ClusterRoleBinding", "kage-controller").obj["subjects"]
            .append({"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}),
            "subjects is", "a second subject on the binding")
    mutated(lambda docs: docs.append(Doc("<extra>", 0, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "kage-controller-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"},
        "subjects": [CONTROLLER_SA]})), "outside the pinned bindings",
        "the controller bound to view by another binding")

    for f in failures:
        print(f"self-test FAILED: {f}")
    print(f"check_rbac self-test: {ran - len(failures)}/{ran} passed ({len(HOSTILE)} hostile "
          f"snippets, {len(BENIGN)} benign, {ran - len(HOSTILE) - len(BENIGN) - 2} widened pins, "
          "broken YAML, the repository)")
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    roots = argv[1:] or [REPO / r for r in DEFAULT_ROOTS]
    docs, findings = load(roots)
    findings += check(docs, pinned=not argv[1:])
    for f in findings:
        print(f)
    names = ", ".join(str(relative(r)) for r in roots)
    print(f"check_rbac: {len(docs)} documents under {names}: "
          f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
