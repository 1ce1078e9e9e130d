# SPDX-License-Identifier: Apache-2.0
"""The kubelet's probes cannot be held shut: with 200 slow connections on
the metrics port and 200 on the probe port, each sending one header byte a
second and coming back when closed, /healthz and /readyz on the probe port
still answer within 100 ms. The controller runs as the Deployment runs it
(--http-addr and --probe-addr), under its own ServiceAccount."""

import multiprocessing
import re
import socket
import subprocess
import time

import pytest

from conftest import Controller, free_port, wait_for

HEADER = b"GET /metrics HTTP/1.1\r\nHost: kage\r\nX-Slow: " + b"a" * 4096
EVERY_S = 1.0  # one header byte a second: never idle long enough for MHD's timeout
RETRY_S = 1.0  # a closed connection comes back after this


class Slow:
    """Connections from the given source addresses to 127.0.0.1:port that
    trickle HEADER and reconnect when the server closes them, as a client
    holding the server's connection slots would. Records when the server
    closed each one (seconds after it opened) and how many bytes it had sent.
    It runs in a process of its own, so that the probes are not measured
    through this interpreter's lock."""

    def __init__(self, port, sources):
        self.port = port
        self.sources = sources
        self.conns = []
        self.closed = []  # (source, seconds open, bytes sent)
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self.started = ctx.Event()
        self.results, self.child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=self.main, daemon=True)

    def open(self, src, now):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(2)
        s.connect(("127.0.0.1", self.port))  # the kernel completes it even before accept
        s.setblocking(False)
        return {"sock": s, "src": src, "opened": now, "sent": 0, "next": now, "reopen": None}

    def start(self):
        self.proc.start()
        assert self.started.wait(30), "the slow clients did not connect"
        return self

    def main(self):
        now = time.monotonic()
        self.conns = [self.open(src, now) for src in self.sources]
        self.started.set()
        self.run()
        self.child_end.send(self.closed)

    def step(self, c, now):
        if c["sock"] is None:
            if now >= c["reopen"]:
                c.update(self.open(c["src"], now))
            return
        try:
            gone = c["sock"].recv(4096) == b""
        except BlockingIOError:
            gone = False
        except OSError:
            gone = True
        if gone:
            self.closed.append((c["src"], now - c["opened"], c["sent"]))
            c["sock"].close()
            c["sock"], c["reopen"] = None, now + RETRY_S
            return
        if now >= c["next"] and c["sent"] < len(HEADER):
            try:
                c["sent"] += c["sock"].send(HEADER[c["sent"]:c["sent"] + 1])
            except (BlockingIOError, OSError):
                pass
            c["next"] = now + EVERY_S

    def run(self):
        while not self.stop.is_set():
            now = time.monotonic()
            for c in self.conns:
                self.step(c, now)
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        if self.results.poll(10):
            self.closed = self.results.recv()
        self.proc.join(timeout=10)


def accepted(pid, port):
    """Connections to port that the process pid has accepted (ss -p names
    the owner; one still in the listen backlog has none)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
                         check=True, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if re.search(rf"pid={pid},", line))


def get(port, path, timeout=2):
    """One request on a fresh connection: (status line, body, seconds)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: kage\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    took = time.monotonic() - start
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode(), took


@pytest.fixture
def alone(kage):
    """The session's controller stops for the test, so the one under test
    is the only one reconciling, and starts again after it."""
    assert kage.stop() == 0
    yield kage.kubeconfig
    kage.start()
    kage.wait_synced()


def test_probes_answer_while_slow_connections_hold_the_ports(alone, tmp_path):
    metrics, probes = free_port(), free_port()
    ctl = Controller(alone, tmp_path / "controller.log", "--http-addr", f"127.0.0.1:{metrics}",
                     "--probe-addr", f"127.0.0.1:{probes}").start()
    attackers = []
    try:
        def ready():
            try:
                return get(probes, "/readyz")[0] == "HTTP/1.1 200 OK"
            except OSError:
                return False  # not listening yet
        wait_for(ready, timeout=60, what="/readyz on the probe port")
        # The metrics port: 200 from 25 addresses, 8 each, more than its 64
        # slots. The probe port: 200 from a single address.
        attackers.append(Slow(metrics, [f"127.0.0.{2 + i % 25}" for i in range(200)]).start())
        attackers.append(Slow(probes, ["127.0.1.2"] * 200).start())
        time.sleep(2)
        held_metrics, held_probes = accepted(ctl.proc.pid, metrics), accepted(ctl.proc.pid, probes)
        # The attack is real: behind the held slots and the 136 connections
        # queued before it, a request to the metrics port gets no answer.
        with pytest.raises(TimeoutError):
            get(metrics, "/healthz", timeout=1)

        latencies = []
        end = time.monotonic() + 12  # past two header deadlines (5 s) and the reconnections
        while time.monotonic() < end:
            for path in ("/healthz", "/readyz"):
                status, body, took = get(probes, path)
                assert (status, body) == ("HTTP/1.1 200 OK", "ok\n"), (path, status, body)
                latencies.append(took)
            time.sleep(0.1)
    finally:
        for a in attackers:
            a.close()
        code = ctl.stop()
    assert code == 0, ctl.log()[-3000:]

    worst = max(latencies)
    print(f"probe requests: {len(latencies)}, worst {worst * 1000:.1f} ms, "
          f"median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms; "
          f"held: metrics {held_metrics}, probes {held_probes}")
    # Every slot of the metrics port was held; the probe port gave the one
    # address its 8 and closed the rest.
    assert held_metrics == 64
    assert held_probes == 8
    assert len(latencies) >= 100
    assert worst < 0.100, f"a probe took {worst * 1000:.1f} ms"

    # The server cut the trickling connections at the 5 s header deadline,
    # each having sent a few bytes of a 4 KiB header; on the probe port the
    # rest were closed at once.
    metrics_attack, probe_attack = attackers
    cut = [t for _, t, _ in metrics_attack.closed]
    assert len(cut) >= 64
    assert all(4.5 <= t <= 7.5 for t in cut[:64]), sorted(cut)[:5]
    refused = [t for _, t, _ in probe_attack.closed if t < 1.0]
    assert len(refused) >= 192
