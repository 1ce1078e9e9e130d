# SPDX-License-Identifier: Apache-2.0
"""Making sandboxes and plain pods on the real node, and trying connections
from inside them (kubectl exec) and from the machines around them (the
test hosts' and the node's network namespaces).

The test hosts (tests/node/testhosts.sh) answer every accepted TCP
connection with exactly one line, "<address>:<port>", and close it; busybox
nc prints that line and exits 0. A connection the policies deny prints
nothing and exits non-zero. Every check asserts both."""

import json
import os
import subprocess
import threading
import time

from conftest import API_VERSION, NODE, PROBE_IMAGE, wait_for

# A sandbox that runs Watch's loop (a try every 100 ms, each a fork of nc):
# at the class's 20m of CPU the kernel throttles the loop and its tries
# drift apart by most of a second.
WATCHED = {"cpu": "250m", "memory": "32Mi", "ephemeralStorage": "64Mi"}
TEST_HOST = "203.0.113.10"  # listens on TCP 80, 443, 8000, 8050, 8100, 9000
EXCEPTED_HOST = "203.0.113.7"  # listens on TCP 443
OUTSIDE_DNS = "198.51.100.53"  # answers any A query with TEST_HOST
# tests/node/lib.sh's names (KAGE_TESTHOSTS_NETNS as there).
NETNS_TESTHOSTS = f"/run/netns/{os.environ.get('KAGE_TESTHOSTS_NETNS', 'kage-testhosts')}"
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


def apply_all(kubectl, objects, tenant):
    """Writes the Sandboxes as the tenant and the other objects as the
    admin, each set in one request: the node starts them at once."""
    sandboxes = [o for o in objects if o["kind"] == "Sandbox"]
    others = [o for o in objects if o["kind"] != "Sandbox"]
    for who, items in ((tenant, sandboxes), (kubectl, others)):
        if items:
            who.apply({"apiVersion": "v1", "kind": "List", "items": items})


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


def tries(kubectl, ns, pod, targets, timeout=2):
    """Connects from the pod to every (addr, port) of targets at once
    (busybox nc -w timeout, one exec); {(addr, port): (exit code, output)}."""
    script = "".join(
        f"( out=$(nc -w {timeout} {a} {p} </dev/null 2>/dev/null); echo \"{a} {p} $? $out\" ) & "
        for a, p in targets) + "wait"
    proc = exec_in(kubectl, ns, pod, script)
    assert proc.returncode == 0, f"exec in {ns}/{pod} failed: {proc.stderr.strip()}"
    got = {}
    for line in proc.stdout.splitlines():
        a, p, rc, out = (line.split(" ", 3) + [""])[:4]
        got[(a, int(p))] = (int(rc), out)
    assert set(got) == set(targets), f"not every try reported: {proc.stdout!r}"
    return got


def outcome(rc, out, line):
    """"open": nc exited 0 having printed exactly the listener's line;
    "blocked": it failed and printed nothing; anything else, as it was."""
    if (rc, out) == (0, line):
        return "open"
    if rc != 0 and out == "":
        return "blocked"
    return f"exit {rc}, output {out!r}"


def expect(kubectl, ns, pod, want, answer=None):
    """Asserts, for each (addr, port): open in want, that the pod reaches
    it (the listener's line: "<addr>:<port>", or answer) or does not."""
    got = tries(kubectl, ns, pod, list(want))
    seen = {t: outcome(rc, out, answer or f"{t[0]}:{t[1]}") for t, (rc, out) in got.items()}
    assert seen == {t: "open" if ok else "blocked" for t, ok in want.items()}, \
        f"from {ns}/{pod}"


def assert_connects(kubectl, ns, pod, addr, port, answer=None):
    expect(kubectl, ns, pod, {(addr, port): True}, answer)


