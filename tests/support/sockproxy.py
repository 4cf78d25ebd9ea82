"""A Unix-socket proxy in front of the Docker engine that can be stopped at a chosen request: the engine
"goes away" for driftwatch (connections reset, the socket gone) while the real engine, and whatever
the proxy let through, stay.

    with EngineProxy(tmp / "engine.sock", stop_on=b"POST /v1.41/containers/create", nth=2) as proxy:
        run driftwatch with DOCKER_HOST=proxy.url
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from types import TracebackType


class EngineProxy:
    """Forwards every connection to ``upstream``; ``stop()`` resets them all and removes the socket.

    ``stop_on``/``nth``: stop when the nth request whose bytes contain ``stop_on`` arrives, *before*
    forwarding it (``after=0``), or ``after`` seconds *after* forwarding it (the engine dies while
    that request is being served).
    """

    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock", *, stop_on: bytes | None = None,
                 nth: int = 1, after: float = 0.0) -> None:
        self.path, self.upstream = path, upstream
        self.stop_on, self.nth, self.after = stop_on, nth, after
        self.seen = 0
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    @property
    def url(self) -> str:
        """The DOCKER_HOST value for this proxy."""
        return f"unix://{self.path}"

    def __enter__(self) -> EngineProxy:
        self._server.bind(str(self.path))
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """The engine is gone: reset every connection and remove the socket."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        try:
            self._server.close()
        finally:
            if self.path.exists():
                os.unlink(self.path)
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        while not self.stopped.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if from_client and self.stop_on is not None and self.stop_on in data:
                with self._lock:
                    self.seen += 1
                    hit = self.seen == self.nth
                if hit and self.after <= 0:
                    self.stop()
                    return
                if hit:
                    threading.Timer(self.after, self.stop).start()
            try:
                dst.sendall(data)
            except OSError:
                return
