"""A userspace latency proxy: asyncio TCP forwarding that delays each direction of each link.

Every chunk read from one side is written to the other ``delay`` (+ a uniform
jitter in [-jitter, +jitter]) seconds after it was read, never before the
chunk ahead of it (TCP keeps order), so a request/answer exchange costs one
RTT = 2 x delay on top of the work. Loss: a chunk is "lost" with probability
``loss`` and then arrives one retransmission timeout later (TCP retransmits;
RTO = max(200 ms, 3 x RTT), Linux's floor is 200 ms): a userspace proxy sits
above TCP and cannot drop a segment, only make it as late as a retransmitted
one would be.

Usage (one link per node; prints "ready" once listening):
    python scripts/bench/latency_proxy.py --delay-ms 10 --jitter-ms 1 --loss 0.0 \
        --link 127.0.0.1:19001=127.0.0.1:18443 --link ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    """Where the proxy listens and where it forwards, with this link's one-way behaviour."""

    listen: tuple[str, int]
    target: tuple[str, int]
    delay: float  # seconds, one way
    jitter: float = 0.0  # seconds, uniform +/-
    loss: float = 0.0  # probability a chunk needs a retransmission

    @property
    def rto(self) -> float:
        return max(0.2, 3 * 2 * self.delay)


class LatencyProxy:
    """Serves every link until stopped; ``await start()`` then ``await stop()``."""

    def __init__(self, links: list[Link], seed: int = 1) -> None:
        self.links = links
        self._draws = random.Random(seed)
        self._servers: list[asyncio.base_events.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for link in self.links:
            server = await asyncio.start_server(
                lambda r, w, link=link: self._connect(link, r, w), *link.listen
            )
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _due(self, link: Link, last: float) -> float:
        loop = asyncio.get_running_loop()
        due = loop.time() + link.delay + self._draws.uniform(-link.jitter, link.jitter)
        if link.loss and self._draws.random() < link.loss:
            due += link.rto
        return max(due, last)  # in order, as TCP delivers

    async def _connect(
        self, link: Link, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*link.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await asyncio.gather(
                self._pump(link, client_r, server_w), self._pump(link, server_r, client_w)
            )
        except asyncio.CancelledError:
            pass  # the proxy is shutting down: the connection goes with it
        finally:
            self._writers -= {client_w, server_w}
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _pump(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Read one direction; a single deliverer writes each chunk at its due time, in order."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliverer = asyncio.create_task(self._deliver(queue, writer))
        last = 0.0
        try:
            while True:
                data = await reader.read(65536)
                last = self._due(link, last)
                queue.put_nowait((last, data))
                if not data:
                    break
        except (ConnectionError, OSError):
            queue.put_nowait((last, b""))
        await deliverer

    @staticmethod
    async def _deliver(
        queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                _close(writer)
                return
            _write(writer, data)


def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if not writer.is_closing():
        writer.write(data)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        if writer.can_write_eof():
            writer.write_eof()
        writer.close()


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _serve(links: list[Link]) -> None:
    proxy = LatencyProxy(links)
    await proxy.start()
    print("ready", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay per link")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--link", action="append", default=[], help="LISTEN=TARGET host:port")
    args = parser.parse_args()
    links = []
    for item in args.link:
        listen, _, target = item.partition("=")
        links.append(
            Link(
                _endpoint(listen),
                _endpoint(target),
                args.delay_ms / 1000,
                args.jitter_ms / 1000,
                args.loss,
            )
        )
    if not links:
        sys.exit("give at least one --link LISTEN=TARGET")
    asyncio.run(_serve(links))


if __name__ == "__main__":
    main()