def assert_blocked(kubectl, ns, pod, addr, port):
    expect(kubectl, ns, pod, {(addr, port): False})


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
    """A loop inside a sandbox that starts a try of TEST_HOST on each of
    the given ports every 100 ms, each in the background with a 1 s
    timeout, and prints one line per try: the port, the time the try
    began (CLOCK_BOOTTIME from /proc/uptime, 10 ms steps, the clock of
    boot_seconds() here) and its outcome.

    Tries run side by side because a denied one may take the whole
    timeout: kube-router REJECTs, but the node's kernel rate-limits the
    ICMP errors it answers with (net.ipv4.icmp_ratelimit), so after a few
    refusals the rest go unanswered. Times are the tries' starts, so a
    slow refusal does not blur when a change took effect."""

    SCRIPT = ("while :; do read s _ </proc/uptime; for p in {ports}; do ( "
              "if out=$(nc -w 1 {host} $p </dev/null 2>/dev/null); then echo \"$p $s open $out\"; "
              "else echo \"$p $s closed\"; fi ) & done; sleep 0.1; done")
    TIMEOUT = 1.0  # nc -w: a try's outcome is known this long after it began

    def __init__(self, kubectl, ns, pod, ports):
        script = self.SCRIPT.format(ports=" ".join(str(p) for p in ports), host=TEST_HOST)
        self.ports = tuple(ports)
        self.samples = []  # (boottime the try began, port, open?, line)
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
            words = line.split()
            if len(words) < 3 or not words[0].isdigit() or words[2] not in ("open", "closed"):
                self.odd.append(line.rstrip())
                continue
            opened = words[2] == "open"
            if opened and words[3:] != [f"{TEST_HOST}:{words[0]}"]:
                # Open means nc exited 0; the listener's line must be all
                # it printed.
                self.odd.append(line.rstrip())
            with self.lock:
                self.samples.append((float(words[1]), int(words[0]), opened, line.rstrip()))

    def since(self, t, port=None, until=None):
        """The tries of port that began at t or later (and before until),
        in the order they began."""
        with self.lock:
            got = [s for s in self.samples if s[0] >= t and (until is None or s[0] < until) and
                   (port is None or s[1] == port)]
        return sorted(got)

    def widest_gap(self, port, start, end):
        """The longest time in [start, end] with no try of port beginning:
        how continuously the port was watched."""
        times = [start] + [s[0] for s in self.since(start, port, end)] + [end]
        return max(b - a for a, b in zip(times, times[1:]))

    def complete(self, until):
        """Waits until every try that began before until has reported."""
        wait_for(lambda: boot_seconds() > until + self.TIMEOUT + 1.0, timeout=until -
                 boot_seconds() + self.TIMEOUT + 5, interval=0.05, what="the tries to report")

    def state_after(self, t, port, timeout=10.0):
        """The outcome of the first try of port that began after t."""
        found = wait_for(lambda: self.since(t, port), timeout=timeout,
                         what=f"a try of port {port} after the mark")
        self.complete(found[0][0])
        return self.since(t, port)[0][2]

    def settle(self, t, port, want, bound, hold=1.0):
        """Seconds from t (boot time) to the first try of port whose outcome
        is want, within bound; every try that began after it, for hold
        seconds more, must have the same outcome."""
        def reached():
            hits = [s for s in self.since(t, port) if s[2] == want]
            return hits[0] if hits else None
        first = wait_for(reached, timeout=bound + self.TIMEOUT + 1, interval=0.05,
                         what=f"port {port} to be {'open' if want else 'closed'}")
        self.complete(first[0] + hold)
        # An earlier try that began after t and reported late may still
        # be the first with the outcome.
        first = [s for s in self.since(t, port) if s[2] == want][0]
        took = first[0] - t
        assert took <= bound, f"port {port} took {took:.2f}s, more than {bound}s"
        flips = [s for s in self.since(first[0], port) if s[2] != want]
        assert flips == [], f"port {port} flipped back after {took:.2f}s: {flips}"
        return took

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
