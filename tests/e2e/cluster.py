# SPDX-License-Identifier: Apache-2.0
"""Test-side control of the local control plane: restart components by pid
and compact etcd, the way an operator's bad day would."""

import json
import subprocess
import time
import urllib.request

from conftest import REPO


def _wait_ready(timeout=150):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run([str(REPO / "tests/cluster/up.sh"), "--check"],
                              capture_output=True)
        if proc.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the control plane did not come back")


def restart(name):
    """Stops a component (SIGTERM, waits) and starts it again with the same
    command line, by the cluster scripts' own start/stop."""
    subprocess.run([str(REPO / "tests/cluster/restart.sh"), name], check=True,
                   capture_output=True, text=True)
    _wait_ready()


def restart_apiserver():
    restart("kube-apiserver")


def compact_etcd(cluster_env):
    """Compacts etcd at its current revision through its JSON gateway."""
    url = cluster_env["ETCD_URL"]

    def post(path, body):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    # A range read of one key returns the store's current revision.
    rev = int(post("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
    post("/v3/kv/compaction", {"revision": str(rev), "physical": True})
    return rev
