# SPDX-License-Identifier: Apache-2.0
"""The API client end to end, through `kage-controller --watch`: paginated
LIST, WATCH events, reconnection after an API server restart, relist after
etcd compaction, and a rotated token file picked up without a restart."""

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import STATE, controller_command, wait_for
import cluster


class Watcher:
    """kage-controller --watch RESOURCE in the background; collects stdout lines."""

    def __init__(self, kubeconfig, *args):
        cmd = controller_command("--kubeconfig", str(kubeconfig), *args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.errors = []
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.errors), daemon=True).start()

    def _pump(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line.rstrip("\n"))

    def seen(self, prefix):
        with self.lock:
            return [l for l in self.lines if l.startswith(prefix)]

    def wait_line(self, prefix, timeout=30):
        try:
            return wait_for(lambda: self.seen(prefix), timeout=timeout,
                            what=f"a line {prefix!r}")[0]
        except AssertionError as e:
            with self.lock:
                out, err = self.lines[-15:], self.errors[-15:]
            raise AssertionError(f"{e}\nstdout tail: {out}\nstderr tail: {err}") from None

    def cache(self, timeout=10):
        """Asks for a cache dump (SIGUSR1) and returns {key: rv} and the header."""
        with self.lock:
            start = len(self.lines)
        self.proc.send_signal(signal.SIGUSR1)

        def dumped():
            with self.lock:
                tail = self.lines[start:]
            if "CACHE-END" in tail:
                return tail
            return None
        tail = wait_for(dumped, timeout=timeout, what="a cache dump")
        header = next(l for l in tail if l.startswith("CACHE-BEGIN"))
        entries = {}
        for line in tail:
            if line.startswith("CACHE "):
                _, key, rv = line.split()[:3]
                entries[key] = rv.removeprefix("rv=")
        return header, entries

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
def watcher():
    started = []

    def start(kubeconfig, *args):
        w = Watcher(kubeconfig, *args)
        started.append(w)
        return w

    yield start
    for w in started:
        code = w.stop()
        assert code == 0, f"watcher exited {code}: {w.errors[-5:]}"


def server_state(kubectl, namespace, selector):
    items = kubectl.json("-n", namespace, "get", "configmaps", "-l", selector)["items"]
    return {f"{namespace}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def make_configmaps(kubectl, namespace, names, label="e2e=client"):
    docs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": n, "labels": dict([label.split("=")])}, "data": {"n": n}}
            for n in names]
    kubectl.apply({"apiVersion": "v1", "kind": "List", "items": docs}, "-n", namespace)


def seven_synced(kubectl, namespace, watcher, how, *args):
    """Seven ConfigMaps, then a watcher started with args: its SYNCED line
    starts with "SYNCED 7 objects <how> rv=", every object was ADDED, and
    its cache is the server's state."""
    make_configmaps(kubectl, namespace, [f"cm-{i}" for i in range(7)])
    w = watcher(STATE / "kubeconfig", "--watch", "configmaps", "--namespace", namespace,
                "--selector", "e2e=client", "--page-size", "2", *args)
    line = w.wait_line("SYNCED")
    assert line.startswith(f"SYNCED 7 objects {how} rv=")
    assert sorted(l.split()[1] for l in w.seen("ADDED")) == \
        sorted(f"{namespace}/cm-{i}" for i in range(7))
    _, cache = w.cache()
    assert cache == server_state(kubectl, namespace, "e2e=client")


def test_the_cache_is_filled_by_a_streaming_list(kubectl, namespace, watcher):
    seven_synced(kubectl, namespace, watcher, "streamed")


def test_list_paginates_over_several_pages(kubectl, namespace, watcher):
    seven_synced(kubectl, namespace, watcher, "in 4 pages", "--list", "paged")


def test_a_watch_sees_add_update_and_delete(kubectl, namespace, watcher):
    w = watcher(STATE / "kubeconfig", "--watch", "configmaps", "--namespace", namespace,
                "--selector", "e2e=client")
    assert w.wait_line("SYNCED").startswith("SYNCED 0 objects streamed")
    make_configmaps(kubectl, namespace, ["watched"])
    added = w.wait_line(f"ADDED {namespace}/watched")
    kubectl.run("-n", namespace, "patch", "configmap", "watched", "--type=merge",
                "-p", '{"data":{"n":"changed"}}')
    modified = w.wait_line(f"MODIFIED {namespace}/watched")
    assert added != modified.replace("MODIFIED", "ADDED")  # a newer resourceVersion
    kubectl.run("-n", namespace, "delete", "configmap", "watched")
    w.wait_line(f"DELETED {namespace}/watched")
    _, cache = w.cache()
    assert cache == {}


