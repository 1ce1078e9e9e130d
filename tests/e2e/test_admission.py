# SPDX-License-Identifier: Apache-2.0
"""kage's admission policies (admission/) end to end: ValidatingAdmissionPolicies
on the real API server, installed by conftest's install_kage, with tenants
acting through `kubectl --as=<user>` (bound to the built-in `edit` role in
their namespace, which aggregates kage's Sandbox role, or to that narrow
role alone).

1. Only kage writes what isolates a sandbox: a tenant can neither write
   kage's NetworkPolicies nor one whose podSelector could select a sandbox
   pod, nor create, change, relabel or delete a sandbox pod; ordinary
   policies and pods stay theirs.
2. A Sandbox reads only the Secrets and ConfigMaps its author may read.
3. The controller's own token writes only hardened sandbox pods.
4. A Sandbox names only a SandboxClass granted to its namespace (an admin
   may, and the controller then says ClassNotAllowed).
5. What must keep working: exec, logs and status of sandbox pods; the
   garbage collector removing a deleted Sandbox's children; deleting a
   namespace with sandboxes; and kage itself, never refused by its own
   policies (checked over the whole session's controller log).

Every refusal is asserted whole, as kubectl prints it.
"""

import copy
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import REPO, Controller, Kubectl, free_port, install_kage, wait_for
from expected import API_VERSION, HARDENED_CONTAINER, RESTRICTED
from sandboxes import get

IMAGE = "busybox:1.36"
SA = "system:serviceaccount:kage-system:kage-controller"
TENANT = "alice"  # bound to edit in its namespace
NARROW = "bob"  # bound to kage's Sandbox role, and to reading a few names
CONVERGE = 20  # seconds for the garbage collector and the controller


# ---- helpers ---------------------------------------------------------------


class As(Kubectl):
    """The session's kubectl, impersonating user (the admin may)."""

    def __init__(self, kubectl, user):
        super().__init__(Path(kubectl.bin).parent, kubectl.kubeconfig)
        self.user = user

    def run(self, *args, **kw):
        return super().run(f"--as={self.user}", *args, **kw)


def denial(policy, resource, name, message, creating=False):
    """kubectl's line for a request a kage policy refused."""
    where = 'error when creating "STDIN": ' if creating else ""
    return (f"Error from server (Forbidden): {where}{resource} \"{name}\" is forbidden: "
            f"ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: "
            f"{message}")


def refused(proc):
    assert proc.returncode != 0, f"admitted: {proc.stdout.strip()}"
    return proc.stderr.strip()


def sandbox(ns, name, **spec):
    spec.setdefault("image", IMAGE)
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def secret_env(name, secret):
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}


def config_env(name, configmap):
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": configmap, "key": "mode"}}}


def wait_ready(kubectl, ns, name):
    proc = kubectl.run("-n", ns, "wait", "--for=condition=Ready", f"sandbox/{name}",
                       "--timeout=30s", check=False)
    sbx = get(kubectl, ns, "sandbox", name)
    assert proc.returncode == 0, f"{ns}/{name} not Ready: {(sbx or {}).get('status')}"
    return sbx


def policy(ns, name, selector, labels=None):
    """A NetworkPolicy that opens what it selects to all ingress."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": [{}]}}


def plain_pod(ns, name, labels=None):
    """A pod Pod Security "restricted" admits; not a sandbox unless labelled so."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "1d"],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


def can_i(kubectl, user, ns, verb, resource, *extra):
    return kubectl.run("auth", "can-i", verb, resource, *extra, f"--as={user}", "-n", ns,
                       check=False).stdout.strip()


def pod_message(user, verb, name):
    return (f'user "{user}" may not {verb} pod "{name}": only kage\'s controller writes pods '
            "labelled kage.dev/sandbox, or adds or removes that label")


def selects_message(user, verb, name):
    return (f'user "{user}" may not {verb} NetworkPolicy "{name}": its podSelector could select '
            "sandbox pods, and only kage's controller writes NetworkPolicies that do")


def kages_message(user, verb, name):
    return (f'user "{user}" may not {verb} NetworkPolicy "{name}": only kage\'s controller writes '
            "kage's own NetworkPolicies (kage-baseline and those labelled "
            "app.kubernetes.io/managed-by=kage)")


# ---- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def kage(kubectl, tmp_path_factory):
    """This module's own controller, as conftest's session one (the shipped
    RBAC, its own token) but stopped when the module ends. The session's
    starts with the first module that asks for it, and this one sorts
    first: it would then be running through test_client's API server
    restarts, where a server that is still syncing its RBAC cache answers
    403, and the session's end-of-run check takes that for an RBAC gap."""
    install_kage(kubectl)
    work = tmp_path_factory.mktemp("kage-admission")
    kc = work / "controller.kubeconfig"
    subprocess.run([str(REPO / "tests/cluster/sa-kubeconfig.sh"), "kage-system",
                    "kage-controller", str(kc), "1h"], check=True, capture_output=True, text=True)
    ctl = Controller(kc, work / "controller.log", "--http-addr", f"127.0.0.1:{free_port()}").start()
    ctl.wait_synced()
    wait_until_enforced(kubectl)
    yield ctl
    assert ctl.stop() == 0, f"controller log tail:\n{ctl.log()[-3000:]}"


