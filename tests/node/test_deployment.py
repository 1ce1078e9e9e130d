# SPDX-License-Identifier: Apache-2.0
"""kage as it ships, on the real node: the Deployment of manifests/ runs
from its image with the in-cluster configuration, leader election,
probes, a read-only root file system and its memory limit, each read
from where it is enforced (the kernel's view of the process, the
kubelet's probes), not from the pod's spec."""

import json
import subprocess
import time
from pathlib import Path

import yaml

from conftest import REPO, STATE, wait_for

NS = "kage-system"
DEPLOYMENT = yaml.safe_load((REPO / "manifests/deployment.yaml").read_text())


def controller_pods(kubectl):
    pods = kubectl.json("-n", NS, "get", "pods", "-l",
                        "app.kubernetes.io/name=kage,app.kubernetes.io/component=controller")
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def container_pid(pod):
    """The host pid of the pod's controller process, from containerd."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    out = subprocess.run(
        ["ctr", "--address", str(STATE / "containerd/containerd.sock"), "-n", "k8s.io",
         "tasks", "ls"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return int(fields[1])
    raise AssertionError(f"containerd runs no task {cid}:\n{out}")


def quantity_bytes(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if q.endswith(suffix):
            return int(q[:-len(suffix)]) * factor
    return int(q)


def test_two_replicas_run_from_the_image_on_the_real_node(kubectl, bed):
    pods = controller_pods(kubectl)
    spec = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]
    assert len(pods) == DEPLOYMENT["spec"]["replicas"] == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == "kage-node"
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] is True, status
        assert status["image"] == spec["image"]
        assert status["imageID"].startswith("sha256:") or "@sha256:" in status["imageID"]


def test_in_cluster_config_through_the_kubernetes_service(kubectl, bed):
    """The log's start-up line names the server the controller found in its
    environment: the kubernetes Service, which kube-proxy on the node
    sends to the API server's advertised address."""
    svc = kubectl.json("-n", "default", "get", "service", "kubernetes")
    slices = kubectl.json("-n", "default", "get", "endpointslices",
                          "-l", "kubernetes.io/service-name=kubernetes")["items"]
    assert [a for s in slices for e in s["endpoints"] for a in e["addresses"]] == ["10.87.0.1"]
    for pod in controller_pods(kubectl):
        lines = [json.loads(line) for line in
                 kubectl.run("-n", NS, "logs", pod["metadata"]["name"]).stdout.splitlines()]
        started = next(line for line in lines if line["msg"] == "kage-controller started")
        assert started["server"] == f"https://{svc['spec']['clusterIP']}:443"
        assert started["leaderElect"] is True


def test_read_only_root_and_memory_limit_are_the_kernels(kubectl, bed):
    """The root file system is mounted read-only in the controller's mount
    namespace, and its memory cgroup (v1 on this machine) is limited to
    the Deployment's limit."""
    limit = quantity_bytes(DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]
                           ["resources"]["limits"]["memory"])
    for pod in controller_pods(kubectl):
        pid = container_pid(pod)
        root = [line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/"]
        assert root, f"no / mount for pid {pid}"
        assert "ro" in root[-1][5].split(","), root[-1]
        cgroup = [line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
        memory = [path for _, ctl, path in cgroup if "memory" in ctl.split(",")]
        assert memory, cgroup
        cg = Path("/sys/fs/cgroup/memory") / memory[0].strip().lstrip("/")
        assert int((cg / "memory.limit_in_bytes").read_text()) == limit
        # Not dumpable (controller/harden.c): the kernel gives the files of
        # /proc/PID to root, not to the process's own (non-root) user.
        status = Path(f"/proc/{pid}/status").read_text()
        uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
        assert uid != 0
        assert Path(f"/proc/{pid}/status").stat().st_uid == 0


def test_probes_answer_on_the_pod_address(kubectl, bed):
    """The kubelet's probes reach /healthz and /readyz on the probe port;
    the same port from the node answers, since NetworkPolicy lets a pod's
    own node in."""
    for pod in controller_pods(kubectl):
        ip = pod["status"]["podIP"]
        out = subprocess.run(
            ["nsenter", "--net=/run/netns/kage-node", "python3", "-c",
             "import sys, urllib.request;"
             f"print(urllib.request.urlopen('http://{ip}:8082/readyz', timeout=3).read().decode())"],
            capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"


def test_leader_election_hands_over_when_the_leader_goes(kubectl, bed):
    """One replica holds the Lease; deleting its pod hands the Lease to the
    other replica (or to the replacement pod), within the lease duration
    plus a retry period."""
    lease = kubectl.json("-n", NS, "get", "lease", "kage-controller")
    holder = lease["spec"]["holderIdentity"]
    pods = {p["metadata"]["name"] for p in controller_pods(kubectl)}
    leader = holder.rsplit("_", 1)[0]
    assert leader in pods, (holder, pods)
    started = time.monotonic()
    kubectl.run("-n", NS, "delete", "pod", leader, "--wait=false")

    def taken():
        spec = kubectl.json("-n", NS, "get", "lease", "kage-controller")["spec"]
        new = spec.get("holderIdentity") or ""
        return new and new.rsplit("_", 1)[0] != leader and new
    new = wait_for(taken, timeout=60, interval=0.25, what="another replica to take the Lease")
    took = time.monotonic() - started
    print(f"\n[figure] leader {leader} deleted; {new} took the Lease after {took:.1f} s", flush=True)
    assert took < lease["spec"]["leaseDurationSeconds"] + 15
    kubectl.run("-n", NS, "rollout", "status", "deployment/kage-controller", "--timeout=120s")