def test_the_informer_reconnects_after_the_api_server_restarts(kubectl, namespace, watcher):
    make_configmaps(kubectl, namespace, ["before-0", "before-1"])
    w = watcher(STATE / "kubeconfig", "--watch", "configmaps", "--namespace", namespace,
                "--selector", "e2e=client")
    w.wait_line("SYNCED 2 objects")
    cluster.restart_apiserver()
    make_configmaps(kubectl, namespace, ["after-0", "after-1"])
    kubectl.run("-n", namespace, "delete", "configmap", "before-0")
    w.wait_line(f"ADDED {namespace}/after-1", timeout=60)
    w.wait_line(f"DELETED {namespace}/before-0", timeout=60)
    header, cache = w.cache()
    assert cache == server_state(kubectl, namespace, "e2e=client")
    assert " reconnects=0 " not in header  # it saw the stream drop and came back


def test_after_compaction_the_informer_relists(kubectl, namespace, watcher, cluster_env):
    make_configmaps(kubectl, namespace, ["old-0", "old-1", "old-2"])
    w = watcher(STATE / "kubeconfig", "--watch", "configmaps", "--namespace", namespace,
                "--selector", "e2e=client")
    w.wait_line("SYNCED 3 objects")
    header, _ = w.cache()
    assert " lists=1 relists=0 " in header
    # Freeze the watcher and cut its stream (an API server restart), so it
    # misses what happens next; change objects, compact etcd past its
    # resourceVersion and restart the API server again so its watch cache
    # cannot serve that version either.
    w.proc.send_signal(signal.SIGSTOP)
    try:
        cluster.restart_apiserver()
        kubectl.run("-n", namespace, "delete", "configmap", "old-0")
        make_configmaps(kubectl, namespace, ["new-0"])
        cluster.compact_etcd(cluster_env)
        cluster.restart_apiserver()
    finally:
        w.proc.send_signal(signal.SIGCONT)
    w.wait_line(f"DELETED {namespace}/old-0", timeout=60)
    w.wait_line(f"ADDED {namespace}/new-0", timeout=60)
    header, cache = w.cache()
    assert " lists=2 relists=1 " in header
    assert cache == server_state(kubectl, namespace, "e2e=client")
    assert any("reason=Expired" in l or "code=410" in l for l in w.seen("ERROR"))


def test_a_rotated_token_file_is_picked_up_without_restart(
        kubectl, namespace, service_account_kubectl, watcher, tmp_path):
    kubectl.run("-n", namespace, "create", "role", "cm-reader", "--verb=get,list,watch",
                "--resource=configmaps")
    first = service_account_kubectl(namespace, "first")
    second = service_account_kubectl(namespace, "second")
    for sa in ("first", "second"):
        kubectl.run("-n", namespace, "create", "rolebinding", f"{sa}-reads", "--role=cm-reader",
                    f"--serviceaccount={namespace}:{sa}")
    wait_for(lambda: second.run("-n", namespace, "get", "configmaps", check=False).returncode == 0,
             timeout=30, what="RBAC to take effect")
    token_file = Path(first.kubeconfig + ".token")
    w = watcher(first.kubeconfig, "--watch", "configmaps", "--namespace", namespace,
                "--watch-timeout", "3", "--log-level", "debug")
    w.wait_line("SYNCED")
    # Replace the token on disk, then revoke the old one: the watcher must
    # go on seeing events only if it re-read the file by itself.
    token_file.write_text(Path(second.kubeconfig + ".token").read_text())
    wait_for(lambda: any('"msg":"bearer token reloaded"' in e for e in w.errors), timeout=75,
             what="the token file to be re-read")
    kubectl.run("-n", namespace, "delete", "serviceaccount", "first")
    time.sleep(8)  # longer than two watch timeouts: every stream now uses the new token
    make_configmaps(kubectl, namespace, ["after-rotation"])
    w.wait_line(f"ADDED {namespace}/after-rotation", timeout=30)
    assert not any("Unauthorized" in e for e in w.errors)
