# SPDX-License-Identifier: Apache-2.0
"""docs/quickstart-k3s.md, steps 3 to 6, followed on the real node with the
release's own artefacts, as a platform team would on K3s. What cannot be
followed here is said where it is replaced:

- `k3s ctr images import` is `ctr -n k8s.io images import` against the
  node's containerd (the quick start says they do the same);
- the runtime class stays `kata-fc` (step 4's sed names the one kata-deploy
  made; here `kata-fc` is runc);
- the node's containerd is 1.6, older than `supplementalGroupsPolicy:
  Strict` needs: the quick start's own note sends the reader to
  requirements.md, whose answer (a class with `Merge`) is applied to the
  default class, and the untouched example is first shown to stop there
  with exactly that reason;
- no registry: the example's image and command become the probe image and
  a listener on the example's port; the rest of the example is as written.

It runs after the other cases (the file name's order): installing the
release's install.yaml over `kubectl apply -k manifests/` rolls the
Deployment once."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import NODE, PROBE_IMAGE, REPO, STATE, wait_for
from probes import EXCEPTED_HOST, RESTRICTED_CONTAINER, TEST_HOST, expect, pod_ip

VERSION = next(line.split("=", 1)[1].strip().lstrip("?:").strip()
               for line in (REPO / "Makefile").read_text().splitlines()
               if line.replace(" ", "").startswith(("VERSION?=", "VERSION:=", "VERSION=")))
NS = "team-a"


def sh(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def release():
    """`make release VERSION=...` for linux/amd64 (the node's), into a
    directory of its own."""
    with tempfile.TemporaryDirectory(prefix="kage-quickstart-") as dist:
        env = dict(os.environ, VERSION=VERSION, DIST=dist, ARCHES="amd64")
        proc = sh(str(REPO / "scripts/release.sh"), env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield Path(dist)


@pytest.fixture(scope="module")
def quickstart_ns(kubectl):
    yield NS
    kubectl.run("delete", "namespace", NS, "--ignore-not-found", "--wait=false", check=False)
    kubectl.run("patch", "sandboxclass", "untrusted", "--type=json", "-p",
                '[{"op": "remove", "path": "/spec/supplementalGroupsPolicy"}]', check=False)


def test_the_quick_start_on_the_real_node(kubectl, bed, release, quickstart_ns, figures):
    # Step 3: the image, checked and imported.
    proc = sh("sha256sum", "-c", "SHA256SUMS", cwd=release)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ctr = ["ctr", "--address", str(STATE / "containerd/containerd.sock"), "-n", "k8s.io"]
    archive = release / f"kage-controller-{VERSION}-linux-amd64.oci.tar"
    proc = sh(*ctr, "images", "import", str(archive))
    assert proc.returncode == 0, proc.stderr
    listed = sh(*ctr, "images", "ls", "-q").stdout.split()
    assert f"localhost/kage-controller:{VERSION}" in listed

    # Step 4: install.yaml, twice, as the quick start says.
    install = str(release / "install.yaml")
    kubectl.run("apply", "-f", install, check=False)
    kubectl.run("wait", "--for=condition=Established", "crd/sandboxes.kage.dev",
                "crd/sandboxclasses.kage.dev")
    kubectl.run("apply", "-f", install)
    kubectl.run("-n", "kage-system", "rollout", "status", "deployment/kage-controller",
                "--timeout=180s", timeout=240)
    classes = kubectl.run("get", "sandboxclass", "untrusted").stdout.split("\n")
    assert classes[0].split()[:2] == ["NAME", "RUNTIME"]
    assert classes[1].split()[:2] == ["untrusted", "kata-fc"]

    # Step 5: the namespace and the example, first exactly as written (and
    # the default class as install.yaml has it, whatever ran before).
    kubectl.run("patch", "sandboxclass", "untrusted", "--type=json", "-p",
                '[{"op": "remove", "path": "/spec/supplementalGroupsPolicy"}]', check=False)
    kubectl.run("create", "namespace", NS)
    kubectl.run("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
    example = yaml.safe_load((REPO / "manifests/examples/sandbox.yaml").read_text())
    kubectl.run("-n", NS, "apply", "-f", str(REPO / "manifests/examples/sandbox.yaml"))

    def reason():
        sbx = kubectl.json("-n", NS, "get", "sandbox", "example")
        ready = [c for c in sbx.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        return ready[0]["reason"] if ready else None
    wait_for(lambda: reason() == "SupplementalGroupsPolicyNotSupported", timeout=60,
             what="the example to stop at containerd 1.6's refusal of Strict")

    # requirements.md's answer, then the example with a local image.
    kubectl.run("patch", "sandboxclass", "untrusted", "--type=merge", "-p",
                '{"spec": {"supplementalGroupsPolicy": "Merge"}}')
    kubectl.run("-n", NS, "delete", "sandbox", "example", "--wait=true", timeout=120)
    example["spec"]["image"] = PROBE_IMAGE
    example["spec"]["command"] = ["nc", "-ll", "-p", "8000", "-e", "echo", "hi"]
    kubectl.run("-n", NS, "apply", "-f", "-", input=yaml.safe_dump(example))
    kubectl.run("-n", NS, "wait", "--for=condition=Ready", "sandbox/example", "--timeout=120s",
                timeout=180)
    row = kubectl.run("-n", NS, "get", "sandbox").stdout.split("\n")[1].split()
    assert row[:4] == ["example", "True", "Running", "SandboxReady"]

    # Step 6: the isolation, as the quick start checks it.
    pod = kubectl.json("-n", NS, "get", "pod", "example")
    assert pod["spec"]["runtimeClassName"] == "kata-fc"
    assert pod["spec"]["nodeName"] == NODE
    policies = kubectl.run("-n", NS, "get", "networkpolicy", "-o", "name").stdout.split()
    assert sorted(policies) == ["networkpolicy.networking.k8s.io/example",
                                "networkpolicy.networking.k8s.io/kage-baseline"]
    isolated = kubectl.run("-n", NS, "get", "sandbox", "example", "-o",
                           "jsonpath={.status.conditions[?(@.type==\"NetworkIsolated\")].message}")
    assert isolated.stdout == ("all ingress denied; egress limited to 2 rules by "
                               "NetworkPolicy example")
    names = kubectl.run("-n", NS, "exec", "example", "-c", "sandbox", "--", "nslookup",
                        "kubernetes.default.svc.cluster.local", check=False)
    svc = kubectl.json("-n", "default", "get", "service", "kubernetes")["spec"]["clusterIP"]
    assert names.returncode == 0 and f"Address: {svc}" in names.stdout, names.stdout
    # The example allows 203.0.113.0/24 on 443 except 203.0.113.7; the
    # cluster's API service is out of reach.
    expect(kubectl, NS, "example", {(TEST_HOST, 443): True, (TEST_HOST, 80): False,
                                    (EXCEPTED_HOST, 443): False, (svc, 443): False})
    # No ingress, even from inside the cluster.
    ip = pod_ip(kubectl, NS, "example")
    probe = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": NS},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "probe", "image": PROBE_IMAGE, "imagePullPolicy": "Never",
                            "command": ["nc", "-w", "5", ip, "8000"],
                            "securityContext": RESTRICTED_CONTAINER}],
        },
    }
    kubectl.create(probe)
    wait_for(lambda: kubectl.json("-n", NS, "get", "pod", "probe")["status"]["phase"]
             in ("Succeeded", "Failed"), timeout=60, what="the ingress probe to end")
    done = kubectl.json("-n", NS, "get", "pod", "probe")
    logs = kubectl.run("-n", NS, "logs", "probe").stdout
    assert done["status"]["phase"] == "Failed" and "hi" not in logs, (done["status"], logs)
    figures.add("quick start", f"release {VERSION} imported and installed on {NODE}; the "
                "example stops at SupplementalGroupsPolicyNotSupported as written (containerd "
                "1.6), runs with the class at Merge, and isolates as step 6 says")
