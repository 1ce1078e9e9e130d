# SPDX-License-Identifier: Apache-2.0
"""kill -9 at random moments: while Sandboxes are created, changed and
deleted in batches with kubectl, the controller is SIGKILLed and started
again 2-4 times; a last controller then runs until everything converges.

The seed decides the operation mix (creates, recreates of deleted names,
image/env changes that replace pods, egress changes that only touch the
policy, deletes), which batch each kill falls in, how long after that
batch's start it lands and how long the controller stays dead. A failing
seed reproduces with KAGE_FAULT_SEEDS=<seed>."""

import os
import random
import threading
import time

import pytest

from faults.common import (IMAGES, LONG, apply_all, delete_names, egress_allow, figure,
                           sandbox, wait_converged)

SANDBOXES = int(os.environ.get("KAGE_FAULT_SANDBOXES", 300 if LONG else 60))
SEEDS = [int(s) for s in os.environ.get("KAGE_FAULT_SEEDS", "1,2,3" if LONG else "1").split(",")]
NAMESPACES = 3


def plan(seed, total):
    """The batches and kills of one seed. Each batch: specs to apply
    {(ns_index, name): (image, gen, egress)} and names to delete
    {ns_index: [name]}. Kills: (batch, seconds into it, seconds dead)."""
    rng = random.Random(seed)
    live, gone = {}, set()
    batches = []
    created, next_id = 0, 0
    while created < total:
        apply, delete, touched = {}, {}, set()
        for _ in range(rng.randint(8, 25)):
            r = rng.random()
            if created < total and (r < 0.6 or not live):
                if gone - touched and rng.random() < 0.25:
                    key = rng.choice(sorted(gone - touched))  # a name used before
                    gone.discard(key)
                else:
                    key = (rng.randrange(NAMESPACES), f"sbx-{next_id:03d}")
                    next_id += 1
                spec = (rng.choice(IMAGES), 0, rng.randrange(3))
                created += 1
            elif r < 0.85:
                choices = sorted(set(live) - touched)
                if not choices:
                    continue
                key = rng.choice(choices)
                image, gen, egress = live[key]
                what = rng.choice(["image", "env", "egress", "image+env"])
                if "image" in what:
                    image = rng.choice([i for i in IMAGES if i != image])
                if "env" in what:
                    gen += 1
                if what == "egress":
                    egress = (egress + 1) % 3
                spec = (image, gen, egress)
            else:
                choices = sorted(set(live) - touched)
                if not choices:
                    continue
                key = rng.choice(choices)
                del live[key]
                gone.add(key)
                touched.add(key)
                delete.setdefault(key[0], []).append(key[1])
                continue
            touched.add(key)
            live[key] = spec
            apply[key] = spec
        batches.append((apply, delete))
    kills = sorted(rng.sample(range(len(batches)), rng.randint(2, 4)))
    kills = [(b, rng.uniform(0, 2.5), rng.uniform(0, 3)) for b in kills]
    return batches, kills, live


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_converges(seed, kubectl, api, controllers, namespaces):
    batches, kills, final = plan(seed, SANDBOXES)
    nss = [namespaces("kill") for _ in range(NAMESPACES)]
    ctl = controllers("kill", wait=False)
    ctl.wait_synced(timeout=120)

    # The killer: at each planned moment SIGKILL, stay dead a while, start
    # again (without waiting for its caches: the next kill may land during
    # the start-up).
    batch_started = [threading.Event() for _ in batches]
    errors = []

    def killer():
        try:
            for b, delay, dead in kills:
                batch_started[b].wait()
                time.sleep(delay)
                if not ctl.running():
                    raise AssertionError(f"the controller exited by itself "
                                         f"({ctl.proc.returncode}) before kill {b}")
                ctl.kill()
                time.sleep(dead)
                ctl.start()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    t = threading.Thread(target=killer, daemon=True)
    t0 = time.monotonic()
    t.start()
    for i, (apply, delete) in enumerate(batches):
        batch_started[i].set()
        if apply:
            apply_all(kubectl, [sandbox(nss[ns], name, image, gen, egress_allow(eg))
                                for (ns, name), (image, gen, eg) in apply.items()])
        for ns, names in delete.items():
            delete_names(kubectl, nss[ns], names)
    ops = time.monotonic() - t0
    t.join(60)
    assert not t.is_alive() and not errors, f"the killer failed: {errors}"
    assert ctl.runs == len(kills) + 1
    assert ctl.running(), f"the last controller exited: {ctl.proc.returncode}"

    expect = {(nss[ns], name): sandbox(nss[ns], name, image, gen, egress_allow(eg))["spec"]
              for (ns, name), (image, gen, eg) in final.items()}
    took = wait_converged(api, nss, expect, ctl=ctl)
    assert ctl.running(), "the last controller exited"
    n_ops = sum(len(a) + sum(len(d) for d in dl.values()) for a, dl in batches)
    figure(f"kill[seed={seed}]",
           f"{SANDBOXES} creates, {n_ops} operations in {len(batches)} batches "
           f"({ops:.0f}s), {len(kills)} SIGKILLs at batches "
           f"{[(b, round(d, 1), round(z, 1)) for b, d, z in kills]}; "
           f"{len(final)} live Sandboxes converged {took:.0f}s after the last batch")
