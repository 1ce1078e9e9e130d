# SPDX-License-Identifier: Apache-2.0
"""The local control plane behaves like a real cluster: these are the
properties every later test leans on (RBAC, scheduling onto kwok nodes,
garbage collection, quota and Pod Security admission)."""

import ipaddress
import json

from conftest import wait_for


def restricted_pod(name, **overrides):
    """A pod that Pod Security "restricted" admits."""
    container = {
        "name": "main",
        "image": "registry.invalid/sleeper:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    container.update(overrides.pop("container", {}))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], "restartPolicy": "Never"},
    }
    pod["spec"].update(overrides)
    return pod


def test_api_server_reports_the_pinned_version(kubectl, cluster_env):
    version = json.loads(kubectl.run("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == cluster_env["K8S_VERSION"]
    assert version["major"] == "1"
    assert version["minor"] == cluster_env["K8S_VERSION"].split(".")[1]


def test_kata_runtime_class_exists(kubectl):
    rc = kubectl.json("get", "runtimeclass", "kata-fc")
    assert rc["handler"] == "kata-fc"


def test_rbac_denies_an_unbound_service_account(kubectl, namespace, service_account_kubectl):
    as_sa = service_account_kubectl(namespace, "nobody")
    proc = as_sa.run("-n", namespace, "get", "pods", check=False)
    assert proc.returncode == 1
    assert (
        f'pods is forbidden: User "system:serviceaccount:{namespace}:nobody" '
        f'cannot list resource "pods" in API group "" in the namespace "{namespace}"'
    ) in proc.stderr
    # The same identity may do what a Role grants it, and nothing more.
    kubectl.run("-n", namespace, "create", "role", "pod-reader", "--verb=list", "--resource=pods")
    kubectl.run("-n", namespace, "create", "rolebinding", "nobody-reads", "--role=pod-reader",
                f"--serviceaccount={namespace}:nobody")
    wait_for(lambda: as_sa.run("-n", namespace, "get", "pods", check=False).returncode == 0,
             timeout=30, what="the RoleBinding to take effect")
    kubectl.create(restricted_pod("victim"), "-n", namespace)
    proc = as_sa.run("-n", namespace, "delete", "pod", "victim", check=False)
    assert proc.returncode == 1
    assert (
        f'pods "victim" is forbidden: User "system:serviceaccount:{namespace}:nobody" '
        f'cannot delete resource "pods" in API group "" in the namespace "{namespace}"'
    ) in proc.stderr


def test_a_pod_is_scheduled_to_a_kwok_node_and_runs_with_an_ip(kubectl, namespace):
    kubectl.create(restricted_pod("runner"), "-n", namespace)
    kubectl.run("-n", namespace, "wait", "--for=jsonpath={.status.phase}=Running",
                "pod/runner", "--timeout=60s")
    pod = kubectl.json("-n", namespace, "get", "pod", "runner")
    assert pod["spec"]["nodeName"].startswith("kwok-node-")
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network("10.244.0.0/16")
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"


def test_deleting_an_owner_garbage_collects_its_dependent(kubectl, namespace):
    owner = kubectl.json("-n", namespace, "create", "configmap", "owner")
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": owner["metadata"]["uid"], "controller": True,
            }],
        },
    }
    kubectl.create(dependent, "-n", namespace)
    kubectl.run("-n", namespace, "delete", "configmap", "owner")
    wait_for(
        lambda: kubectl.run("-n", namespace, "get", "configmap", "dependent",
                            check=False).returncode != 0,
        timeout=60, what="the garbage collector to delete the dependent")
    proc = kubectl.run("-n", namespace, "get", "configmap", "dependent", check=False)
    assert 'configmaps "dependent" not found' in proc.stderr


def test_a_resource_quota_refuses_a_pod_over_quota(kubectl, namespace):
    kubectl.create({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "small"},
        "spec": {"hard": {"requests.cpu": "1", "limits.memory": "1Gi"}},
    }, "-n", namespace)
    wait_for(lambda: kubectl.json("-n", namespace, "get", "resourcequota", "small")
             .get("status", {}).get("hard"), timeout=30, what="the quota controller")
    resources = {"requests": {"cpu": "2", "memory": "256Mi"},
                 "limits": {"cpu": "2", "memory": "256Mi"}}
    proc = kubectl.create(restricted_pod("big", container={"resources": resources}),
                          "-n", namespace, check=False)
    assert proc.returncode == 1
    assert ('pods "big" is forbidden: exceeded quota: small, requested: requests.cpu=2, '
            'used: requests.cpu=0, limited: requests.cpu=1') in proc.stderr
    resources = {"requests": {"cpu": "500m", "memory": "256Mi"},
                 "limits": {"cpu": "500m", "memory": "256Mi"}}
    kubectl.create(restricted_pod("fits", container={"resources": resources}), "-n", namespace)


def test_pod_security_restricted_refuses_a_privileged_pod(kubectl, make_namespace):
    ns = make_namespace("restricted", {"pod-security.kubernetes.io/enforce": "restricted"})
    privileged = restricted_pod("root", container={"securityContext": {"privileged": True}})
    proc = kubectl.create(privileged, "-n", ns, check=False)
    assert proc.returncode == 1
    assert 'pods "root" is forbidden: violates PodSecurity "restricted:latest": privileged' \
        in proc.stderr
    # The restricted-compliant pod is admitted in the same namespace.
    kubectl.create(restricted_pod("fine"), "-n", ns)


def test_a_pod_naming_a_missing_runtime_class_is_refused(kubectl, namespace):
    proc = kubectl.create(restricted_pod("nope", runtimeClassName="missing"), "-n", namespace,
                          check=False)
    assert proc.returncode == 1
    assert 'pod rejected: RuntimeClass "missing" not found' in proc.stderr
    kubectl.create(restricted_pod("kata", runtimeClassName="kata-fc"), "-n", namespace)
