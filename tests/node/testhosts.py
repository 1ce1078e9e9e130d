#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The test hosts' TCP listeners: on each ADDRESS:PORT, every accepted
connection gets exactly one line "ADDRESS:PORT\\n" and is closed, so that a
client learns which listener it reached (after any DNAT) from what it reads.

  testhosts.py --pid-file F --ready-file F ADDRESS:PORT...

Runs until SIGTERM or SIGINT (exit 0). Writes its pid to --pid-file at once
and creates --ready-file once every socket listens; a socket that cannot be
bound ends it with status 1 and a message naming the address.
"""
import argparse
import asyncio
import os
import signal
import sys


def endpoint(text):
    addr, sep, port = text.rpartition(":")
    if not sep or not addr:
        raise argparse.ArgumentTypeError(f"want ADDRESS:PORT, got {text!r}")
    try:
        n = int(port, 10)
    except ValueError:
        n = -1
    if not 0 < n < 65536:
        raise argparse.ArgumentTypeError(f"the port of {text!r} is not 1..65535")
    return addr, n


def greeter(line):
    """A connection handler that sends line and closes."""

    async def greet(reader, writer):
        try:
            writer.write(line)
            await writer.drain()
        except OSError:
            pass  # the client went away first: nothing to tell it
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    return greet


async def serve(endpoints, ready_file):
    servers = []
    for addr, port in endpoints:
        try:
            servers.append(await asyncio.start_server(
                greeter(f"{addr}:{port}\n".encode()), addr, port, reuse_address=True))
        except OSError as e:
            print(f"testhosts: cannot listen on {addr}:{port}: {e.strerror}", file=sys.stderr)
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with open(ready_file, "w") as f:
        f.write(" ".join(f"{a}:{p}" for a, p in endpoints) + "\n")
    print("testhosts: listening on " + " ".join(f"{a}:{p}" for a, p in endpoints), flush=True)
    await stop.wait()
    for s in servers:
        s.close()
        await s.wait_closed()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pid-file", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("endpoints", nargs="+", type=endpoint, metavar="ADDRESS:PORT")
    args = p.parse_args()
    with open(args.pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    sys.exit(asyncio.run(serve(args.endpoints, args.ready_file)))


if __name__ == "__main__":
    main()
