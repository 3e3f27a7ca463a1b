"""A TCP proxy that a test can cut: a real network drop in front of a real server.

    with TcpProxy("127.0.0.1", 25432) as proxy:
        dsn = proxy.dsn(settings.database_dsn)   # the same database, through the proxy
        ...
        proxy.cut()       # every open connection is closed; new ones are closed at once
        ...
        proxy.restore()   # new connections go through again

Cut, the proxy still listens (its port stays its own), but a client that connects is closed
before it hears anything: libpq says "server closed the connection unexpectedly", as it does
when a server goes away. Each connection is two threads copying bytes, one per direction.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

import psycopg


class TcpProxy:
    """Listens on 127.0.0.1 (a free port: `port`) and forwards to `host`:`port`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self.connections = 0  # how many it has forwarded, all told
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    @classmethod
    def before(cls, dsn: str) -> TcpProxy:
        """A proxy in front of the PostgreSQL server a libpq DSN names."""
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
        return cls(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 5432))

    def dsn(self, dsn: str) -> str:
        """`dsn` with its host and port replaced by the proxy's."""
        return psycopg.conninfo.make_conninfo(dsn, host="127.0.0.1", port=str(self.port))

    def cut(self) -> None:
        """Close every open connection, and each new one as soon as it is made."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop listening and close everything."""
        self._closed = True
        self.cut()
        _close(self._listener)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._cut:  # cut while it connected
                    _close(client)
                    _close(server)
                    continue
                self._open |= {client, server}
                self.connections += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side closes; then close both."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
