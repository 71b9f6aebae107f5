"""``gateway console``: the operator's web page over the same core as the command line.

The layout::

    app.py      the ASGI application: routes, the guard each page passes (login, role, CSRF), security headers
    pages.py    one handler per page, each reading the request, asking the core, rendering a template
    core.py     what the pages read and do, through the functions the command line uses
    auth.py     password hashes, sessions, the login limiter
    passwd.py   ``gateway console passwd``: the hash into gateway.yaml
    templates/console/*.html.j2, static/console.js, static/console.css

:func:`serve` runs it with uvicorn until stopped.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from ..config import Installation, is_loopback
from ..errors import GatewayError

log = logging.getLogger("gateway")


class ConsoleRefused(GatewayError):
    """The console's configuration does not allow it to start (no users beyond loopback, missing TLS files)."""


def refusal(inst: Installation) -> str | None:
    """Why the console must not start as configured, in words, or ``None``."""
    conf = inst.console
    if not is_loopback(conf.listen) and not any(u.password_hash for u in conf.users.values()):
        return (f"the console would listen on {conf.listen}, beyond this machine, but no user has a password: "
                "set one with 'gateway console passwd NAME --role operator' first")
    if conf.tls is not None:
        for what, path in (("certificate", conf.tls.certificate), ("key", conf.tls.key)):
            if not Path(path).is_file():
                return f"the console's TLS {what} {path} does not exist"
    return None


def serve(inst: Installation, sock: socket.socket | None = None) -> None:
    """Serve the console until SIGINT/SIGTERM (uvicorn's own handling); ``sock`` is an already bound socket."""
    import uvicorn

    from .app import build_app

    problem = refusal(inst)
    if problem:
        raise ConsoleRefused(problem)
    conf = inst.console
    app = build_app(inst)
    config = uvicorn.Config(
        app, host=conf.listen, port=conf.port, log_level="warning", access_log=False, server_header=False,
        proxy_headers=False, lifespan="off",
        ssl_certfile=conf.tls.certificate if conf.tls else None, ssl_keyfile=conf.tls.key if conf.tls else None,
    )
    server = uvicorn.Server(config)
    scheme = "https" if conf.tls else "http"
    host = f"[{conf.listen}]" if ":" in conf.listen else conf.listen
    log.info("console on %s://%s:%d/ (Ctrl-C stops it)", scheme, host, conf.port if sock is None
             else sock.getsockname()[1])
    try:
        server.run(sockets=[sock] if sock is not None else None)
    finally:
        app.state.console.core.close()


__all__ = ["ConsoleRefused", "refusal", "serve"]