def wait_until_enforced(kubectl):
    """The API server loads new policies a moment after they are written:
    waits until each of kage's refuses a probe (server-side dry runs)."""
    ns = f"adm-probe-{uuid.uuid4().hex[:8]}"
    kubectl.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        kubectl.run("-n", ns, "create", "rolebinding", "probe-edit", "--clusterrole=edit",
                    "--user=probe-editor")
        kubectl.run("-n", ns, "create", "rolebinding", "probe-narrow",
                    "--clusterrole=kage-sandbox-editor", "--user=probe-narrow")
        probes = {
            "kage-networkpolicies": ("probe-editor", policy(ns, "probe", {})),
            "kage-sandbox-pods": ("probe-editor", plain_pod(ns, "probe", {
                "kage.dev/sandbox": "probe"})),
            "kage-sandbox-references": ("probe-narrow", sandbox(ns, "probe", env=[
                secret_env("TOKEN", "probe")])),
            "kage-controller-pods": (SA, plain_pod(ns, "probe")),
        }
        for name, (user, obj) in probes.items():
            wait_for(lambda: f"ValidatingAdmissionPolicy '{name}'" in As(kubectl, user).create(
                obj, "--dry-run=server", check=False).stderr, timeout=60, interval=0.5,
                what=f"{name} to be enforced")
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def tenant_ns(kubectl, kage, make_namespace):
    """A restricted namespace where TENANT has edit (Sandboxes included)."""
    ns = make_namespace("adm", RESTRICTED)
    kubectl.run("-n", ns, "create", "rolebinding", "tenant-edit", "--clusterrole=edit",
                f"--user={TENANT}")
    wait_for(lambda: can_i(kubectl, TENANT, ns, "create", "sandboxes.kage.dev") == "yes",
             timeout=30, what="edit (with kage's Sandbox role) to reach the tenant")
    return ns


@pytest.fixture
def tenant(kubectl):
    return As(kubectl, TENANT)


@pytest.fixture
def sandbox_in(kubectl, tenant):
    """Makes a Ready Sandbox as the tenant; returns (Sandbox, pod, policy)."""

    def make(ns, name="agent"):
        tenant.create(sandbox(ns, name))
        sbx = wait_ready(kubectl, ns, name)
        return (sbx, kubectl.json("-n", ns, "get", "pod", name),
                kubectl.json("-n", ns, "get", "networkpolicy", name))

    return make


# ---- 1. only kage writes what isolates a sandbox ------------------------------


SELECTS_SANDBOX_PODS = {
    "empty": {},
    "sandbox-label": {"matchLabels": {"kage.dev/sandbox": "agent"}},
    "managed-by-kage": {"matchLabels": {"app.kubernetes.io/managed-by": "kage"}},
    "sandbox-exists": {"matchExpressions": [{"key": "kage.dev/sandbox", "operator": "Exists"}]},
    "sandbox-not-in": {"matchExpressions": [
        {"key": "kage.dev/sandbox", "operator": "NotIn", "values": ["other"]}]},
    "managed-by-in": {"matchExpressions": [
        {"key": "app.kubernetes.io/managed-by", "operator": "In", "values": ["helm", "kage"]}]},
    "managed-by-exists": {"matchExpressions": [
        {"key": "app.kubernetes.io/managed-by", "operator": "Exists"}]},
    "managed-by-not-helm": {"matchExpressions": [
        {"key": "app.kubernetes.io/managed-by", "operator": "NotIn", "values": ["helm"]}]},
    # Sandbox pods carry no app label, so these select every one of them.
    "other-label-absent": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
    "other-label-not-in": {"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["db"]}]},
    # Names a sandbox: kage's to write, even narrowed by another label.
    "sandbox-and-other": {"matchLabels": {"kage.dev/sandbox": "agent", "app": "web"}},
}

CANNOT_SELECT_SANDBOX_PODS = {
    "other-label": {"matchLabels": {"app": "web"}},
    "other-label-in": {"matchExpressions": [{"key": "tier", "operator": "In",
                                             "values": ["db"]}]},
    "no-sandbox-label": {"matchExpressions": [
        {"key": "kage.dev/sandbox", "operator": "DoesNotExist"}]},
    "managed-by-other": {"matchLabels": {"app.kubernetes.io/managed-by": "helm"}},
    "not-managed-by-kage": {"matchExpressions": [
        {"key": "app.kubernetes.io/managed-by", "operator": "NotIn", "values": ["kage"]}]},
}


@pytest.mark.parametrize("selector", SELECTS_SANDBOX_PODS.values(), ids=SELECTS_SANDBOX_PODS)
def test_a_tenant_cannot_write_a_networkpolicy_that_could_select_sandbox_pods(
        kubectl, tenant, tenant_ns, selector):
    proc = tenant.create(policy(tenant_ns, "open", selector), check=False)
    assert refused(proc) == denial("kage-networkpolicies", "networkpolicies.networking.k8s.io",
                                   "open", selects_message(TENANT, "create", "open"),
                                   creating=True)
    assert get(kubectl, tenant_ns, "networkpolicy", "open") is None


@pytest.mark.parametrize("selector", CANNOT_SELECT_SANDBOX_PODS.values(),
                         ids=CANNOT_SELECT_SANDBOX_PODS)
def test_a_tenant_may_write_a_networkpolicy_that_cannot_select_sandbox_pods(
        kubectl, tenant, tenant_ns, selector):
    tenant.create(policy(tenant_ns, "web", selector))
    tenant.run("-n", tenant_ns, "label", "networkpolicy", "web", "team=a")
    tenant.run("-n", tenant_ns, "delete", "networkpolicy", "web")
    assert get(kubectl, tenant_ns, "networkpolicy", "web") is None


def test_a_tenant_cannot_widen_a_policy_to_sandbox_pods_or_narrow_one_away(
        kubectl, tenant, tenant_ns):
    """The policy before and after the request both count."""
    tenant.create(policy(tenant_ns, "web", {"matchLabels": {"app": "web"}}))
    widen = ["-n", tenant_ns, "patch", "networkpolicy", "web", "--type=json", "-p",
             json.dumps([{"op": "remove", "path": "/spec/podSelector/matchLabels"}])]
    assert refused(tenant.run(*widen, check=False)) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "web",
        selects_message(TENANT, "update", "web"))

    # One an admin made to open sandboxes: the tenant cannot retarget it
    # (and so hide it) or delete it.
    kubectl.create(policy(tenant_ns, "admins", {}))
    narrow = ["-n", tenant_ns, "patch", "networkpolicy", "admins", "--type=merge", "-p",
              json.dumps({"spec": {"podSelector": {"matchLabels": {"app": "web"}}}})]
    assert refused(tenant.run(*narrow, check=False)) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "admins",
        selects_message(TENANT, "update", "admins"))
    assert refused(tenant.run("-n", tenant_ns, "delete", "networkpolicy", "admins",
                              check=False)) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "admins",
        selects_message(TENANT, "delete", "admins"))
    assert kubectl.json("-n", tenant_ns, "get", "networkpolicy", "admins")["spec"][
        "podSelector"] == {}


