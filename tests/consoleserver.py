"""The console served for real: uvicorn in a thread on a free loopback port, stopped at the end."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from gateway.config import Installation, load_installation
from gateway.console.app import build_app
from gateway.console.core import ConsoleCore


@contextmanager
def console_server(config: Path | Installation, *, clock: Callable[[], float] | None = None,
                   poll_seconds: float = 0.5, ssl: tuple[str, str] | None = None) -> Iterator[str]:
    """Serve the console of ``config``; yields its base URL (``http://127.0.0.1:PORT``)."""
    inst = config if isinstance(config, Installation) else load_installation(config, mappings=False)
    kwargs = {"clock": clock} if clock is not None else {}
    app = build_app(inst, ConsoleCore(inst), poll_seconds=poll_seconds, **kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False,
        ssl_certfile=ssl[0] if ssl else None, ssl_keyfile=ssl[1] if ssl else None))
    started = threading.Event()

    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="console", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            started.set()
            break
        thread.join(0.05)
    assert started.is_set(), "the console did not start"
    try:
        yield f"{'https' if ssl else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.console.core.close()
        sock.close()
