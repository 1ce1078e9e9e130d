# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the packet suite on the real node (make node-up): an admin
kubectl bound to <repo>/.cluster-node, the SandboxClass every case uses,
namespaces granted that class, and a record of the measured figures.

kage already runs there as its Deployment (two replicas in kage-system);
nothing here starts a controller. The e2e suite's kubectl wrapper and
polling helper are reused as they are (tests/e2e/conftest.py)."""

import importlib.util
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STATE = Path(os.environ.get("KAGE_CLUSTER_DIR", REPO / ".cluster-node"))
# tests/e2e's conftest reads KAGE_CLUSTER_DIR when it is loaded: this
# suite's state directory, whatever the caller's environment says.
os.environ["KAGE_CLUSTER_DIR"] = str(STATE)

_spec = importlib.util.spec_from_file_location("e2e_conftest", REPO / "tests/e2e/conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)
Kubectl = e2e.Kubectl
wait_for = e2e.wait_for  # tests/e2e/sandboxes.py imports it from "conftest"
sys.path.append(str(REPO / "tests/e2e"))

from expected import API_VERSION, RESTRICTED  # noqa: E402

RUN = uuid.uuid4().hex[:6]
GRANT = "node-tests.kage.dev/run"  # the namespace label the class selects
CLASS = f"real-node-{RUN}"
NODE = "kage-node"
PROBE_IMAGE = "localhost/kage-probe:latest"
RESULTS = STATE / "node-tests-results.txt"
# The tenant who writes the Sandboxes: a user bound to kage-sandbox-editor
# alone in the suite's namespaces, so kage's admission policies (which
# exempt cluster admins) judge every Sandbox the suite makes.
TENANT = "node-tests-tenant"


def read_env():
    """The control plane's env file (the e2e suite's reader, whose state
    directory is this suite's); exits the session, saying what to do, when
    no node has been brought up."""
    if not (STATE / "env").exists() or not (STATE / "kubeconfig").exists():
        pytest.exit(f"no real node at {STATE} (no env or kubeconfig there): run make node-up, "
                    "or make test-node, which brings one up", returncode=2)
    return e2e.read_env()


class Figures:
    """Measured figures: printed as they come (pytest -s) and written, one
    line each, to .cluster-node/node-tests-results.txt at the end."""

    def __init__(self):
        self.lines = []

    def add(self, case, text):
        line = f"{case}: {text}"
        self.lines.append(line)
        print(f"\n[figure] {line}", flush=True)

    def write(self, started):
        head = [f"# kage packet suite on the real node, run {RUN}, "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
                f"{time.monotonic() - started:.1f} s"]
        RESULTS.write_text("\n".join(head + self.lines) + "\n")


@pytest.fixture(scope="session")
def figures():
    fig = Figures()
    started = time.monotonic()
    yield fig
    fig.write(started)
    print(f"\nfigures written to {RESULTS}")


@pytest.fixture(scope="session")
def kubectl():
    env = read_env()
    return Kubectl(env["BIN_DIR"], STATE / "kubeconfig")


class Tenant(Kubectl):
    """kubectl as TENANT (impersonated by the admin's kubeconfig)."""

    def __init__(self, admin):
        self.bin, self.kubeconfig = admin.bin, admin.kubeconfig

    def run(self, *args, **kw):
        return super().run(f"--as={TENANT}", *args, **kw)


@pytest.fixture(scope="session")
def tenant(kubectl):
    return Tenant(kubectl)


@pytest.fixture(scope="session")
def bed(kubectl):
    """Checks that the test bed is what the suite needs before any case
    runs: the node Ready, kage's Deployment with its two replicas available
    on it, kube-dns with an endpoint, the RuntimeClass the class names.
    A missing piece ends the session with a message naming it."""
    def need(ok, what):
        if not ok:
            pytest.exit(f"the real node is not ready: {what} (make node-up)", returncode=2)

    proc = kubectl.run("get", "node", NODE, "-o", "json", check=False)
    need(proc.returncode == 0, f"no node {NODE}: {proc.stderr.strip()}")
    node = kubectl.json("get", "node", NODE)
    ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
    need(ready and ready[0]["status"] == "True", f"node {NODE} is not Ready: {ready}")
    need(node["metadata"].get("labels", {}).get("kage.dev/real-node") == "true",
         f"node {NODE} lacks the label kage.dev/real-node=true")
    proc = kubectl.run("-n", "kage-system", "get", "deployment", "kage-controller", "-o", "json",
                       check=False)
    need(proc.returncode == 0, "no Deployment kage-system/kage-controller")
    dep = json.loads(proc.stdout)
    need(dep["status"].get("availableReplicas") == 2,
         f"kage-controller has {dep['status'].get('availableReplicas')} available replicas, "
         "not 2")
    need(kubectl.run("get", "runtimeclass", "kata-fc", check=False).returncode == 0,
         "no RuntimeClass kata-fc")
    eps = kubectl.json("-n", "kube-system", "get", "endpointslices",
                       "-l", "kubernetes.io/service-name=kube-dns")["items"]
    need(any(e.get("conditions", {}).get("ready") for s in eps for e in s.get("endpoints") or []),
         "kube-dns has no ready endpoint")
    return node


@pytest.fixture(scope="session")
def real_node_class(kubectl, bed):
    """The SandboxClass of every case: the real node (nodeSelector), the
    kata-fc RuntimeClass (runc there), small defaults so that dozens of
    sandboxes fit the node, and granted only to this run's namespaces.

    supplementalGroupsPolicy Merge: the node's containerd (1.6) does not
    report support for Strict, and the kubelet refuses Strict pods on such
    a node."""
    kubectl.apply({
        "apiVersion": API_VERSION, "kind": "SandboxClass", "metadata": {"name": CLASS},
        "spec": {
            "runtimeClassName": "kata-fc",
            "nodeSelector": {"kage.dev/real-node": "true"},
            "namespaceSelector": {"matchLabels": {GRANT: RUN}},
            "supplementalGroupsPolicy": "Merge",
            "defaultResources": {"cpu": "20m", "memory": "32Mi", "ephemeralStorage": "64Mi"},
        },
    })
    yield CLASS
    kubectl.run("delete", "sandboxclass", CLASS, "--ignore-not-found", "--wait=false",
                check=False)


@pytest.fixture(scope="session")
def namespaces(kubectl, real_node_class):
    """Makes namespaces that enforce Pod Security restricted, where the
    tenant may write Sandboxes, granted the class (grant=False: not
    granted); deletes them at the end of the session, before the class
    goes."""
    made = []

    def make(prefix, grant=True):
        name = f"node-{prefix}-{RUN}"
        labels = dict(RESTRICTED)
        if grant:
            labels[GRANT] = RUN
        kubectl.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": labels}})
        made.append(name)
        wait_for(lambda: kubectl.run("-n", name, "get", "serviceaccount", "default",
                                     check=False).returncode == 0,
                 timeout=60, interval=0.25, what=f"the default ServiceAccount of {name}")
        kubectl.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": {"name": "tenant", "namespace": name},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                    "kind": "ClusterRole", "name": "kage-sandbox-editor"},
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                      "name": TENANT}]})
        return name

    yield make
    for name in made:
        kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found",
                    check=False)


