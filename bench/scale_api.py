# SPDX-License-Identifier: Apache-2.0
"""A small, fast Kubernetes API client for bench/scale.py: the admin
kubeconfig's client certificate over http.client + ssl, one keep-alive
connection per thread, a thread pool that creates many objects at once, and
a watch in a thread that stamps, per object name, when it first looked ready.
Standard library only, so it runs under /usr/bin/python3 anywhere."""

import base64
import http.client
import json
import os
import ssl
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status


class Api:
    """The API server of a kubeconfig (as `kubectl config view --raw
    --minify -o json` prints it) with client-certificate or token auth."""

    def __init__(self, config):
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if "client-certificate-data" in user:
            # ssl wants files: a private temporary directory, removed at once.
            with tempfile.TemporaryDirectory() as d:
                cert, key = os.path.join(d, "c.crt"), os.path.join(d, "c.key")
                for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(base64.b64decode(user[field]))
                self.ctx.load_cert_chain(cert, key)
        elif "token" in user:
            self.headers["Authorization"] = f"Bearer {user['token']}"
        self.local = threading.local()

    def connect(self, timeout=60):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None):
        """One request on this thread's connection (reopened once if the
        server closed it). Returns (status, parsed body or None)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = self.connect()
            try:
                conn.request(method, path, body=data, headers=self.headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = {"raw": raw.decode(errors="replace")}
            return resp.status, parsed
        raise AssertionError("unreachable")

    def get(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise ApiError(status, json.dumps(body))
        return body

    def create(self, path, obj, retries=20):
        """POST with retries on 429/5xx/connection errors; an AlreadyExists
        after a retry counts as created. Returns the number of attempts."""
        for attempt in range(1, retries + 1):
            try:
                status, body = self.request("POST", path, obj)
            except (OSError, http.client.HTTPException):
                status, body = 0, None
            if status in (200, 201, 202) or (status == 409 and attempt > 1):
                return attempt
            if status not in (0, 429, 500, 502, 503, 504):
                raise ApiError(status, json.dumps(body))
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
        raise ApiError(status, json.dumps(body))


def create_all(api, jobs, threads=32):
    """Runs every job at once on a pool of `threads` connections. A job is
    (name, [(path, object), ...]): its objects are created in order, and
    the local monotonic time just before its first request is its start.
    Returns ({name: start}, requests sent)."""
    started = {}
    sent = [0]
    lock = threading.Lock()

    def one(job):
        name, objs = job
        started[name] = time.monotonic()
        n = 0
        for path, obj in objs:
            n += api.create(path, obj)
        with lock:
            sent[0] += n

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(one, j) for j in jobs]:
            f.result()
    return started, sent[0]


def _scan_rv(line):
    """The first resourceVersion in a watch event line: the object's."""
    i = line.find(b'"resourceVersion":"')
    if i < 0:
        return None
    j = line.find(b'"', i + 19)
    return line[i + 19:j].decode() if j > 0 else None


class Watcher(threading.Thread):
    """Watches a collection from now on and records, per object name, the
    local monotonic time of the first event where ready(object) held. The
    collection is listed first (to learn the resourceVersion and the objects
    already ready); a watch that ends is resumed, one that expired (410)
    relists."""

    def __init__(self, api, path, ready, quick=None):
        super().__init__(daemon=True)
        self.api, self.path, self.ready_fn = api, path, ready
        # A substring every ready event contains: others are not parsed.
        self.quick = quick.encode() if quick else None
        self.ready = {}
        self.stopping = False
        self.error = None
        self.listed = threading.Event()
        self.cond = threading.Condition()
        self.conn = None

    def _mark(self, obj):
        name = obj["metadata"]["name"]
        if name not in self.ready and self.ready_fn(obj):
            with self.cond:
                self.ready[name] = time.monotonic()
                self.cond.notify_all()

    def _list(self):
        rv, cont = None, ""
        while True:
            q = "?limit=500" + (f"&continue={urllib.parse.quote(cont)}" if cont else "")
            status, body = self.api.request("GET", self.path + q)
            if status != 200:
                raise ApiError(status, json.dumps(body))
            for item in body.get("items", []):
                self._mark(item)
            rv = body["metadata"]["resourceVersion"] if not cont else rv
            cont = body["metadata"].get("continue", "")
            if not cont:
                return rv

    def run(self):
        try:
            rv = self._list()
            self.listed.set()
            while not self.stopping:
                self.conn = self.api.connect(timeout=None)
                q = (f"?watch=1&allowWatchBookmarks=true&timeoutSeconds=1800"
                     f"&resourceVersion={rv}")
                self.conn.request("GET", self.path + q, headers=self.api.headers)
                resp = self.conn.getresponse()
                if resp.status != 200:
                    raise ApiError(resp.status, resp.read().decode(errors="replace"))
                gone = False
                while not self.stopping:
                    line = resp.readline()
                    if not line:
                        break
                    head = line[:48]
                    if self.quick is not None and self.quick not in line and (
                            b'"type":"ADDED"' in head or b'"type":"MODIFIED"' in head):
                        # Cannot be ready: keep the resourceVersion, skip parsing.
                        rv = _scan_rv(line) or rv
                        continue
                    ev = json.loads(line)
                    obj = ev["object"]
                    if ev["type"] == "ERROR":
                        gone = obj.get("code") == 410
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self._mark(obj)
                self.conn.close()
                if gone and not self.stopping:
                    rv = self._list()
        except Exception as e:  # reported by wait_all, not lost in a thread
            if not self.stopping:
                self.error = e
                with self.cond:
                    self.cond.notify_all()
        finally:
            self.listed.set()

    def wait_all(self, names, timeout):
        """Waits until every name is ready; returns the names still not ready."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise self.error
                missing = [n for n in names if n not in self.ready]
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self.cond.wait(min(left, 1.0))

    def stop(self):
        self.stopping = True
        if self.conn is not None:
            try:
                self.conn.sock and self.conn.sock.shutdown(2)
            except OSError:
                pass


class StampWatcher(Watcher):
    """A Watcher that stamps several moments per key: `rules` is a list of
    (label, key, predicate), where key(object) names what the object
    belongs to (or None) and predicate(object) says whether the moment has
    come; stamps[label][key] is the local monotonic time of the first
    event where it held. names[key] is the name of the object that gave
    the key its first stamp (a pod's own name, say)."""

    def __init__(self, api, path, rules):
        super().__init__(api, path, ready=None)
        self.rules = rules
        self.stamps = {label: {} for label, _, _ in rules}
        self.names = {}

    def _mark(self, obj):
        now = time.monotonic()
        for label, key_fn, pred in self.rules:
            key = key_fn(obj)
            if key is None or key in self.stamps[label] or not pred(obj):
                continue
            with self.cond:
                self.stamps[label][key] = now
                self.names.setdefault(key, obj["metadata"]["name"])
                self.cond.notify_all()

    def wait_label(self, label, names, timeout):
        """Waits until every name has the label's stamp; returns those still without."""
        deadline = time.monotonic() + timeout
        done = self.stamps[label]
        with self.cond:
            while True:
                if self.error:
                    raise self.error
                missing = [n for n in names if n not in done]
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self.cond.wait(min(left, 1.0))
