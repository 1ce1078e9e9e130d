# SPDX-License-Identifier: Apache-2.0
"""Memory: the controller handles 100 sandboxes under valgrind, then exits
on SIGTERM with nothing lost (definitely or indirectly) and no invalid
access. (The ASan/UBSan build runs the other suites: see run.sh.)"""

import json
import re
import shutil

import pytest

from conftest import Controller, wait_for

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed")
def test_a_hundred_sandboxes_under_valgrind_lose_nothing(kubectl, kage, make_namespace,
                                                          tmp_path, monkeypatch):
    ns = make_namespace("memcheck", RESTRICTED)
    vlog = tmp_path / "valgrind.log"
    monkeypatch.setenv("KAGE_E2E_WRAPPER",
                       f"valgrind --leak-check=full --show-leak-kinds=definite,indirect "
                       f"--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "
                       f"--log-file={vlog}")
    assert kage.stop() == 0
    ctl = Controller(kage.kubeconfig, tmp_path / "controller.log", "--http-addr", "").start()
    monkeypatch.delenv("KAGE_E2E_WRAPPER")  # only this controller runs under valgrind
    try:
        ctl.wait_synced(timeout=120)
        items = [{"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
                  "metadata": {"name": f"m-{i:03d}"},
                  "spec": {"image": "python:3.12-slim",
                           "resources": {"cpu": "100m", "memory": "128Mi"},
                           "egress": {"allow": [{"cidr": "203.0.113.0/24",
                                                 "ports": [{"port": 443}]}]}}}
                 for i in range(100)]
        kubectl.run("-n", ns, "create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items}), timeout=300)

        def ready():
            sbxs = kubectl.json("-n", ns, "get", "sandboxes")["items"]
            return sum(1 for s in sbxs for c in s.get("status", {}).get("conditions", [])
                       if c["type"] == "Ready" and c["status"] == "True") == 100
        wait_for(ready, timeout=600, interval=2, what="100 Ready sandboxes under valgrind")
    finally:
        code = ctl.stop(timeout=180)
        kage.start()
        kage.wait_synced()
    text = vlog.read_text()
    assert code == 0, f"controller exited {code} under valgrind:\n{text[-4000:]}"
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    assert summary and summary.group(1) == "0", text[-4000:]
    assert re.search(r"definitely lost: 0 bytes in 0 blocks", text) or \
        "All heap blocks were freed" in text, text[-4000:]
    assert re.search(r"indirectly lost: 0 bytes in 0 blocks", text) or \
        "All heap blocks were freed" in text, text[-4000:]
