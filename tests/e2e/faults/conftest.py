# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the fault tests: the test's own controllers (the session's
is stopped meanwhile), restricted namespaces that are gone again after the
test, and the admin API client."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, Controller, free_port
from faults.common import FIGURES, RESTRICTED, Api, rbac_denials

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path, config):
    """The fault tests run when asked for: KAGE_FAULTS=short|long (make
    test-faults, make test) or a path inside faults/ on the command line;
    a plain run of the e2e suite leaves them out."""
    if os.environ.get("KAGE_FAULTS"):
        return None
    base = config.invocation_params.dir
    for arg in config.args:
        p = (base / arg.split("::")[0]).resolve()
        if p == HERE or HERE in p.parents:
            return None
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return True
    return None


class Ctl(Controller):
    """A controller of a fault test: every start on a fresh /metrics port,
    SIGKILL on demand; all runs share one log file."""

    def __init__(self, kubeconfig, log_path, *extra):
        super().__init__(kubeconfig, log_path)
        self.extra = extra
        self.port = None
        self.runs = 0
        # (from, to) UTC log timestamps in which an RBAC refusal is the API
        # server's (a restarted server refuses until its RBAC cache syncs).
        self.rbac_exempt = []

    def start(self):
        self.port = free_port()
        self.args = ("--http-addr", f"127.0.0.1:{self.port}", *self.extra)
        self.runs += 1
        return super().start()

    def kill(self):
        """SIGKILL: no clean-up, no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log_file.close()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def api():
    a = Api()
    yield a
    a.close()


@pytest.fixture(scope="session")
def sa_kubeconfig(kage, tmp_path_factory):
    """The controller's ServiceAccount identity (never admin), with a token
    that outlasts the long form."""
    kc = tmp_path_factory.mktemp("faults") / "controller.kubeconfig"
    subprocess.run([str(REPO / "tests/cluster/sa-kubeconfig.sh"), "kage-system",
                    "kage-controller", str(kc), "8h"], check=True, capture_output=True, text=True)
    return kc


@pytest.fixture
def controllers(kage, sa_kubeconfig, tmp_path):
    """Starts this test's controllers (make(name, *flags, kubeconfig=...));
    the session's controller is stopped for the test and started again
    after. At the end every one still running must stop cleanly on SIGTERM,
    and no log may show an RBAC refusal."""
    assert kage.stop() == 0
    started = []

    def make(name="ctl", *extra, kubeconfig=None, wait=True):
        ctl = Ctl(kubeconfig or sa_kubeconfig, tmp_path / f"{name}.log", *extra).start()
        started.append(ctl)
        if wait:
            ctl.wait_synced(timeout=120)
        return ctl

    yield make
    failures = []
    for ctl in started:
        if ctl.proc is not None:
            code = ctl.stop(timeout=90)
            if code != 0:
                failures.append(f"{ctl.log_path.name}: exit {code} on SIGTERM")
        denied = [d for d in rbac_denials(ctl)
                  if not any(a <= d.get("ts", "") <= b for a, b in ctl.rbac_exempt)]
        if denied:
            failures.append(f"{ctl.log_path.name}: refused by RBAC: {denied[:3]}")
    kage.start()
    kage.wait_synced(timeout=120)
    assert not failures, failures


@pytest.fixture
def namespaces(kubectl, api):
    """Makes restricted namespaces (make(prefix)); afterwards deletes them
    and waits until they are gone, so the next test starts on a quiet
    cluster."""
    made = []

    def make(prefix="fault"):
        import uuid
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        kubectl.create({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": RESTRICTED}})
        made.append(name)
        return name

    yield make
    for ns in made:
        kubectl.run("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    deadline = time.monotonic() + 300
    for ns in made:
        while time.monotonic() < deadline and api.get_or_none(f"/api/v1/namespaces/{ns}"):
            time.sleep(1)


@pytest.fixture(autouse=True)
def no_sandbox_class(kage, api):
    """The fault tests assert kage's class-less rendering exactly: a
    SandboxClass left by another test would change it."""
    classes = api.items("/apis/kage.dev/v1alpha1/sandboxclasses")
    assert not classes, f"SandboxClasses exist: {[c['metadata']['name'] for c in classes]}"


def pytest_terminal_summary(terminalreporter):
    """The figures the fault tests measured (timings, counts), at the end."""
    if FIGURES:
        terminalreporter.section("kage fault-test figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
