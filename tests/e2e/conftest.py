"""Fixtures for the end-to-end suite: a kubectl bound to the local control
plane (tests/cluster), fresh namespaces, and ServiceAccount identities."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("KAGE_CLUSTER_DIR", REPO / ".cluster"))


def read_env():
    env = {}
    path = STATE / "env"
    if not path.exists():
        pytest.exit(f"no local cluster at {STATE}: run make cluster-up", returncode=2)
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


class Kubectl:
    """Runs the pinned kubectl against the local cluster with one identity."""

    def __init__(self, bin_dir, kubeconfig):
        self.bin = str(Path(bin_dir) / "kubectl")
        self.kubeconfig = str(kubeconfig)

    def run(self, *args, input=None, check=True, timeout=120):
        cmd = [self.bin, "--kubeconfig", self.kubeconfig, *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def json(self, *args, **kw):
        return json.loads(self.run(*args, "-o", "json", **kw).stdout)

    def apply(self, manifest, *args, check=True):
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "-f", "-", *args, input=text, check=check)

    def create(self, manifest, *args, check=True):
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("create", "-f", "-", *args, input=text, check=check)


def wait_for(predicate, timeout=60.0, interval=0.25, what="condition"):
    """Polls predicate until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def cluster_env():
    return read_env()


@pytest.fixture(scope="session")
def kubectl(cluster_env):
    return Kubectl(cluster_env["BIN_DIR"], STATE / "kubeconfig")


@pytest.fixture
def make_namespace(kubectl):
    """Creates namespaces with the given labels; deletes them afterwards."""
    created = []

    def make(prefix="e2e", labels=None):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        kubectl.create({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}},
        })
        created.append(name)
        return name

    yield make
    for name in created:
        kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(make_namespace):
    return make_namespace()


@pytest.fixture
def service_account_kubectl(kubectl, cluster_env, tmp_path):
    """Makes a ServiceAccount and a kubectl that acts as it (TokenRequest)."""

    def make(ns, name):
        kubectl.run("-n", ns, "create", "serviceaccount", name)
        out = tmp_path / f"{ns}-{name}.kubeconfig"
        subprocess.run(
            [str(REPO / "tests/cluster/sa-kubeconfig.sh"), ns, name, str(out), "1h"],
            check=True, capture_output=True, text=True,
        )
        return Kubectl(cluster_env["BIN_DIR"], out)

    return make
