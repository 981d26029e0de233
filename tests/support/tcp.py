"""A throwaway TCP server for tests of clients: what a service looks like up to where a client stops."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator

__all__ = ["tcp_server"]


@contextlib.contextmanager
def tcp_server(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """Listens on a free 127.0.0.1 port (yielded) and gives each connection, one at a time, to
    `handle(conn, stop)`; `stop` is set when the block ends (a handler that holds a connection waits
    on it). The connection is closed after the handler; its OSErrors are the client's doing."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)  # how often the accept loop looks at `stop`, not a deadline
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), conn:
                handle(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