def test_a_tenant_cannot_change_relabel_or_delete_kages_networkpolicies(
        kubectl, tenant, tenant_ns, sandbox_in):
    _, _, own = sandbox_in(tenant_ns)
    base = kubectl.json("-n", tenant_ns, "get", "networkpolicy", "kage-baseline")

    def attempt(*args):
        return refused(tenant.run("-n", tenant_ns, *args, check=False))

    for name in ("agent", "kage-baseline"):
        def refusal(verb):
            return denial("kage-networkpolicies", "networkpolicies.networking.k8s.io", name,
                          kages_message(TENANT, verb, name))
        np = ("networkpolicy", name)
        assert attempt("label", *np, "app.kubernetes.io/managed-by-") == refusal("update")
        assert attempt("annotate", *np, "note=x") == refusal("update")
        assert attempt("patch", *np, "--type=merge", "-p", '{"spec":{"ingress":[{}]}}') == \
            refusal("update")
        assert attempt("delete", *np, "--wait=false") == refusal("delete")
    assert kubectl.json("-n", tenant_ns, "get", "networkpolicy", "agent")["metadata"] == \
        own["metadata"]
    assert kubectl.json("-n", tenant_ns, "get", "networkpolicy", "kage-baseline")["metadata"] == \
        base["metadata"]


def test_a_tenant_cannot_make_a_policy_pass_for_kages(kubectl, tenant, tenant_ns):
    """By name (kage-baseline, before kage makes it) or by kage's label."""
    harmless = {"matchLabels": {"app": "web"}}
    proc = tenant.create(policy(tenant_ns, "kage-baseline", harmless), check=False)
    assert refused(proc) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "kage-baseline",
        kages_message(TENANT, "create", "kage-baseline"), creating=True)
    proc = tenant.create(policy(tenant_ns, "web", harmless,
                                {"app.kubernetes.io/managed-by": "kage"}), check=False)
    assert refused(proc) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "web",
        kages_message(TENANT, "create", "web"), creating=True)
    tenant.create(policy(tenant_ns, "web", harmless))
    assert refused(tenant.run("-n", tenant_ns, "label", "networkpolicy", "web",
                              "app.kubernetes.io/managed-by=kage", check=False)) == denial(
        "kage-networkpolicies", "networkpolicies.networking.k8s.io", "web",
        kages_message(TENANT, "update", "web"))


def test_a_tenant_cannot_create_a_pod_labelled_as_a_sandbox(kubectl, tenant, tenant_ns):
    proc = tenant.create(plain_pod(tenant_ns, "fake", {"kage.dev/sandbox": "agent"}), check=False)
    assert refused(proc) == denial("kage-sandbox-pods", "pods", "fake",
                                   pod_message(TENANT, "create", "fake"), creating=True)
    assert get(kubectl, tenant_ns, "pod", "fake") is None


