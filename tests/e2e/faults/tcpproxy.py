# SPDX-License-Identifier: Apache-2.0
"""A TCP proxy on 127.0.0.1 for fault tests: it forwards bytes to a target
(the API server) untouched, so TLS passes through and the client verifies
the server's own certificate, and on command it

- drops every connection at once (both sides aborted: the client sees a
  reset; new connections are accepted again right away),
- stalls: stops forwarding in both directions without closing anything
  (the kernel buffers fill, so both ends simply wait),
- resumes: forwarding goes on from where it stopped, nothing lost.

It runs an asyncio loop in a thread of its own; the methods are called from
the test's thread.
"""

import asyncio
import threading


class _Conn:
    def __init__(self, client_writer, upstream_writer):
        self.writers = (client_writer, upstream_writer)

    def abort(self):
        for w in self.writers:
            if not w.transport.is_closing():
                w.transport.abort()


class TcpProxy:
    def __init__(self, target_host, target_port, host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = None
        self.accepted = 0  # connections accepted, over the proxy's life
        self.dropped = 0  # connections aborted by drop()
        self.bytes = [0, 0]  # client->server, server->client
        self._conns = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpproxy",
                                        daemon=True)
        self._flowing = None
        self._server = None

    # ---- control, from the test's thread ---------------------------------

    def _call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self):
        self._thread.start()
        self._call(self._start())
        return self

    def drop(self):
        """Aborts every open connection; returns how many there were."""
        return self._call(self._drop())

    def stall(self):
        """Stops forwarding (both directions) without closing anything."""
        self._call(self._set_flowing(False))

    def resume(self):
        self._call(self._set_flowing(True))

    @property
    def open_connections(self):
        return len(self._conns)

    def close(self):
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- the loop's side ---------------------------------------------------

    async def _start(self):
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set_flowing(self, on):
        if on:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _drop(self):
        conns = list(self._conns)
        for c in conns:
            c.abort()
        self.dropped += len(conns)
        return len(conns)

    async def _close(self):
        self._server.close()
        await self._drop()
        self._flowing.set()  # let stalled pipes see their closed sockets
        await self._server.wait_closed()

    async def _handle(self, client_r, client_w):
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        conn = _Conn(client_w, up_w)
        self._conns.add(conn)
        try:
            await asyncio.gather(self._pipe(client_r, up_w, 0, conn),
                                 self._pipe(up_r, client_w, 1, conn), return_exceptions=True)
        finally:
            self._conns.discard(conn)
            conn.abort()

    async def _pipe(self, reader, writer, direction, conn):
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                # A stall that began while this read waited holds the data.
                await self._flowing.wait()
                self.bytes[direction] += len(data)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            conn.abort()  # a reset on one side resets the other
            return
        # A clean end on one side: pass the half-close on; the other pipe
        # ends when its own read sees the peer's end.
        if not writer.transport.is_closing():
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                conn.abort()
