# SPDX-License-Identifier: Apache-2.0
"""The controller talks to the API server through a TCP proxy (tcpproxy.py)
that can drop every connection or stall them (no byte forwarded, nothing
closed) and resume. TLS passes through untouched.

- drop, in the middle of a burst of writes and again when all is quiet:
  the watches resume (changes made after the drop converge) and every
  sandbox's pod was created exactly once;
- stall for longer than a request timeout (30 s) in the middle of a burst,
  with Sandboxes created and changed during the stall, then resume:
  converges (deletes follow once it sees again), and again every pod was
  created exactly once.

"Exactly once" is read on the server: the test watches pods itself
(directly, not through the proxy) and counts the distinct pod uids each
Sandbox ever had; a second POST that created a second pod would show as a
second uid. The controller's "created pod" log lines (201s it saw) must
not exceed one per Sandbox either."""

import time
from urllib.parse import urlparse

import pytest

from faults.common import (IMAGES, LONG, SANDBOX_LABEL, Watcher, apply_all, created_pods,
                           delete_names, egress_allow, figure, kubeconfig_via, metric_sum,
                           metrics, sandbox, wait_converged)
from faults.tcpproxy import TcpProxy

SANDBOXES = 60 if LONG else 30  # per burst
STALL = 45  # seconds: longer than the controller's 30 s request timeout


@pytest.fixture
def proxy(cluster_env):
    u = urlparse(cluster_env["API_URL"])
    p = TcpProxy(u.hostname, u.port).start()
    yield p
    p.close()


@pytest.fixture
def proxied(proxy, controllers, sa_kubeconfig, tmp_path):
    """A controller whose every connection goes through the proxy."""
    kc = kubeconfig_via(sa_kubeconfig, proxy.port, tmp_path / "proxied.kubeconfig")

    def make(name):
        return controllers(name, kubeconfig=kc)

    return make


class PodUids:
    """Every pod uid each (namespace, name) ever had, from watches of the
    test's own (directly to the API server), with the Sandboxes' deletions
    for the story of a pod made twice."""

    def __init__(self, api, nss):
        self.nss = set(nss)
        self.w = Watcher(api, f"/api/v1/pods?labelSelector={SANDBOX_LABEL}")
        self.s = Watcher(api, "/apis/kage.dev/v1alpha1/sandboxes")

    def _pods(self):
        for o in list(self.w.initial) + [ev["object"] for _, ev in self.w.events]:
            if o["metadata"]["namespace"] in self.nss:
                yield o

    def uids(self):
        out = {}
        for o in self._pods():
            md = o["metadata"]
            out.setdefault((md["namespace"], md["name"]), set()).add(md["uid"])
        return out

    def story(self, key):
        """What happened to the pods of key, and to their owner."""
        lines, seen = [], set()
        for o in self._pods():
            md = o["metadata"]
            if (md["namespace"], md["name"]) == key and md["uid"] not in seen:
                seen.add(md["uid"])
                owner = [r["uid"] for r in md.get("ownerReferences", [])]
                lines.append(f"pod uid {md['uid']} created {md['creationTimestamp']} "
                             f"(resourceVersion {md['resourceVersion']}), owner {owner}")
        for _, ev in self.s.events:
            md = ev["object"]["metadata"]
            if ev["type"] == "DELETED" and (md["namespace"], md["name"]) == key:
                lines.append(f"Sandbox uid {md['uid']} deleted at resourceVersion "
                             f"{md['resourceVersion']}")
        return "; ".join(lines)

    def count_in(self, names):
        return sum(1 for k in self.uids() if k in names)

    def stop(self):
        self.w.stop()
        self.s.stop()


def burst(nss, lo, hi, expect):
    objs = [sandbox(nss[i % 2], f"sbx-{i:03d}", IMAGES[i % len(IMAGES)]) for i in range(lo, hi)]
    for o in objs:
        expect[(o["metadata"]["namespace"], o["metadata"]["name"])] = o["spec"]
    return objs


def changes(kubectl, nss, expect, lo, hi, new_lo, new_hi, deletes=True):
    """Policy-only changes to every 3rd of [lo, hi), new Sandboxes
    [new_lo, new_hi), and (deletes) deletes of every 5th of [lo, hi): none
    of it reaches the controller but through its watches. No pod is
    replaced (egress is policy-only), so every Sandbox keeps its first pod."""
    changed = []
    for i in range(lo, hi, 3):
        key = (nss[i % 2], f"sbx-{i:03d}")
        o = sandbox(key[0], key[1], IMAGES[i % len(IMAGES)], allow=egress_allow(1 + i % 2))
        expect[key] = o["spec"]
        changed.append(o)
    apply_all(kubectl, changed + burst(nss, new_lo, new_hi, expect))
    if deletes:
        delete_some(kubectl, nss, expect, lo, hi)


def delete_some(kubectl, nss, expect, lo, hi):
    for ns_i in (0, 1):
        gone = [i for i in range(lo + 1, hi, 5) if i % 2 == ns_i]
        delete_names(kubectl, nss[ns_i], [f"sbx-{i:03d}" for i in gone])
        for i in gone:
            del expect[(nss[ns_i], f"sbx-{i:03d}")]