def test_a_tenant_cannot_label_its_own_pod_as_a_sandbox(kubectl, tenant, tenant_ns):
    tenant.create(plain_pod(tenant_ns, "web", {"app": "web"}))
    tenant.run("-n", tenant_ns, "label", "pod", "web", "tier=front")  # ordinary: theirs
    proc = tenant.run("-n", tenant_ns, "label", "pod", "web", "kage.dev/sandbox=agent",
                      check=False)
    assert refused(proc) == denial("kage-sandbox-pods", "pods", "web",
                                   pod_message(TENANT, "update", "web"))
    assert kubectl.json("-n", tenant_ns, "get", "pod", "web")["metadata"]["labels"] == \
        {"app": "web", "tier": "front"}
    tenant.run("-n", tenant_ns, "delete", "pod", "web", "--grace-period=0", "--force")


def test_a_tenant_cannot_change_relabel_or_delete_a_sandbox_pod(
        kubectl, tenant, tenant_ns, sandbox_in):
    _, pod, _ = sandbox_in(tenant_ns)
    update = denial("kage-sandbox-pods", "pods", "agent", pod_message(TENANT, "update", "agent"))
    for args in (["label", "pod", "agent", "kage.dev/sandbox-"],
                 ["label", "--overwrite", "pod", "agent", "kage.dev/sandbox=other"],
                 ["label", "pod", "agent", "app.kubernetes.io/managed-by-"],
                 ["label", "pod", "agent", "app=web"],
                 ["annotate", "pod", "agent", "note=x"],
                 ["patch", "pod", "agent", "--type=json", "-p", json.dumps(
                     [{"op": "replace", "path": "/spec/containers/0/image",
                       "value": "evil:latest"}])]):
        assert refused(tenant.run("-n", tenant_ns, *args, check=False)) == update, args
    assert refused(tenant.run("-n", tenant_ns, "delete", "pod", "agent", "--wait=false",
                              check=False)) == denial(
        "kage-sandbox-pods", "pods", "agent", pod_message(TENANT, "delete", "agent"))
    now = kubectl.json("-n", tenant_ns, "get", "pod", "agent")
    assert now["metadata"]["uid"] == pod["metadata"]["uid"]
    assert now["metadata"]["labels"] == pod["metadata"]["labels"]
    assert now["metadata"]["annotations"] == pod["metadata"]["annotations"]
    assert "deletionTimestamp" not in now["metadata"]


def test_a_tenants_deployment_gets_no_pod_labelled_as_a_sandbox(kubectl, tenant, tenant_ns):
    """The ReplicaSet controller writes the pods, and it is not exempt."""
    template = plain_pod(tenant_ns, "x", {"app": "web", "kage.dev/sandbox": "agent"})
    tenant.create({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": tenant_ns},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": template["metadata"]["labels"]},
                                         "spec": template["spec"]}}})

    def failure():
        for rs in kubectl.json("-n", tenant_ns, "get", "replicasets")["items"]:
            for c in rs.get("status", {}).get("conditions", []):
                if c["type"] == "ReplicaFailure":
                    return c["message"]
        return None
    message = wait_for(failure, timeout=CONVERGE, what="the ReplicaSet to report its refusal")
    rc = "system:serviceaccount:kube-system:replicaset-controller"
    name = message.split('"')[1]
    assert name.startswith("web-")
    assert message == (f'pods "{name}" is forbidden: ValidatingAdmissionPolicy '
                       "'kage-sandbox-pods' with binding 'kage-sandbox-pods' denied request: "
                       + pod_message(rc, "create", name))
    assert kubectl.json("-n", tenant_ns, "get", "pods", "-l", "app=web")["items"] == []


def test_exec_logs_and_status_of_a_sandbox_pod_stay_allowed(
        kubectl, tenant, tenant_ns, sandbox_in):
    """Subresources are not matched: the tenant may still exec into and read
    the logs of its sandbox (RBAC decides), and whoever writes pods/status
    (the kubelet, here a user given just that) is not held."""
    _, pod, _ = sandbox_in(tenant_ns)
    assert can_i(kubectl, TENANT, tenant_ns, "create", "pods", "--subresource=exec") == "yes"
    assert can_i(kubectl, TENANT, tenant_ns, "get", "pods", "--subresource=log") == "yes"
    assert can_i(kubectl, TENANT, tenant_ns, "update", "pods") == "yes"  # RBAC; admission holds

    kubectl.run("-n", tenant_ns, "create", "role", "status-writer", "--verb=get,patch",
                "--resource=pods/status")
    kubectl.run("-n", tenant_ns, "create", "rolebinding", "status-writer",
                "--role=status-writer", "--user=node-agent")
    wait_for(lambda: can_i(kubectl, "node-agent", tenant_ns, "patch", "pods",
                           "--subresource=status") == "yes", timeout=30, what="the Role")
    condition = {"type": "e2e.kage.dev/Checked", "status": "True"}
    As(kubectl, "node-agent").run("-n", tenant_ns, "patch", "pod", "agent", "--subresource=status",
                                  "-p", json.dumps({"status": {"conditions": [condition]}}))
    now = kubectl.json("-n", tenant_ns, "get", "pod", "agent")
    assert now["metadata"]["uid"] == pod["metadata"]["uid"]
    assert {"type": "e2e.kage.dev/Checked", "status": "True"} in [
        {k: c[k] for k in ("type", "status")} for c in now["status"]["conditions"]]