@pytest.fixture(scope="session")
def fleet(kubectl, tenant, namespaces, real_node_class):
    """The sandboxes and plain pods the egress and ingress cases share,
    made at once and left running for the session:

    namespace `sbx` (granted the class):
      allow-443  203.0.113.10/32 on TCP 443
      except     203.0.113.0/24 except 203.0.113.7/32, on TCP 443
      ranges     203.0.113.10/32 on TCP 8000-8100 (port, endPort)
      dns-only   no allow list (DNS to kube-dns only, the default)
      no-dns     dns: false, no allow list: nothing at all
      listener   no allow list, listens on TCP 8080
      client     a plain pod (no kage policy selects it)
    namespace `other` (not granted: plain pods only):
      client        a plain pod
      plain-listener a plain pod listening on TCP 8080, no policy at all
    """
    from probes import LISTEN, TEST_HOST, apply_all, plain_pod, sandbox, wait_ready

    sbx, other = namespaces("sbx"), namespaces("other", grant=False)
    cls = real_node_class

    def tcp(*ports):
        return [{"port": p, "protocol": "TCP"} for p in ports]

    objects = [
        sandbox(sbx, "allow-443", cls, egress={"allow": [
            {"cidr": f"{TEST_HOST}/32", "ports": tcp(443)}]}),
        sandbox(sbx, "except", cls, egress={"allow": [
            {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32"], "ports": tcp(443)}]}),
        sandbox(sbx, "ranges", cls, egress={"allow": [
            {"cidr": f"{TEST_HOST}/32", "ports": [{"port": 8000, "endPort": 8100}]}]}),
        sandbox(sbx, "dns-only", cls),
        sandbox(sbx, "no-dns", cls, egress={"dns": False}),
        sandbox(sbx, "listener", cls, command=LISTEN),
        plain_pod(sbx, "client"),
        plain_pod(other, "client"),
        plain_pod(other, "plain-listener", command=LISTEN),
    ]
    started = time.monotonic()
    apply_all(kubectl, objects, tenant)
    wait_ready(kubectl, objects)
    print(f"\n[fleet] {len(objects)} objects Ready in {time.monotonic() - started:.1f} s",
          flush=True)
    return {"sbx": sbx, "other": other}
