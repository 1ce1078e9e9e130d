# SPDX-License-Identifier: Apache-2.0
"""Installing kage as a platform team does: `kubectl apply -k manifests/`
is accepted whole (the Deployment's pods pass Pod Security "restricted"),
the controller's ServiceAccount can do exactly what it needs and nothing
more, and namespace users get Sandboxes through the built-in roles."""

from conftest import REPO, wait_for

SA = "system:serviceaccount:kage-system:kage-controller"

# What every authenticated identity may do (system:basic-user and the
# discovery roles), then kage's own rules.
COMMON = {
    ("selfsubjectreviews.authentication.k8s.io", "", "create"),
    ("selfsubjectaccessreviews.authorization.k8s.io", "", "create"),
    ("selfsubjectrulesreviews.authorization.k8s.io", "", "create"),
}
KAGE = {
    ("events.events.k8s.io", "", "create"),
    ("pods", "", "get list watch create delete"),
    ("networkpolicies.networking.k8s.io", "", "get list watch create update"),
    ("sandboxes.kage.dev", "", "get list watch delete"),
    ("sandboxes.kage.dev/status", "", "patch"),
    ("sandboxclasses.kage.dev", "", "get list watch"),
    ("namespaces", "", "get list watch"),
}
LEASE = {
    ("leases.coordination.k8s.io", "", "create"),
    ("leases.coordination.k8s.io", "kage-controller", "get update patch"),
}


def resource_rules(kubectl, namespace):
    """The (resource, resourceNames, verbs) rows of `kubectl auth can-i --list`."""
    out = kubectl.run("auth", "can-i", "--list", f"--as={SA}", "-n", namespace).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        if line.startswith(" "):
            continue  # a non-resource URL row (discovery, /healthz...)
        resource, rest = line.split(None, 1)
        # "[]   [names]   [verbs]" after the resource, non-resource column empty
        cols = [c.strip("[]") for c in rest.split("]") if c.strip()]
        names, verbs = cols[-2].strip("[ "), cols[-1].strip("[ ")
        rows.add((resource, names, verbs))
    return rows


def test_the_controller_may_do_exactly_what_it_needs(kubectl, kage, namespace):
    assert resource_rules(kubectl, "kage-system") == COMMON | KAGE | LEASE
    assert resource_rules(kubectl, namespace) == COMMON | KAGE


def test_the_controller_cannot_read_secrets_exec_or_escalate(kubectl, kage, namespace):
    for args in (["get", "secrets"], ["create", "pods", "--subresource=exec"],
                 ["create", "pods", "--subresource=attach"], ["get", "nodes"],
                 ["escalate", "clusterroles"], ["bind", "clusterroles"],
                 ["impersonate", "users"], ["impersonate", "serviceaccounts"], ["patch", "pods"],
                 ["update", "sandboxes.kage.dev"], ["delete", "networkpolicies"],
                 ["update", "leases"], ["create", "clusterrolebindings"]):
        proc = kubectl.run("auth", "can-i", *args, f"--as={SA}", "-n", namespace, check=False)
        assert proc.stdout.strip() == "no", f"{args}: {proc.stdout.strip()}"


def test_namespace_users_get_sandboxes_through_the_built_in_roles(kubectl, kage, namespace):
    kubectl.run("-n", namespace, "create", "rolebinding", "dev-edit", "--clusterrole=edit",
                "--user=dev")
    kubectl.run("-n", namespace, "create", "rolebinding", "auditor-view", "--clusterrole=view",
                "--user=auditor")

    def can(user, verb, resource, *extra):
        return kubectl.run("auth", "can-i", verb, resource, *extra, f"--as={user}", "-n",
                           namespace, check=False).stdout.strip()
    wait_for(lambda: can("dev", "create", "sandboxes.kage.dev") == "yes", timeout=30,
             what="aggregation into edit")
    assert can("dev", "delete", "sandboxes.kage.dev") == "yes"
    assert can("dev", "patch", "sandboxes.kage.dev", "--subresource=status") == "no"
    assert can("auditor", "list", "sandboxes.kage.dev") == "yes"
    assert can("auditor", "create", "sandboxes.kage.dev") == "no"


def test_the_manifests_apply_with_kustomize_and_the_pods_are_admitted(kubectl, kage):
    out = kubectl.run("apply", "-k", str(REPO / "manifests")).stdout
    for obj in ("namespace/kage-system", "customresourcedefinition.apiextensions.k8s.io/"
                "sandboxes.kage.dev", "serviceaccount/kage-controller",
                "clusterrole.rbac.authorization.k8s.io/kage-controller",
                "deployment.apps/kage-controller", "service/kage-controller-metrics",
                "poddisruptionbudget.policy/kage-controller",
                "networkpolicy.networking.k8s.io/kage-controller"):
        assert obj in out, out
    try:
        # kwok plays the kubelet, so the replicas are "Running" without a
        # container; what matters is that Pod Security admitted them.
        kubectl.run("-n", "kage-system", "rollout", "status", "deployment/kage-controller",
                    "--timeout=90s")
        pods = kubectl.json("-n", "kage-system", "get", "pods", "-l",
                            "app.kubernetes.io/name=kage")["items"]
        assert len(pods) == 2
        ns = kubectl.json("get", "namespace", "kage-system")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        c = pods[0]["spec"]["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        # --gate-image is the container's own image: the policy gate.
        assert c["args"] == [f"--gate-image={c['image']}", "--leader-elect",
                             "--http-addr=0.0.0.0:8081",
                             "--probe-addr=0.0.0.0:8082", "--default-runtime-class=kata-fc"]
        # The kubelet's probes use a port that no Service exposes and the
        # NetworkPolicy admits no one to; /metrics only from labelled namespaces.
        assert c["livenessProbe"]["httpGet"]["port"] == "probes"
        assert c["readinessProbe"]["httpGet"]["port"] == "probes"
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8081, "probes": 8082}
        svc = kubectl.json("-n", "kage-system", "get", "service", "kage-controller-metrics")
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(8081, "http")]
        pol = kubectl.json("-n", "kage-system", "get", "networkpolicy", "kage-controller")
        selector = {"app.kubernetes.io/name": "kage", "app.kubernetes.io/component": "controller"}
        assert pol["spec"]["podSelector"] == {"matchLabels": selector}
        assert all(p["metadata"]["labels"].get(k) == v for p in pods for k, v in selector.items())
        assert pol["spec"]["policyTypes"] == ["Ingress"]
        assert pol["spec"]["ingress"] == [{
            "from": [{"namespaceSelector": {"matchLabels": {"kage.dev/metrics-scraper": "true"}}}],
            "ports": [{"port": "http", "protocol": "TCP"}]}]
    finally:
        kubectl.run("-n", "kage-system", "delete", "deployment", "kage-controller",
                    "--ignore-not-found")
