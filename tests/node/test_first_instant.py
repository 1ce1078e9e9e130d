# SPDX-License-Identifier: Apache-2.0
"""A sandbox is confined from its first instruction: kage writes the
policies before the pod, so a sandbox that starts by trying a port its
policy does not allow never gets through, not even in the first
milliseconds while the node's policy agent catches up with the new pod.

KAGE_NODE_OPEN_REPEATS sandboxes (default 5) are started at once; each
tries 203.0.113.10:80 in a loop from its first instruction for
KAGE_NODE_OPEN_SECONDS (default 10) seconds, every 20 ms, and logs every
success, and its first refusal, with the time (CLOCK_BOOTTIME,
/proc/uptime, 10 ms steps) it happened.

kage writes the sandbox's policy and the namespace's baseline before the
pod (checked here by resourceVersion). That alone is not enough: the
node's policy agent (kube-router) learns the pod's address from the API
server only after the pod has started, so the sandbox's command must not
run before the agent enforces the policies."""

import os

from probes import TEST_HOST, apply_all, sandbox, wait_ready
from conftest import wait_for

REPEATS = int(os.environ.get("KAGE_NODE_OPEN_REPEATS", "5"))
SECONDS = int(os.environ.get("KAGE_NODE_OPEN_SECONDS", "10"))

# First instruction: note the time; then try until SECONDS have passed.
# A success is nc exiting 0 or printing anything. read is a shell
# builtin: the clock costs no process.
LOOP = f"""read start _ </proc/uptime
echo "START $start"
end=$(( ${{start%.*}} + {SECONDS} ))
n=0
refused=
while :; do
  read now _ </proc/uptime
  [ "${{now%.*}}" -ge "$end" ] && break
  out=$(nc -w 1 {TEST_HOST} 80 </dev/null 2>/dev/null); rc=$?
  if [ "$rc" -eq 0 ] || [ -n "$out" ]; then echo "OPENED $now rc=$rc $out"
  elif [ -z "$refused" ]; then refused=1; echo "REFUSED $now"; fi
  n=$((n + 1))
  sleep 0.02
done
echo "DONE $n"
exec sleep 3600
"""


def parse(log):
    start, opened, tries, refused = None, [], None, None
    for line in log.splitlines():
        words = line.split()
        if words and words[0] == "START":
            start = float(words[1])
        elif words and words[0] == "OPENED":
            opened.append((float(words[1]), line))
        elif words and words[0] == "REFUSED":
            refused = float(words[1])
        elif words and words[0] == "DONE":
            tries = int(words[1])
    return start, opened, tries, refused


def test_a_sandbox_that_connects_from_its_first_instant_never_gets_through(
        kubectl, tenant, namespaces, real_node_class, figures):
    ns = namespaces("first")
    names = [f"eager-{i}" for i in range(REPEATS)]
    objects = [sandbox(ns, n, real_node_class, command=["sh", "-c", LOOP], egress={"allow": [
        {"cidr": f"{TEST_HOST}/32", "ports": [{"port": 443, "protocol": "TCP"}]}]})
        for n in names]
    apply_all(kubectl, objects, tenant)
    wait_ready(kubectl, objects)

    def logs(name):
        return kubectl.run("-n", ns, "logs", name, check=False).stdout

    results = {}
    for name in names:
        log = wait_for(lambda n=name: (lambda t: t if "DONE" in t else None)(logs(n)),
                       timeout=SECONDS + 60, interval=1, what=f"{name} to finish its loop")
        results[name] = parse(log)
    leaks = []
    for name, (start, opened, tries, refused) in results.items():
        assert start is not None and tries is not None, f"{name}: {logs(name)}"
        after = [round((t - start) * 1000) for t, _ in opened]
        first_refusal = "never" if refused is None else f"{(refused - start) * 1000:.0f} ms"
        figures.add("first instant", f"{name}: {tries} tries in {SECONDS} s, "
                    f"{len(opened)} got through" +
                    (f", at {after} ms after its first instruction" if opened else "") +
                    f"; first refusal at {first_refusal}")
        leaks += [f"{name} +{ms} ms: {line}" for ms, (_, line) in zip(after, opened)]
    assert all(r[2] > 0 for r in results.values())
    # kage's part: both policies were written before the pod.
    for name in names:
        pod = int(kubectl.json("-n", ns, "get", "pod", name)["metadata"]["resourceVersion"])
        for policy in (name, "kage-baseline"):
            rv = kubectl.json("-n", ns, "get", "networkpolicy", policy)["metadata"]
            assert int(rv["resourceVersion"]) < pod, f"NetworkPolicy {policy} written after pod {name}"
    assert leaks == [], (
        f"{len(leaks)} connections to port 80 got through, though kage wrote the policies "
        "before each pod: the node enforced them only after the sandbox had started:\n" +
        "\n".join(leaks))
