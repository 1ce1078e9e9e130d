# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the end-to-end suite: a kubectl bound to the local control
plane (tests/cluster), fresh namespaces, and ServiceAccount identities."""

import json
import os
import signal
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
        # Pods are admitted only once the namespace's "default"
        # ServiceAccount exists; kube-controller-manager makes it, late
        # after an API server restart (its watches back off).
        wait_for(lambda: kubectl.run("-n", name, "get", "serviceaccount", "default",
                                     check=False).returncode == 0,
                 timeout=120, interval=0.5, what=f"the default ServiceAccount of {name}")
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


CONTROLLER = Path(os.environ.get("KAGE_CONTROLLER", REPO / "bin" / "kage-controller"))


def controller_command(*args, binary=None):
    """The controller's command line (of binary, else CONTROLLER), under
    KAGE_E2E_WRAPPER (e.g. valgrind) if set."""
    cmd = [str(binary or CONTROLLER), *args]
    wrapper = os.environ.get("KAGE_E2E_WRAPPER")
    return wrapper.split() + cmd if wrapper else cmd


def quantity_bytes(q):
    """A memory quantity ("128Mi", "1G", "1000") in bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, mult in units.items():
        if q.endswith(suffix):
            return int(q[:-len(suffix)]) * mult
    return int(q)


def deployment_memory_limit():
    """The controller container's memory limit in manifests/deployment.yaml,
    as written ("128Mi") and in bytes."""
    import yaml
    for doc in yaml.safe_load_all((REPO / "manifests" / "deployment.yaml").read_text()):
        if doc and doc.get("kind") == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "controller":
                    q = c["resources"]["limits"]["memory"]
                    return q, quantity_bytes(q)
    raise AssertionError("no container named controller in manifests/deployment.yaml")


class MemoryCgroup:
    """A cgroup v1 memory cgroup below this process's own, limited to the
    Deployment's memory limit: the controller runs in it as it would in
    its pod, so memory it would be OOM-killed for in a cluster kills it
    here too."""

    ROOT = Path("/sys/fs/cgroup/memory")

    def __init__(self, path, limit):
        self.path = path
        self.limit = limit

    @classmethod
    def make(cls, limit):
        """(cgroup, None), or (None, why not) where this machine has none."""
        if not (cls.ROOT / "memory.limit_in_bytes").exists():
            return None, f"no cgroup v1 memory controller at {cls.ROOT}"
        own = "/"
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, where = line.split(":", 2)
            if "memory" in controllers.split(","):
                own = where
        path = cls.ROOT / own.lstrip("/") / f"kage-e2e-{os.getpid()}"
        try:
            path.mkdir(exist_ok=True)
            (path / "memory.limit_in_bytes").write_text(str(limit))
            if int((path / "memory.limit_in_bytes").read_text()) != limit:
                raise OSError("the limit did not hold")
        except OSError as e:
            return None, f"cannot make {path}: {e}"
        return cls(path, limit), None

    def join(self):
        """Moves the calling process in (a Popen preexec_fn: the controller
        is in the cgroup before its first allocation)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def read(self, name):
        return int((self.path / name).read_text())

    def oom_kills(self):
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        raise AssertionError("memory.oom_control has no oom_kill")

    def reset_peak(self):
        (self.path / "memory.max_usage_in_bytes").write_text("0")

    def remove(self):
        try:
            self.path.rmdir()
        except OSError:
            pass


_cgroup = None


def controller_cgroup():
    """The session's memory cgroup for the controller, and a line saying
    where the controller runs: (cgroup or None, line)."""
    global _cgroup
    if _cgroup is None:
        q, limit = deployment_memory_limit()
        if os.environ.get("KAGE_E2E_WRAPPER"):
            _cgroup = (None, f"kage-controller runs without a memory limit: under "
                             f"KAGE_E2E_WRAPPER, not the Deployment's {q}")
        else:
            cg, why = MemoryCgroup.make(limit)
            _cgroup = (cg, f"kage-controller runs under the Deployment's memory limit, {q}, in "
                           f"{cg.path}" if cg else
                       f"kage-controller runs without a memory limit ({why}); the "
                       f"Deployment's is {q}")
    return _cgroup


def pytest_sessionstart(session):
    """Says at the start (even under -q) whether the controller runs under
    the Deployment's memory limit."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(controller_cgroup()[1])


