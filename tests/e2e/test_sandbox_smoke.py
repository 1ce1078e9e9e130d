# SPDX-License-Identifier: Apache-2.0
"""The shortest path through kage: a Sandbox applied with kubectl becomes a
Ready sandbox with its policies and pod."""

from conftest import REPO


def test_the_example_sandbox_becomes_ready(kubectl, kage, make_namespace):
    ns = make_namespace("smoke", {"pod-security.kubernetes.io/enforce": "restricted"})
    kubectl.run("-n", ns, "apply", "-f", str(REPO / "manifests/examples/sandbox.yaml"))
    kubectl.run("-n", ns, "wait", "--for=condition=Ready", "sandbox/example", "--timeout=60s")
    sbx = kubectl.json("-n", ns, "get", "sandbox", "example")
    assert sbx["status"]["phase"] == "Running"
    assert sbx["status"]["podName"] == "example"
    assert sbx["status"]["podIP"].startswith("10.244.")
    pod = kubectl.json("-n", ns, "get", "pod", "example")
    assert pod["spec"]["runtimeClassName"] == "kata-fc"
    names = sorted(p["metadata"]["name"] for p in
                   kubectl.json("-n", ns, "get", "networkpolicies")["items"])
    assert names == ["example", "kage-baseline"]
