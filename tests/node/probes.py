# SPDX-License-Identifier: Apache-2.0
"""Making sandboxes and plain pods on the real node, and trying connections
from inside them (kubectl exec) and from the machines around them (the
test hosts' and the node's network namespaces).

The test hosts (tests/node/testhosts.sh) answer every accepted TCP
connection with exactly one line, "<address>:<port>", and close it; busybox
nc prints that line and exits 0. A connection the policies deny prints
nothing and exits non-zero. Every check asserts both."""

import json
import subprocess
import threading
import time

from conftest import API_VERSION, NODE, PROBE_IMAGE, wait_for

TEST_HOST = "203.0.113.10"  # listens on TCP 80, 443, 8000, 8050, 8100, 9000
EXCEPTED_HOST = "203.0.113.7"  # listens on TCP 443
OUTSIDE_DNS = "198.51.100.53"  # answers any A query with TEST_HOST
NETNS_TESTHOSTS = "/run/netns/kage-testhosts"
NETNS_NODE = "/run/netns/kage-node"
SLEEP = ["sleep", "3600"]
# A listener on TCP 8080 that answers every connection with "hi".
LISTEN = ["nc", "-ll", "-p", "8080", "-e", "echo", "hi"]
LISTEN_PORT = 8080
# A plain pod admitted where Pod Security "restricted" is enforced.
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def sandbox(ns, name, cls, command=SLEEP, **spec):
    """A Sandbox of class cls running command with the probe image, which
    is on the node only (imported with ctr): imagePullPolicy Never."""
    spec.setdefault("image", PROBE_IMAGE)
    spec.setdefault("imagePullPolicy", "Never")
    spec["sandboxClassName"] = cls
    if command is not None:
        spec["command"] = command
    return {"apiVersion": API_VERSION, "kind": "Sandbox",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def plain_pod(ns, name, command=SLEEP, labels=None):
    """A pod that is not a sandbox: no kage label, so no kage policy selects
    it. On the real node, with the probe image, restricted-compliant."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "node-tests"}},
        "spec": {
            "nodeSelector": {"kage.dev/real-node": "true"},
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": PROBE_IMAGE, "imagePullPolicy": "Never",
                "command": command,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "32Mi"}},
                "securityContext": RESTRICTED_CONTAINER,
            }],
        },
    }


def apply_all(kubectl, objects):
    """Writes every object in one request: the node starts them at once."""
    kubectl.apply({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def wait_ready(kubectl, objects, timeout=180):
    """Waits until every Sandbox and pod in objects is Ready; on a timeout
    says which were not, with their status."""
    late = []
    for obj in objects:
        kind = obj["kind"].lower()
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        proc = kubectl.run("-n", ns, "wait", "--for=condition=Ready", f"{kind}/{name}",
                           f"--timeout={timeout}s", check=False, timeout=timeout + 30)
        if proc.returncode != 0:
            got = kubectl.run("-n", ns, "get", kind, name, "-o", "json", check=False).stdout
            late.append(f"{kind} {ns}/{name}: {json.loads(got).get('status') if got else None}")
    assert not late, "not Ready:\n" + "\n".join(late)


def pod_ip(kubectl, ns, name):
    ip = kubectl.json("-n", ns, "get", "pod", name)["status"].get("podIP")
    assert ip, f"pod {ns}/{name} has no IP"
    return ip


def exec_in(kubectl, ns, pod, script, timeout=30):
    """Runs script with /bin/sh in the pod; the CompletedProcess (kubectl
    exec passes the script's exit code on)."""
    return kubectl.run("-n", ns, "exec", pod, "--", "sh", "-c", script, check=False,
                       timeout=timeout)


def nc(kubectl, ns, pod, addr, port):
    """(exit code, stdout) of busybox nc connecting from the pod."""
    proc = exec_in(kubectl, ns, pod, f"nc -w 2 {addr} {port} </dev/null")
    return proc.returncode, proc.stdout


def assert_connects(kubectl, ns, pod, addr, port, answer=None):
    """The pod reaches addr:port: nc exits 0 and prints the listener's line."""
    answer = answer if answer is not None else f"{addr}:{port}"
    assert nc(kubectl, ns, pod, addr, port) == (0, f"{answer}\n"), \
        f"{ns}/{pod} could not reach {addr}:{port}"


def assert_blocked(kubectl, ns, pod, addr, port):
    """The pod does not reach addr:port: nc fails and prints nothing."""
    code, out = nc(kubectl, ns, pod, addr, port)
    assert out == "" and code != 0, \
        f"{ns}/{pod} reached {addr}:{port}: exit {code}, output {out!r}"


# A TCP client for the network namespaces outside the cluster: prints one
# JSON object, what the connection gave.
_CLIENT = """
import json, socket, sys, time
addr, port = sys.argv[1], int(sys.argv[2])
t = time.monotonic()
s = socket.socket()
s.settimeout(2)
try:
    s.connect((addr, port))
    data = b""
    while True:
        chunk = s.recv(256)
        if not chunk:
            break
        data += chunk
    out = {"connected": True, "data": data.decode(errors="replace")}
except OSError as e:
    out = {"connected": False, "error": type(e).__name__ + ": " + str(e)}
out["ms"] = round((time.monotonic() - t) * 1000)
print(json.dumps(out))
"""


def connect_from_netns(netns, addr, port):
    """What a TCP connection from network namespace netns (a path under
    /run/netns) to addr:port gives: {"connected", "data" or "error", "ms"}."""
    proc = subprocess.run(["nsenter", f"--net={netns}", "python3", "-c", _CLIENT, addr,
                           str(port)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"the client in {netns} failed: {proc.stderr.strip()}"
    return json.loads(proc.stdout)


def boot_seconds():
    """CLOCK_BOOTTIME, the clock of /proc/uptime inside the node's
    containers (runc: one kernel, no time namespace)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Watch:
    """A loop inside a sandbox that tries TEST_HOST on the given ports, one
    after the other, then sleeps 100 ms, and prints one line per try; each
    line is stamped here with time.monotonic() as it arrives.

    The stream's timestamps lag the tries by the exec stream's latency
    (tens of milliseconds): figures are upper bounds."""

    SCRIPT = ("while :; do for p in {ports}; do "
              "if out=$(nc -w 1 {host} $p </dev/null 2>/dev/null); then echo \"$p open $out\"; "
              "else echo \"$p closed\"; fi; done; sleep 0.1; done")

    def __init__(self, kubectl, ns, pod, ports):
        script = self.SCRIPT.format(ports=" ".join(str(p) for p in ports), host=TEST_HOST)
        self.ports = tuple(ports)
        self.samples = []  # (monotonic, port, open?, line)
        self.odd = []  # lines that are not one try's outcome
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [kubectl.bin, "--kubeconfig", kubectl.kubeconfig, "-n", ns, "exec", pod, "--",
             "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.monotonic()
            words = line.split()
            if len(words) < 2 or not words[0].isdigit() or words[1] not in ("open", "closed"):
                self.odd.append(line.rstrip())
                continue
            opened = words[1] == "open"
            if opened and words[2:] != [f"{TEST_HOST}:{words[0]}"]:
                # Open means nc exited 0; the listener's line must be all
                # it printed.
                self.odd.append(line.rstrip())
            with self.lock:
                self.samples.append((now, int(words[0]), opened, line.rstrip()))

    def since(self, t, port=None):
        with self.lock:
            return [s for s in self.samples if s[0] >= t and (port is None or s[1] == port)]

    def state_after(self, t, port, timeout=10.0):
        """Waits for a try of port that began after t; its result."""
        found = wait_for(lambda: self.since(t, port), timeout=timeout,
                         what=f"a try of port {port} after the mark")
        return found[0][2]

    def settle(self, t, port, want, bound):
        """Seconds from t until port's state is want at every try after
        it, the first such try within bound; waits one more second of
        tries to see it hold."""
        def reached():
            tries = self.since(t, port)
            hits = [s for s in tries if s[2] == want]
            return hits[0] if hits else None
        first = wait_for(reached, timeout=bound, interval=0.05,
                         what=f"port {port} to be {'open' if want else 'closed'}")
        hold = time.monotonic() + 1.0
        wait_for(lambda: self.since(hold, port), timeout=10, what=f"tries of port {port}")
        after = [s for s in self.since(first[0], port) if s[2] != want]
        assert after == [], f"port {port} flipped back after {first[0] - t:.2f}s: {after}"
        return first[0] - t

    def stop(self):
        """Ends the exec; asserts every line it printed was a try's outcome."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        assert self.odd == [], f"unexpected lines from the loop: {self.odd}"


def wait_gone(kubectl, ns, kind, name, timeout=60):
    wait_for(lambda: kubectl.run("-n", ns, "get", kind, name, "--ignore-not-found", "-o", "name",
                                 check=False).stdout.strip() == "",
             timeout=timeout, interval=0.2, what=f"{kind} {ns}/{name} to be gone")


def on_node(kubectl, ns, name):
    node = kubectl.json("-n", ns, "get", "pod", name)["spec"].get("nodeName")
    assert node == NODE, f"pod {ns}/{name} runs on {node}, not {NODE}"