def peak_rss(pid):
    """The peak resident size of process pid (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


class Controller:
    """kage-controller running under its own ServiceAccount; its JSON log in a file.

    The suites test kage's decisions on Sandboxes with and without classes
    in a cluster with no default class, so they run it with
    --allow-no-class; strict=True runs it as shipped, where a Sandbox no
    class applies to gets no pod (test_tenancy.py)."""

    def __init__(self, kubeconfig, log_path, *args, strict=False, cgroup=None, binary=None):
        self.kubeconfig = kubeconfig
        self.binary = binary  # another build than CONTROLLER, or None
        self.log_path = log_path
        self.args = args
        self.strict = strict
        self.cgroup = cgroup  # a MemoryCgroup to run in, or None
        self.proc = None

    def start(self):
        self.mark = len(self.log().splitlines()) if self.log_path.exists() else 0
        self.log_file = open(self.log_path, "a")  # this run's lines start at mark
        mode = () if self.strict else ("--allow-no-class",)
        self.proc = subprocess.Popen(
            controller_command("--kubeconfig", str(self.kubeconfig), *mode, *self.args,
                               binary=self.binary),
            stdout=self.log_file, stderr=subprocess.STDOUT,
            preexec_fn=self.cgroup.join if self.cgroup else None)
        return self

    def log(self):
        return self.log_path.read_text()

    def log_lines(self):
        lines = []
        for line in self.log().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        return lines

    def wait_synced(self, timeout=60):
        wait_for(lambda: any("caches synced" in l for l in self.log().splitlines()[self.mark:]),
                 timeout=timeout,
                 what="the controller's caches to sync")

    def stop(self, timeout=60):
        """SIGTERM, then the exit code (0 expected: a clean stop)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.log_file.close()
        self.proc = None
        return code


def free_port():
    """A port free on 127.0.0.1 now, in 28000-29999: below the kernel's
    ephemeral range, so no outgoing connection takes it before the process
    it is for listens on it (the kernel's own choice, port 0, is in that
    range), and apart from the local control plane's blocks (20000-27999,
    tests/cluster/lib.sh)."""
    import random
    import socket
    for port in random.sample(range(28000, 30000), 2000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 28000-29999 on 127.0.0.1")


def install_kage(kubectl):
    """The CRD, kage's namespace, its RBAC and its admission policies, as an
    administrator would."""
    kubectl.run("apply", "-k", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=Established", "crd/sandboxes.kage.dev", "--timeout=60s")
    kubectl.run("apply", "-f", str(REPO / "manifests" / "namespace.yaml"))
    kubectl.run("apply", "-k", str(REPO / "rbac"))
    kubectl.run("apply", "-k", str(REPO / "admission"))


@pytest.fixture(scope="session")
def kage(kubectl, tmp_path_factory):
    """The controller under rbac/'s ServiceAccount (never admin) for the session.
    At the end it must stop cleanly on SIGTERM, and its log must show no 403."""
    install_kage(kubectl)
    work = tmp_path_factory.mktemp("kage")
    kc = work / "controller.kubeconfig"
    subprocess.run([str(REPO / "tests/cluster/sa-kubeconfig.sh"), "kage-system",
                    "kage-controller", str(kc), "2h"], check=True, capture_output=True, text=True)
    cgroup, _ = controller_cgroup()
    ctl = Controller(kc, work / "controller.log", "--http-addr", f"127.0.0.1:{free_port()}",
                     cgroup=cgroup).start()
    ctl.wait_synced()
    yield ctl
    code = ctl.stop()
    if cgroup:
        cgroup.remove()
    log = ctl.log()
    assert code == 0, f"controller exited {code}; log tail:\n{log[-3000:]}"
    denied = [l for l in ctl.log_lines() if l.get("code") == 403 and
              'User "system:serviceaccount:kage-system:kage-controller" cannot' in l.get("message", "")]
    assert not denied, f"the controller was refused by RBAC: {denied}"


@pytest.fixture(scope="module")
def without_controller(kage):
    """For a module that checks what the API server alone does (admission,
    defaults, status rules): the session's controller is stopped for it and
    started again after, so nothing reconciles the objects it makes."""
    assert kage.stop() == 0
    yield
    kage.start()
    kage.wait_synced()