def wait_rewatched(ctl, before, timeout=60):
    """Until the controller has opened its four watches anew (after a drop),
    and a moment for them to be established: changes made before that
    could reach it in any order across resources, which no controller can
    tell from a real sequence."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics(ctl.port)["kage_api_watches_total"] >= before + 4:
            time.sleep(1)
            return
        time.sleep(0.1)
    raise AssertionError("the controller did not open its watches again after the drop")


def assert_created_once(ctl, pods, nss):
    uids = pods.uids()
    twice = [k for k, v in uids.items() if len(v) != 1]
    assert not twice, "sandboxes whose pod was created more than once:\n" + \
        "\n".join(f"{k[0]}/{k[1]}: {pods.story(k)}" for k in twice)
    logged = {k: n for k, n in created_pods(ctl).items()
              if k.split("/")[0] in nss and n > 1}
    assert not logged, f"more than one \"created pod\" per sandbox: {logged}"
    return len(uids)


def wait_for_pods(pods, names, at_least, timeout=60):
    deadline = time.monotonic() + timeout
    while pods.count_in(names) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)


def test_dropped_connections_resume_without_duplicate_writes(kubectl, api, proxy, proxied,
                                                             namespaces):
    nss = [namespaces("drop") for _ in range(2)]
    pods = PodUids(api, nss)
    ctl = proxied("proxy-drop")
    before = metrics(ctl.port)
    expect = {}
    n = SANDBOXES

    # A burst, and every connection dropped in the middle of it.
    objs = burst(nss, 0, n, expect)
    apply_all(kubectl, objs)
    wait_for_pods(pods, set(expect), n // 5)
    mid = proxy.drop()
    took1 = wait_converged(api, nss, expect, ctl=ctl)

    # All quiet: dropped again; what follows reaches the controller only
    # through watches opened anew.
    watches = metrics(ctl.port)["kage_api_watches_total"]
    quiet = proxy.drop()
    wait_rewatched(ctl, watches)
    changes(kubectl, nss, expect, 0, n, n, n + n // 2)
    took2 = wait_converged(api, nss, expect, ctl=ctl)
    pods.stop()
    assert ctl.running()
    assert mid >= 1 and quiet >= 1, (mid, quiet)
    after = metrics(ctl.port)
    restarts = metric_sum(after, "kage_watch_restarts_total") - \
        metric_sum(before, "kage_watch_restarts_total")
    assert restarts >= 4, f"the watches were not reopened ({restarts})"
    total = assert_created_once(ctl, pods, nss)
    creates = after['kage_writes_total{kind="create"}'] - before['kage_writes_total{kind="create"}']
    conflicts = metric_sum(after, "kage_api_responses_total", verb="POST", code="409")
    figure("proxy[drop]",
           f"{total} sandboxes, each pod created once; dropped {mid} connection(s) mid-burst "
           f"and {quiet} when quiet; converged in {took1:.0f}s and {took2:.0f}s; "
           f"{restarts:.0f} watch restarts, {creates:.0f} create writes "
           f"(minimum {2 * total + len(nss)}), {conflicts:.0f} POST 409s, "
           f"{proxy.accepted} connections accepted")


def test_stalled_connections_resume_without_duplicate_writes(kubectl, api, proxy, proxied,
                                                             namespaces):
    nss = [namespaces("stall") for _ in range(2)]
    pods = PodUids(api, nss)
    ctl = proxied("proxy-stall")
    before = metrics(ctl.port)
    expect = {}
    n = SANDBOXES

    # Stalled in the middle of a burst, with requests in flight; changes
    # keep coming while nothing moves; resumed after more than a request
    # timeout. (Sandboxes are deleted only once the controller sees again:
    # one deleted while it is blind may get children from a reconcile that
    # still sees it, in any controller, until the garbage collector
    # removes them.)
    objs = burst(nss, 0, n, expect)
    apply_all(kubectl, objs)
    wait_for_pods(pods, set(expect), n // 5)
    t0 = time.monotonic()
    proxy.stall()
    stalled_with = pods.count_in(set(expect))
    try:
        changes(kubectl, nss, expect, 0, n, n, n + n // 2, deletes=False)
        time.sleep(max(0.0, STALL - (time.monotonic() - t0)))
        during = metrics(ctl.port)  # /metrics does not go through the proxy
    finally:
        proxy.resume()
    stalled = time.monotonic() - t0
    took = wait_converged(api, nss, expect, ctl=ctl)
    delete_some(kubectl, nss, expect, 0, n)
    wait_converged(api, nss, expect, ctl=ctl)
    pods.stop()
    assert ctl.running()
    after = metrics(ctl.port)
    timeouts = metric_sum(during, "kage_api_responses_total", code="0") - \
        metric_sum(before, "kage_api_responses_total", code="0")
    total = assert_created_once(ctl, pods, nss)
    creates = after['kage_writes_total{kind="create"}'] - before['kage_writes_total{kind="create"}']
    conflicts = metric_sum(after, "kage_api_responses_total", verb="POST", code="409")
    retries = after["kage_api_retries_total"] - before["kage_api_retries_total"]
    figure("proxy[stall]",
           f"{total} sandboxes, each pod created once; stalled {stalled:.0f}s with "
           f"{stalled_with}/{n} pods made, {timeouts:.0f} request(s) timed out during the stall, "
           f"{retries:.0f} retries; converged {took:.0f}s after the resume; {creates:.0f} create "
           f"writes (minimum {2 * total + len(nss)}), {conflicts:.0f} POST 409s")
    assert timeouts >= 1, "no request was in flight through the stall: the test missed its aim"