# ---- 2. references checked against the author's rights -----------------------------------


@pytest.fixture
def narrow_ns(kubectl, kage, make_namespace):
    """A namespace where NARROW may write Sandboxes (kage's role alone) and
    read the Secret "shared" and the ConfigMap "settings", nothing else."""
    ns = make_namespace("adm", RESTRICTED)
    kubectl.run("-n", ns, "create", "rolebinding", "narrow-sandboxes",
                "--clusterrole=kage-sandbox-editor", f"--user={NARROW}")
    kubectl.run("-n", ns, "create", "role", "reads-shared", "--verb=get",
                "--resource=secrets", "--resource-name=shared")
    kubectl.run("-n", ns, "create", "role", "reads-settings", "--verb=get",
                "--resource=configmaps", "--resource-name=settings")
    for role in ("reads-shared", "reads-settings"):
        kubectl.run("-n", ns, "create", "rolebinding", role, f"--role={role}", f"--user={NARROW}")
    wait_for(lambda: can_i(kubectl, NARROW, ns, "get", "configmaps/settings") == "yes",
             timeout=30, what="the Roles to reach the user")
    assert can_i(kubectl, NARROW, ns, "get", "secrets/creds") == "no"
    return ns


def test_a_sandbox_may_reference_only_secrets_and_configmaps_its_author_may_read(
        kubectl, narrow_ns):
    bob = As(kubectl, NARROW)
    env = [{"name": "FOO", "value": "bar"}, secret_env("SHARED", "shared"),
           secret_env("CREDS", "creds"), config_env("MODE", "settings"),
           config_env("OTHER", "other")]
    proc = bob.create(sandbox(narrow_ns, "reader", env=env), check=False)
    # The first reference refused is named.
    assert refused(proc) == denial(
        "kage-sandbox-references", "sandboxes.kage.dev", "reader",
        f'spec.env[2].valueFrom.secretKeyRef: user "{NARROW}" may not get secret "creds"',
        creating=True)
    proc = bob.create(sandbox(narrow_ns, "reader", env=env[:2] + env[3:]), check=False)
    assert refused(proc) == denial(
        "kage-sandbox-references", "sandboxes.kage.dev", "reader",
        f'spec.env[3].valueFrom.configMapKeyRef: user "{NARROW}" may not get configmap "other"',
        creating=True)
    assert get(kubectl, narrow_ns, "sandbox", "reader") is None

    # What it may read, it may reference; the controller (which reads no
    # Secret) then writes the status as usual.
    bob.create(sandbox(narrow_ns, "reader", env=env[:2] + env[3:4]))
    sbx = wait_ready(kubectl, narrow_ns, "reader")
    assert sbx["spec"]["env"] == env[:2] + env[3:4]


def test_changing_a_sandbox_that_reads_a_secret_needs_that_secret(kubectl, narrow_ns):
    """Every reference is checked again when the spec changes: a new image
    or command for a Sandbox that reads a Secret reads that Secret."""
    kubectl.create(sandbox(narrow_ns, "admins", env=[secret_env("CREDS", "creds")]))
    wait_ready(kubectl, narrow_ns, "admins")  # the controller's status writes are not held
    bob = As(kubectl, NARROW)
    proc = bob.run("-n", narrow_ns, "patch", "sandbox", "admins", "--type=merge", "-p",
                   json.dumps({"spec": {"image": "evil:latest"}}), check=False)
    assert refused(proc) == denial(
        "kage-sandbox-references", "sandboxes.kage.dev", "admins",
        f'spec.env[0].valueFrom.secretKeyRef: user "{NARROW}" may not get secret "creds"')
    # Metadata alone exposes nothing: not checked.
    bob.run("-n", narrow_ns, "label", "sandbox", "admins", "team=a")
    sbx = kubectl.json("-n", narrow_ns, "get", "sandbox", "admins")
    assert sbx["spec"]["image"] == IMAGE and sbx["metadata"]["labels"] == {"team": "a"}


def many_references(n):
    return [secret_env(f"S{i}", f"s{i}") for i in range(n)]


def test_a_narrow_author_may_reference_at_most_16_distinct_names(kubectl, narrow_ns):
    """Each name is an authorizer check of its own, and admission has a
    budget for 18 of them (admission/sandbox-references.yaml)."""
    names = [f"--resource-name=s{i}" for i in range(17)]
    kubectl.run("-n", narrow_ns, "create", "role", "reads-many", "--verb=get",
                "--resource=secrets", *names)
    kubectl.run("-n", narrow_ns, "create", "rolebinding", "reads-many", "--role=reads-many",
                f"--user={NARROW}")
    wait_for(lambda: can_i(kubectl, NARROW, narrow_ns, "get", "secrets/s16") == "yes",
             timeout=30, what="the Role to reach the user")
    bob = As(kubectl, NARROW)
    # The same name twice is one check.
    bob.create(sandbox(narrow_ns, "sixteen", paused=True,
                       env=many_references(16) + [secret_env("AGAIN", "s0")]))
    proc = bob.create(sandbox(narrow_ns, "seventeen", paused=True, env=many_references(17)),
                      check=False)
    assert refused(proc) == denial(
        "kage-sandbox-references", "sandboxes.kage.dev", "seventeen",
        f'spec.env: user "{NARROW}" may not get every Secret and ConfigMap of the namespace, so '
        "each reference is checked by name, and at most 16 distinct ones can be "
        "(this Sandbox has 17)", creating=True)


