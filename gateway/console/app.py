"""The console as an ASGI application: routes, the guard every page passes, and the security headers.

Starlette gives routing, requests and responses and nothing else we would have to keep up;
pages are rendered on the server with Jinja (the engine's own template library) and work without
JavaScript, except the overview's self-updating numbers. Route handlers live in
:mod:`gateway.console.pages` and call :class:`~gateway.console.core.ConsoleCore`; this module only
decides who may call them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Installation, is_loopback
from ..i18n import N_, _, language, ngettext
from .auth import LoginLimiter, Role, Session, Sessions
from .core import ConsoleCore, local_time

HERE = Path(__file__).parent
FORM_SLACK = 64 * 1024  # a form's fields around an upload
COOKIE = "gateway_console"
COOKIE_TLS = "__Host-gateway_console"  # the prefix makes browsers refuse it without Secure, or from a sub-domain

#: Sent with every answer: no inline scripts or styles, no framing, no guessing of content types, no
#: referrer leaking an input's id to another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass
class Console:
    """Everything a request needs, on ``app.state.console``."""

    inst: Installation
    core: ConsoleCore
    sessions: Sessions
    limiter: LoginLimiter
    users: dict[str, tuple[Role, str | None]]
    open_access: bool  # loopback and no users: whoever is on this machine is the operator
    tls: bool
    templates: Environment
    upload_limit: int  # bytes
    poll_seconds: float

    @property
    def cookie(self) -> str:
        return COOKIE_TLS if self.tls else COOKIE

    def render(self, name: str, request: Request, session: Session | None, status_code: int = 200,
               **context: Any) -> HTMLResponse:
        flash = list(session.flash) if session else []
        if session:
            session.flash.clear()
        html = self.templates.get_template(f"console/{name}.html.j2").render(
            request=request, session=session, flash=flash, open_access=self.open_access, lang=language(),
            operator=bool(session and session.role == "operator"), **context)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        return response


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


Handler = Callable[[Request, Session], Awaitable[Response]]


def guarded(role: Role = "viewer") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Who may call a page: a session of at least ``role``; for a POST also the session's CSRF token and, when
    the browser names one, our own origin. Without a login a GET goes to the login page, anything else is refused.
    """

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def page(request: Request) -> Response:
            console = console_of(request)
            session = console.sessions.get(request.cookies.get(console.cookie))
            fresh = False
            if (session is None or session.user is None) and console.open_access:
                session, fresh = console.sessions.create("local", "operator"), True
            if session is None or session.user is None:
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
                raise HTTPException(403, _("Please log in first."))
            if request.method == "POST":
                await check_post(request, session)
            if role == "operator" and session.role != "operator":
                raise HTTPException(403, _("Only an operator may do this; you are logged in as a viewer."))
            response = await handler(request, session)
            if fresh:
                set_cookie(console, response, session)
            return response

        return page

    return wrap


async def check_post(request: Request, session: Session) -> None:
    """A POST must come from our own page: the CSRF token of the session, and our origin if the browser says one."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise HTTPException(403, _("This form was sent from another site; nothing was done."))
    console = console_of(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > console.upload_limit + FORM_SLACK:
        raise HTTPException(413)
    form = await request.form(max_files=1, max_fields=20)
    token = form.get("csrf")
    if not session.csrf_ok(token if isinstance(token, str) else None):
        raise HTTPException(403, _("The form has expired or did not come from this console; nothing was done. "
                                   "Load the page again and repeat."))


def set_cookie(console: Console, response: Response, session: Session) -> None:
    response.set_cookie(console.cookie, session.token, httponly=True, samesite="strict", secure=console.tls,
                        path="/")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` (and HSTS over TLS) to every answer, static files and errors included."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if tls:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: States of inputs and outputs as the pages show them.
WORDS = {
    "waiting": N_("waiting"), "processing": N_("processing"), "delivering": N_("delivering"), "done": N_("done"),
    "duplicate": N_("duplicate"), "failed": N_("failed"), "staged": N_("staged"), "uploaded": N_("uploaded"),
    "delivered": N_("delivered"), "marked": N_("marked"),
}


def _word(value: object) -> str:
    return _(WORDS.get(str(value), str(value)))


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(("html", "html.j2")),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(_=_, ngettext=ngettext, local_time=local_time)
    env.filters["word"] = _word
    return env


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors as a page in the admin's language, with the status code kept."""
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    console = console_of(request)
    session = console.sessions.get(request.cookies.get(console.cookie))
    detail = {404: _("There is no such page or journal entry."),
              413: _("The file is larger than the console takes ({mb} MB).").format(
                  mb=f"{console.upload_limit / 1024 / 1024:g}")}.get(exc.status_code, exc.detail)
    return console.render("error", request, session, status_code=exc.status_code, message=detail,
                          status=exc.status_code, headers=exc.headers)


def build_app(inst: Installation, core: ConsoleCore | None = None, *, poll_seconds: float = 2.0,
              clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The console for ``inst``. ``core`` and ``clock`` are for tests (an engine of their own, a clock to move)."""
    from . import pages

    conf = inst.console
    users: dict[str, tuple[Role, str | None]] = {n: (u.role, u.password_hash) for n, u in conf.users.items()}
    console = Console(
        inst=inst,
        core=core or ConsoleCore(inst),
        sessions=Sessions(conf.session_minutes * 60, clock),
        limiter=LoginLimiter(conf.login_attempts, clock),
        users=users,
        open_access=not users and is_loopback(conf.listen),
        tls=conf.tls is not None,
        templates=templates(),
        upload_limit=int(conf.upload_mb * 1024 * 1024),
        poll_seconds=poll_seconds,
    )
    middleware = [Middleware(SecurityHeaders, tls=console.tls)]
    if is_loopback(conf.listen):
        # A web page elsewhere must not reach a loopback console by pointing its own name at 127.0.0.1.
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", conf.listen]))
    app = Starlette(
        routes=[*pages.routes(), Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
        max_body_size=console.upload_limit + 16 * FORM_SLACK,  # a body without a length, cut off while read
    )
    app.state.console = console
    return app
