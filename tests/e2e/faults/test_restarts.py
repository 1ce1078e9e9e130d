# SPDX-License-Identifier: Apache-2.0
"""The control plane restarts under the controller: kube-apiserver (every
connection and watch breaks, the new server's watch cache starts afresh)
and, separately, etcd (the API server loses its store for a while). Both
happen while Sandboxes are being created; more are created, changed and
deleted after. The controller must not exit, must reconnect (and relist
where its resourceVersion is gone), and converge with nothing lost."""

import threading
import time

import pytest

import cluster
from faults.common import (IMAGES, LONG, apply_all, delete_names, figure, metric_sum, metrics,
                           sandbox, utc_now, wait_converged)

SANDBOXES = 100 if LONG else 40
BATCH = 10
RESOURCES = ("sandboxes", "pods", "networkpolicies", "sandboxclasses")


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restart_mid_run(component, kubectl, api, controllers, namespaces):
    nss = [namespaces("restart") for _ in range(2)]
    ctl = controllers(f"restart-{component}")
    before = metrics(ctl.port)
    expect = {}

    def create(lo, hi):
        objs = [sandbox(nss[i % 2], f"sbx-{i:03d}", IMAGES[i % len(IMAGES)])
                for i in range(lo, hi)]
        for o in objs:
            expect[(o["metadata"]["namespace"], o["metadata"]["name"])] = o["spec"]
        apply_all(kubectl, objs)

    # A first third, then the restart begins while the rest is created.
    third = SANDBOXES // 3
    for lo in range(0, third, BATCH):
        create(lo, min(lo + BATCH, third))
    errors = []
    restarted = threading.Event()

    def restart():
        began = utc_now()
        try:
            cluster.restart(component)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        # A restarted API server refuses requests until its RBAC cache has
        # synced: such a 403 is the server's start-up, not an RBAC gap.
        time.sleep(2)
        ctl.rbac_exempt.append((began, utc_now()))
        restarted.set()

    t0 = time.monotonic()
    t = threading.Thread(target=restart, daemon=True)
    t.start()
    lo = third
    while lo < SANDBOXES and not (restarted.is_set() and lo >= 2 * third):
        create(lo, min(lo + BATCH, SANDBOXES))
        lo += BATCH
    t.join(300)
    down = time.monotonic() - t0
    assert not t.is_alive() and not errors, f"restarting {component} failed: {errors}"
    assert ctl.running(), f"the controller exited ({ctl.proc.returncode}) during the restart"

    # After the restart: the rest, changes to earlier ones, deletes.
    for lo2 in range(lo, SANDBOXES, BATCH):
        create(lo2, min(lo2 + BATCH, SANDBOXES))
    changed = []
    for i in range(0, third, 3):
        o = sandbox(nss[i % 2], f"sbx-{i:03d}", IMAGES[(i + 1) % len(IMAGES)], gen=1)
        expect[(nss[i % 2], f"sbx-{i:03d}")] = o["spec"]
        changed.append(o)
    apply_all(kubectl, changed)
    gone = [i for i in range(1, third, 5)]
    for ns_i in (0, 1):
        names = [f"sbx-{i:03d}" for i in gone if i % 2 == ns_i]
        if names:
            delete_names(kubectl, nss[ns_i], names)
    for i in gone:
        del expect[(nss[i % 2], f"sbx-{i:03d}")]

    took = wait_converged(api, nss, expect, ctl=ctl)
    assert ctl.running(), f"the controller exited ({ctl.proc.returncode})"
    assert ctl.runs == 1
    after = metrics(ctl.port)
    restarts = {r: metric_sum(after, "kage_watch_restarts_total", resource=r) -
                metric_sum(before, "kage_watch_restarts_total", resource=r) for r in RESOURCES}
    relists = {r: metric_sum(after, "kage_relists_total", resource=r) -
               metric_sum(before, "kage_relists_total", resource=r) for r in RESOURCES}
    if component == "kube-apiserver":
        # Every watch broke with the server: each informer came back.
        assert all(n >= 1 for n in restarts.values()), restarts
    figure(f"restart[{component}]",
           f"{len(expect)} live Sandboxes; restart took {down:.0f}s; converged {took:.0f}s "
           f"after the last change; watch restarts {restarts}, relists {relists}")