def test_a_tenant_with_edit_may_reference_the_secrets_of_its_namespace(
        kubectl, tenant, tenant_ns):
    kubectl.run("-n", tenant_ns, "create", "secret", "generic", "creds", "--from-literal=token=t")
    assert can_i(kubectl, TENANT, tenant_ns, "get", "secrets/creds") == "yes"
    tenant.create(sandbox(tenant_ns, "reader", env=[{"name": "FOO", "value": "bar"},
                                                    secret_env("TOKEN", "creds")]))
    wait_ready(kubectl, tenant_ns, "reader")
    tenant.run("-n", tenant_ns, "patch", "sandbox", "reader", "--type=merge", "-p",
               json.dumps({"spec": {"paused": True}}))
    # Namespace-wide read covers any number of references: one check.
    tenant.create(sandbox(tenant_ns, "many", paused=True, env=many_references(40)))


# ---- 3. the controller's token writes only hardened sandbox pods ---------------------------


def rendered_pod(ns, name="agent"):
    """The shape of the pod kage renders (controller/reconcile/render.c)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kage.dev/sandbox": name,
                                    "app.kubernetes.io/managed-by": "kage"}},
            "spec": {"runtimeClassName": "kata-fc", "restartPolicy": "Never",
                     "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "hostNetwork": False, "hostPID": False, "hostIPC": False,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                         "runAsGroup": 65532,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "sandbox", "image": IMAGE,
                                     "securityContext": copy.deepcopy(HARDENED_CONTAINER)}]}}


def spoil(change):
    def make(ns):
        pod = rendered_pod(ns)
        change(pod)
        return pod
    return make


def _set(path, value):
    def change(pod):
        obj = pod
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return change


def _del(path):
    def change(pod):
        obj = pod
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return change


UNHARDENED = ("must be unprivileged, with allowPrivilegeEscalation false, capabilities.drop "
              "[ALL], no capabilities.add and no hostPort")
C0 = ["spec", "containers", 0, "securityContext"]
PRIVILEGED_INIT = {"name": "init", "image": IMAGE, "securityContext": {"privileged": True}}

CONTROLLER_PODS = [
    ("kube-system", spoil(lambda p: p["metadata"].__setitem__("namespace", "kube-system")),
     "kube-system", ["metadata.namespace must not be kube-system or kage-system"]),
    ("kage-system", spoil(lambda p: p["metadata"].__setitem__("namespace", "kage-system")),
     "kage-system", ["metadata.namespace must not be kube-system or kage-system"]),
    ("no-labels", spoil(_del(["metadata", "labels"])), None,
     ["metadata.labels must carry kage.dev/sandbox and app.kubernetes.io/managed-by=kage"]),
    ("not-managed-by-kage", spoil(_set(["metadata", "labels", "app.kubernetes.io/managed-by"],
                                       "helm")), None,
     ["metadata.labels must carry kage.dev/sandbox and app.kubernetes.io/managed-by=kage"]),
    # The ServiceAccount admission plugin then mounts the token: two rules broken.
    ("token-automounted", spoil(_set(["spec", "automountServiceAccountToken"], True)), None,
     ["spec.automountServiceAccountToken must be false", "spec.volumes must be empty"]),
    ("token-by-default", spoil(_del(["spec", "automountServiceAccountToken"])), None,
     ["spec.automountServiceAccountToken must be false", "spec.volumes must be empty"]),
    ("host-network", spoil(_set(["spec", "hostNetwork"], True)), None,
     ["spec.hostNetwork must not be true"]),
    ("host-pid-and-ipc", spoil(lambda p: p["spec"].update(hostPID=True, hostIPC=True)), None,
     ["spec.hostPID must not be true", "spec.hostIPC must not be true"]),
    ("host-path", spoil(lambda p: p["spec"].update(
        volumes=[{"name": "root", "hostPath": {"path": "/"}}])), None,
     ["spec.volumes must be empty"]),
    ("empty-dir", spoil(lambda p: p["spec"].update(volumes=[{"name": "tmp", "emptyDir": {}}])),
     None, ["spec.volumes must be empty"]),
    # (The pod API itself refuses privileged without escalation.)
    ("privileged", spoil(lambda p: p["spec"]["containers"][0]["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=True)), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("escalation", spoil(_set(C0 + ["allowPrivilegeEscalation"], True)), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("escalation-unset", spoil(_del(C0 + ["allowPrivilegeEscalation"])), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("capability-added", spoil(_set(C0 + ["capabilities"], {"drop": ["ALL"],
                                                            "add": ["SYS_ADMIN"]})), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("capabilities-kept", spoil(_set(C0 + ["capabilities"], {"drop": ["NET_RAW"]})), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("no-security-context", spoil(_del(["spec", "containers", 0, "securityContext"])), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("host-port", spoil(_set(["spec", "containers", 0, "ports"],
                             [{"containerPort": 22, "hostPort": 22}])), None,
     [f"spec.containers[0] {UNHARDENED}"]),
    ("privileged-init", spoil(lambda p: p["spec"].update(initContainers=[PRIVILEGED_INIT])), None,
     [f"spec.initContainers[0] {UNHARDENED}"]),
    ("second-container", spoil(lambda p: p["spec"]["containers"].append(
        {"name": "side", "image": IMAGE})), None, [f"spec.containers[1] {UNHARDENED}"]),
    ("no-runtime-class", spoil(_del(["spec", "runtimeClassName"])), None,
     ["spec.runtimeClassName must be set"]),
]


@pytest.fixture
def open_ns(kage, make_namespace):
    """No Pod Security level enforced: what refuses here is kage's policy."""
    return make_namespace("adm")


