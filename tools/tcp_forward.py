"""A TCP forward, from an address containers reach to one only the host reaches.

SAM's containers sit on the Docker bridge; the local AWS endpoints listen on 127.0.0.1. Listening
on the bridge's address (e.g. 172.17.0.1) and copying bytes both ways to 127.0.0.1 connects them
without exposing the endpoints to any other network (no 0.0.0.0) and without socat.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # the peer finished sending: pass the half-close on
    except (ConnectionError, OSError):
        writer.close()


class TcpForward:
    """Forwards `listen_host:port` to `target_host:port` for each port, in a thread of its own."""

    def __init__(self, listen_host: str, ports: list[int], target_host: str = "127.0.0.1") -> None:
        self.listen_host = listen_host
        self.ports = ports
        self.target_host = target_host
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-forward", daemon=True)

    def start(self) -> TcpForward:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)  # a port that cannot be bound fails here, in the caller
        return self

    async def _listen(self) -> None:
        for port in self.ports:
            server = await asyncio.start_server(
                lambda r, w, port=port: self._connect(r, w, port), self.listen_host, port, reuse_address=True
            )
            self._servers.append(server)

    async def _connect(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, port: int) -> None:
        try:
            target_r, target_w = await asyncio.open_connection(self.target_host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, target_w), _pipe(target_r, client_w), return_exceptions=True)
        for writer in (client_w, target_w):
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            with contextlib.suppress(Exception):
                await asyncio.gather(*(s.wait_closed() for s in self._servers))

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
