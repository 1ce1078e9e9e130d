# SPDX-License-Identifier: Apache-2.0
"""The Helm chart (charts/kage): made from the kustomize sources, rendering
exactly what they hold with its default values, each value doing what it
says, and helm installing and removing it on a real API server."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kage"
STATE = Path(os.environ.get("KAGE_CLUSTER_DIR", REPO / ".cluster-helm"))
HELM = os.environ.get("HELM") or subprocess.run(
    [str(REPO / "scripts" / "helm.sh")], capture_output=True, text=True, check=True).stdout.strip()


def run(*args, check=True, input=None, timeout=180):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, input=input,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def bin_dir():
    out = run("bash", "-c", f". {REPO}/tests/cluster/versions.sh && k8s_bin_dir").stdout.strip()
    return Path(out)


KUBECTL = bin_dir() / "kubectl"


def kubectl(*args, **kw):
    return run(KUBECTL, "--kubeconfig", STATE / "kubeconfig", *args, **kw)


def docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def key(o):
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


def by_key(objs):
    out = {}
    for o in objs:
        assert key(o) not in out, f"{key(o)} twice"
        out[key(o)] = o
    return out


def template(*sets):
    args = [HELM, "template", "kage", CHART, "--include-crds"]
    for s in sets:
        args += ["--set", s]
    return by_key(docs(run(*args).stdout))


def kustomized():
    objs = docs(run(KUBECTL, "kustomize", REPO / "manifests").stdout)
    objs += docs(run(KUBECTL, "kustomize", REPO / "manifests" / "classes").stdout)
    return by_key(objs)


def container(objs, ns="kage-system"):
    dep = objs[("Deployment", ns, "kage-controller")]
    [c] = dep["spec"]["template"]["spec"]["containers"]
    return dep, c


def test_the_chart_is_generated_from_the_manifests():
    proc = run("python3", REPO / "scripts" / "chart.py", "--check", check=False)
    assert proc.returncode == 0, proc.stderr


def test_helm_lint_is_clean():
    out = run(HELM, "lint", "--strict", CHART).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out, out


def install_yaml():
    """dist/install.yaml as scripts/release.sh writes it for the Makefile's
    VERSION and the default image (its kustomize overlay names the same
    image as manifests/, so the rendering is kustomize's, reordered)."""
    rendered = run(KUBECTL, "kustomize", REPO / "manifests").stdout + "---\n" + \
        run(KUBECTL, "kustomize", REPO / "manifests" / "classes").stdout
    out = run("python3", REPO / "scripts" / "release.py", "manifest", "0.0.0", "test",
              input=rendered).stdout
    return by_key(docs(out))


def test_the_default_rendering_is_install_yaml_exactly():
    got, want = template(), install_yaml()
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k
    assert want == kustomized()


def test_each_value_changes_what_it_names_and_nothing_else():
    base = template()
    ns = "sbx-ops"
    got = template(f"namespace={ns}")
    assert sorted(k for k in got if k[1]) == sorted(
        (k[0], ns, k[2]) for k in base if k[1])
    # Exactly the manifests with the namespace's name replaced, CEL included.
    moved = by_key(json.loads(json.dumps(list(base.values())).replace("kage-system", ns)))
    assert got == moved
    assert f"system:serviceaccount:{ns}:kage-controller" in json.dumps(list(got.values()))
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for k, o in got.items():
            if k[0] == kind:
                assert [s["namespace"] for s in o["subjects"]] == [ns], k
    assert ("Namespace", "", ns) in got

    assert ("Namespace", "", "kage-system") not in template("createNamespace=false")
    assert not [k for k in template("defaultClass.enabled=false") if k[0] == "SandboxClass"]
    off = template("admissionPolicies.enabled=false")
    assert sorted(k for k in base if k not in off) == sorted(
        k for k in base if k[0].startswith("ValidatingAdmissionPolicy"))
    assert len([k for k in base if k[0] == "ValidatingAdmissionPolicy"]) == 5

    dep, c = container(template("replicas=3", "image.repository=registry.example/kage",
                                "image.tag=9.9.9", "image.pullPolicy=Always",
                                "logFormat=text", "logLevel=debug",
                                "runtimeClassName=kata-qemu",
                                "resources.limits.memory=256Mi"))
    _, c0 = container(base)
    assert dep["spec"]["replicas"] == 3
    assert (c["image"], c["imagePullPolicy"]) == ("registry.example/kage:9.9.9", "Always")
    # --gate-image follows the image: the policy gate is the controller's own binary.
    assert c0["args"][0] == f"--gate-image={c0['image']}"
    assert c["args"] == ["--gate-image=registry.example/kage:9.9.9"] + [
        a.replace("kata-fc", "kata-qemu") for a in c0["args"][1:]] + [
        "--log-format=text", "--log-level=debug"]
    assert c["resources"]["limits"] == {**c0["resources"]["limits"], "memory": "256Mi"}
    assert c["resources"]["requests"] == c0["resources"]["requests"]
    cls = template("runtimeClassName=kata-qemu")[("SandboxClass", "", "untrusted")]
    assert cls["spec"]["runtimeClassName"] == "kata-qemu"


def test_the_monitoring_values_render_manifests_monitoring():
    base = template()
    want = by_key(docs(run(KUBECTL, "kustomize", REPO / "manifests" / "monitoring").stdout))
    assert sorted(k[0] for k in want) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    assert not [k for k in want if k in base]
    got = template("serviceMonitor.enabled=true", "prometheusRule.enabled=true",
                   "grafanaDashboard.enabled=true")
    assert sorted(set(got) - set(base)) == sorted(want)
    for k in want:
        assert got[k] == want[k], k
    # Prometheus's and Grafana's own braces come through Helm as written.
    rule = json.dumps(got[("PrometheusRule", "kage-system", "kage-controller")])
    assert "{{ $labels.namespace }}" in rule

    sm_key = ("ServiceMonitor", "kage-system", "kage-controller")
    sm = template("serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom")[sm_key]
    assert sm["metadata"]["labels"] == {**want[sm_key]["metadata"]["labels"], "release": "prom"}
    svc = base[("Service", "kage-system", "kage-controller-metrics")]
    assert sm["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert [e["port"] for e in sm["spec"]["endpoints"]] == [svc["spec"]["ports"][0]["name"]]


def wait_for(pred, timeout=60, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def exists(kind, name, ns=None):
    args = ["get", kind, name, "-o", "name"] + (["-n", ns] if ns else [])
    return kubectl(*args, check=False).returncode == 0


def test_helm_installs_and_uninstalls_the_same_objects():
    env_kc = ["--kubeconfig", STATE / "kubeconfig"]
    want = kustomized()
    run(HELM, *env_kc, "install", "kage", CHART, "--namespace", "default", "--wait=watcher",
        "--timeout", "120s", timeout=240)
    try:
        manifest = by_key(docs(run(HELM, *env_kc, "get", "manifest", "kage", "-n",
                                   "default").stdout))
        # crds/ is installed but is not part of the release's manifest.
        assert sorted(manifest) == sorted(k for k in want if k[0] != "CustomResourceDefinition")
        for kind, ns, name in want:
            assert exists(kind, name, ns or None), (kind, ns, name)
        for crd in ("sandboxes.kage.dev", "sandboxclasses.kage.dev"):
            cond = kubectl("get", "crd", crd, "-o",
                           "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout
            assert cond == "True", crd
        dep = json.loads(kubectl("-n", "kage-system", "get", "deployment", "kage-controller",
                                 "-o", "json").stdout)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == \
            container(want)[1]["image"]
        status = run(HELM, *env_kc, "status", "kage", "-n", "default", "-o", "json").stdout
        assert json.loads(status)["info"]["status"] == "deployed"
    finally:
        run(HELM, *env_kc, "uninstall", "kage", "-n", "default", "--wait", "--timeout", "120s",
            timeout=240)
    # Everything of the release goes; Helm keeps CRDs it installed from
    # crds/ (and with them every Sandbox), as docs/operations.md says.
    for kind, ns, name in want:
        if kind == "CustomResourceDefinition":
            assert exists(kind, name), name
        elif kind == "Namespace":
            wait_for(lambda: not exists(kind, name), timeout=120, what=f"namespace {name} gone")
        else:
            assert not exists(kind, name, ns or None), (kind, ns, name)


def drain(node, timeout):
    return kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                   "--pod-selector=app.kubernetes.io/name=kage", f"--timeout={timeout}s",
                   check=False, timeout=timeout + 60)


def kage_pods():
    out = kubectl("-n", "kage-system", "get", "pods", "-l", "app.kubernetes.io/name=kage",
                  "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


@pytest.mark.parametrize("replicas,drained", [(1, True), (2, False)])
def test_the_budget_lets_a_one_node_drain_take_a_single_replica(replicas, drained):
    """One node (the local cluster's one kwok node, cordoned by the drain):
    with one replica the drain takes it; with two it takes one and waits,
    as docs/operations.md says."""
    env_kc = ["--kubeconfig", STATE / "kubeconfig"]
    [node] = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    name = node["metadata"]["name"]
    run(HELM, *env_kc, "install", "kage", CHART, "--namespace", "default", "--wait=watcher",
        "--timeout", "120s", "--set", f"replicas={replicas}", timeout=240)
    try:
        wait_for(lambda: len([p for p in kage_pods() if p["status"].get("phase") == "Running"])
                 == replicas, timeout=120, what=f"{replicas} controller pod(s) running")
        proc = drain(name, 20)
        assert (proc.returncode == 0) == drained, proc.stderr[-2000:]
        running = [p for p in kage_pods() if p["spec"].get("nodeName") == name]
        assert len(running) == (0 if drained else 1), running
        if not drained:
            assert "Cannot evict pod as it would violate the pod's disruption budget" in \
                proc.stdout + proc.stderr
    finally:
        kubectl("uncordon", name, check=False)
        run(HELM, *env_kc, "uninstall", "kage", "-n", "default", "--wait", "--timeout", "120s",
            timeout=240)
        wait_for(lambda: not exists("namespace", "kage-system"), timeout=120,
                 what="namespace kage-system gone")