@pytest.mark.parametrize("make,ns,problems", [c[1:] for c in CONTROLLER_PODS],
                         ids=[c[0] for c in CONTROLLER_PODS])
def test_the_controller_token_writes_only_hardened_sandbox_pods(kubectl, open_ns, make, ns,
                                                                problems):
    controller = As(kubectl, SA)  # what a stolen token can do
    proc = controller.create(make(open_ns), "--dry-run=server", check=False)
    message = (f'user "{SA}" may not create pod "agent": kage\'s controller writes only hardened '
               "sandbox pods: " + "; ".join(problems))
    assert refused(proc) == denial("kage-controller-pods", "pods", "agent", message,
                                   creating=True)


def test_the_controller_token_may_write_the_pod_kage_renders(kubectl, open_ns):
    out = As(kubectl, SA).create(rendered_pod(open_ns), "--dry-run=server").stdout
    assert out.strip() == "pod/agent created (server dry run)"


# ---- 4. a class only where its namespaceSelector grants it --------------------------------


GRANTS = {
    "label": ({"matchLabels": {"team": "a"}}, {"team": "a"}),
    "in": ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]},
           {"team": "b"}),
    "not-in-absent": ({"matchExpressions": [{"key": "tier", "operator": "NotIn",
                                             "values": ["prod"]}]}, {}),
    "not-in-other": ({"matchExpressions": [{"key": "tier", "operator": "NotIn",
                                            "values": ["prod"]}]}, {"tier": "dev"}),
    "exists": ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {"team": "c"}),
    "does-not-exist": ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}),
    "both": ({"matchLabels": {"team": "a"},
              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["dev"]}]},
             {"team": "a", "tier": "dev"}),
    "empty": ({}, {}),
}

DENIALS = {
    "label-absent": ({"matchLabels": {"team": "a"}}, {}),
    "label-other": ({"matchLabels": {"team": "a"}}, {"team": "b"}),
    "in-other": ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
                 {"team": "b"}),
    "in-absent": ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
                  {}),
    "not-in": ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["prod"]}]},
               {"tier": "prod"}),
    "exists": ({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {}),
    "does-not-exist": ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
                       {"tier": "dev"}),
    "one-of-two": ({"matchLabels": {"team": "a"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["dev"]}]},
                   {"team": "a", "tier": "prod"}),
}


@pytest.fixture
def scoped_class(kubectl, tenant, tenant_ns):
    """Makes SandboxClasses with a namespaceSelector, each returned once the
    API server checks Sandboxes against it; deletes them after."""
    made = []
    never = {"matchLabels": {"kage.dev/never": "selected"}}

    def create(selector):
        name = f"adm-{uuid.uuid4().hex[:8]}"
        kubectl.create({"apiVersion": API_VERSION, "kind": "SandboxClass",
                        "metadata": {"name": name}, "spec": {"namespaceSelector": selector}})
        made.append(name)
        return name

    def make(selector):
        name = create(selector)
        # The policy's parameters come from the API server's own watch of
        # SandboxClasses, a moment behind, and a class it does not know yet
        # is not checked. A class made after this one that selects nothing
        # is refused only once the watch has passed both.
        sentinel = create(never)
        probe = sandbox(tenant_ns, "probe", sandboxClassName=sentinel)
        wait_for(lambda: "'kage-sandbox-classes'" in tenant.create(
            probe, "--dry-run=server", check=False).stderr,
                 timeout=30, interval=0.2, what=f"class {sentinel} to be a parameter")
        kubectl.run("delete", "sandboxclass", sentinel)
        return name

    yield make
    for name in made:
        kubectl.run("delete", "sandboxclass", name, "--ignore-not-found", check=False)


def class_message(cls, ns):
    return (f"spec.sandboxClassName: SandboxClass {cls} may not be used in namespace {ns}: its "
            "namespaceSelector does not select it; use a class granted to this namespace")


def label_ns(kubectl, ns, labels):
    kubectl.run("label", "namespace", ns, *(f"{k}={v}" for k, v in labels.items()))


@pytest.mark.parametrize("selector,labels", DENIALS.values(), ids=DENIALS)
def test_a_tenant_cannot_use_a_class_not_granted_to_its_namespace(
        kubectl, tenant, tenant_ns, scoped_class, selector, labels):
    if labels:
        label_ns(kubectl, tenant_ns, labels)
    cls = scoped_class(selector)
    proc = tenant.create(sandbox(tenant_ns, "borrower", sandboxClassName=cls), check=False)
    assert refused(proc) == denial("kage-sandbox-classes", "sandboxes.kage.dev", "borrower",
                                   class_message(cls, tenant_ns), creating=True)
    assert get(kubectl, tenant_ns, "sandbox", "borrower") is None


@pytest.mark.parametrize("selector,labels", GRANTS.values(), ids=GRANTS)
def test_a_tenant_may_use_a_class_granted_to_its_namespace(
        kubectl, tenant, tenant_ns, scoped_class, selector, labels):
    if labels:
        label_ns(kubectl, tenant_ns, labels)
    cls = scoped_class(selector)
    tenant.create(sandbox(tenant_ns, "grantee", sandboxClassName=cls))
    assert kubectl.json("-n", tenant_ns, "get", "sandbox", "grantee")["spec"][
        "sandboxClassName"] == cls


def test_a_tenant_cannot_switch_to_a_class_not_granted(kubectl, tenant, tenant_ns, scoped_class):
    label_ns(kubectl, tenant_ns, {"team": "a"})
    mine = scoped_class({"matchLabels": {"team": "a"}})
    theirs = scoped_class({"matchLabels": {"team": "b"}})
    tenant.create(sandbox(tenant_ns, "switcher", sandboxClassName=mine))
    proc = tenant.run("-n", tenant_ns, "patch", "sandbox", "switcher", "--type=merge", "-p",
                      json.dumps({"spec": {"sandboxClassName": theirs}}), check=False)
    assert refused(proc) == denial("kage-sandbox-classes", "sandboxes.kage.dev", "switcher",
                                   class_message(theirs, tenant_ns))
    # Other changes stay the tenant's, even after the grant is taken back
    # (the controller then takes the pod away: test_tenancy).
    kubectl.run("label", "namespace", tenant_ns, "team-")
    tenant.run("-n", tenant_ns, "label", "sandbox", "switcher", "purpose=ci")
    tenant.run("-n", tenant_ns, "patch", "sandbox", "switcher", "--type=merge", "-p",
               json.dumps({"spec": {"image": "busybox:1.37"}}))
    assert kubectl.json("-n", tenant_ns, "get", "sandbox", "switcher")["spec"][
        "sandboxClassName"] == mine


def test_an_admin_may_name_any_class_and_the_controller_says_no(
        kubectl, tenant_ns, scoped_class):
    cls = scoped_class({"matchLabels": {"team": "z"}})
    kubectl.create(sandbox(tenant_ns, "admins", sandboxClassName=cls))
    sbx = wait_for(lambda: (lambda s: s if s and any(
        c["type"] == "Ready" and c["reason"] == "ClassNotAllowed"
        for c in s.get("status", {}).get("conditions", [])) else None)(
            get(kubectl, tenant_ns, "sandbox", "admins")),
        timeout=CONVERGE, what="the controller to refuse the class")
    ready = next(c for c in sbx["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["message"]) == (
        "False", f"SandboxClass {cls} may not be used in namespace {tenant_ns}: its "
        "namespaceSelector does not select it; use a class granted to this namespace")
    assert get(kubectl, tenant_ns, "pod", "admins") is None


# ---- 5. the cluster's machinery still works ------------------------------------------


@pytest.mark.parametrize("cascade", ["background", "foreground"])
def test_deleting_a_sandbox_deletes_its_pod_and_policy(kubectl, tenant, tenant_ns, sandbox_in,
                                                       cascade):
    """The garbage collector deletes what kage owns (and, in the foreground,
    updates the Sandbox's finalizers); the baseline stays."""
    sandbox_in(tenant_ns)
    tenant.run("-n", tenant_ns, "delete", "sandbox", "agent", f"--cascade={cascade}",
               "--wait=false")
    wait_for(lambda: all(get(kubectl, tenant_ns, kind, "agent") is None
                         for kind in ("sandbox", "pod", "networkpolicy")),
             timeout=CONVERGE, what="the Sandbox, its pod and its policy to go")
    assert get(kubectl, tenant_ns, "networkpolicy", "kage-baseline") is not None


def test_deleting_a_namespace_with_sandboxes_completes(kubectl, tenant, tenant_ns, sandbox_in):
    """The namespace controller deletes sandboxes, pods and policies, kage's
    baseline included."""
    sandbox_in(tenant_ns, "one")
    sandbox_in(tenant_ns, "two")
    kubectl.run("delete", "namespace", tenant_ns, "--wait=false")
    wait_for(lambda: get(kubectl, None, "namespace", tenant_ns) is None, timeout=120,
             interval=1, what=f"namespace {tenant_ns} to go")


def test_kage_was_never_refused(kage):
    """Last in this module: the controller made every pod and policy above
    without one 403, RBAC's or its own admission policies'. (The rest of
    the suite runs with the policies installed too; a refused write shows
    there as a Sandbox that never gets Ready.)"""
    refusals = [line for line in kage.log_lines() if line.get("code") == 403 or
                "ValidatingAdmissionPolicy" in json.dumps(line)]
    assert refusals == []
