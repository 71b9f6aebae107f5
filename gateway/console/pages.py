"""The console's pages: each reads the request, asks :class:`~gateway.console.core.ConsoleCore`, renders.

Downloads go by journal id only (``/outputs/17/file``): no handler takes a path from the
request, so nothing but a file the journal names can be served.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import InputError
from ..i18n import _
from ..journal import InputState, JournalQuery
from .app import check_post, console_of, guarded, set_cookie
from .auth import Session, check_login
from .core import day_bounds, local_time

PAGE_SIZE = 50
STATES = [str(s) for s in InputState]
UPLOAD_CHUNK = 64 * 1024


def routes() -> list[Route]:
    return [
        Route("/", overview, methods=["GET"]),
        Route("/api/overview", overview_json, methods=["GET"]),
        Route("/journal", journal, methods=["GET"]),
        Route("/inputs/{input_id:int}", input_page, methods=["GET"]),
        Route("/inputs/{input_id:int}/file", input_download, methods=["GET"]),
        Route("/inputs/{input_id:int}/retry", retry, methods=["POST"]),
        Route("/inputs/{input_id:int}/notes", add_note, methods=["POST"]),
        Route("/outputs/{output_id:int}", output_page, methods=["GET"]),
        Route("/outputs/{output_id:int}/file", output_download, methods=["GET"]),
        Route("/quarantine", quarantine, methods=["GET"]),
        Route("/try", try_page, methods=["GET", "POST"]),
        Route("/settings", settings, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


# -- overview -----------------------------------------------------------------------------------


def _overview_data(request: Request) -> dict[str, Any]:
    statuses, places = console_of(request).core.overview()
    never = _("never")
    return {
        "flows": [{
            "flow": s.flow, "enabled": s.enabled, "waits_for": s.waits_for,
            "waiting": "–" if s.waiting is None else s.waiting, "in_progress": s.in_progress, "done": s.done,
            "duplicate": s.duplicate, "failed": s.failed, "all_skipped": s.all_skipped,
            "last_run": local_time(s.last_run) or never,
            "settling": [f"{c.name} ({c.seconds:g} s)" for c in s.settling],
        } for s in statuses],
        "places": [{
            "place": p["place"], "flow": p["flow"], "last_ok": local_time(p["last_ok"]) or never,
            "failing_since": local_time(p["failing_since"]), "error": p["error"] or "",
        } for p in places],
    }


@guarded()
async def overview(request: Request, session: Session) -> Response:
    data = await run_in_threadpool(_overview_data, request)
    return console_of(request).render("overview", request, session, page="overview", data=data,
                                      poll_ms=int(console_of(request).poll_seconds * 1000))


@guarded()
async def overview_json(request: Request, session: Session) -> Response:
    data = await run_in_threadpool(_overview_data, request)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


# -- journal ------------------------------------------------------------------------------------


def _text(request: Request, name: str, limit: int = 200) -> str:
    return request.query_params.get(name, "").strip()[:limit]


@guarded()
async def journal(request: Request, session: Session) -> Response:
    console = console_of(request)
    form = {k: _text(request, k) for k in ("name", "key", "flow", "state", "since", "until")}
    problems = []
    try:
        since, until = day_bounds(form["since"] or None, form["until"] or None)
    except ValueError:
        since = until = None
        problems.append(_("A date must be written as year-month-day, for example 2026-11-27."))
    state = InputState(form["state"]) if form["state"] in STATES else None
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    query = JournalQuery(name=form["name"] or None, key=form["key"] or None, flow=form["flow"] or None, state=state,
                         since=since, until=until, before=before, limit=PAGE_SIZE)
    page = await run_in_threadpool(console.core.search, query)
    kept = {k: v for k, v in form.items() if v}
    next_url = f"/journal?{urlencode({**kept, 'before': page.next_before})}" if page.next_before else None
    first_url = f"/journal?{urlencode(kept)}" if before is not None else None
    return console.render("journal", request, session, page="journal", form=form, rows=page.rows, total=page.total,
                          next_url=next_url, first_url=first_url, flows=list(console.inst.flows), states=STATES,
                          problems=problems)


@guarded()
async def input_page(request: Request, session: Session) -> Response:
    console = console_of(request)
    detail = await run_in_threadpool(console.core.detail, int(request.path_params["input_id"]))
    if detail is None:
        raise HTTPException(404)
    return console.render("input", request, session, page="journal", d=detail, row=detail.row)


@guarded()
async def input_download(request: Request, session: Session) -> Response:
    found = await run_in_threadpool(console_of(request).core.input_file, int(request.path_params["input_id"]))
    if found is None:
        raise HTTPException(404)
    path, name = found
    return FileResponse(path, filename=name, media_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})


@guarded()
async def output_page(request: Request, session: Session) -> Response:
    console = console_of(request)
    found = await run_in_threadpool(console.core.output_text, int(request.path_params["output_id"]))
    if found is None:
        raise HTTPException(404)
    out, text, cut = found
    available = await run_in_threadpool(console.core.output_file, out.id) is not None
    return console.render("output", request, session, page="journal", out=out, text=text, cut=cut,
                          available=available)


@guarded()
async def output_download(request: Request, session: Session) -> Response:
    found = await run_in_threadpool(console_of(request).core.output_file, int(request.path_params["output_id"]))
    if found is None:
        raise HTTPException(404)
    path, out = found
    return FileResponse(path, filename=out.name, media_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})


# -- quarantine, retry, notes -------------------------------------------------------------------


@guarded()
async def quarantine(request: Request, session: Session) -> Response:
    console = console_of(request)
    page = await run_in_threadpool(console.core.quarantined)
    notes = {row.id: await run_in_threadpool(console.core.detail, row.id) for row in page.rows}
    return console.render("quarantine", request, session, page="quarantine", rows=page.rows, total=page.total,
                          details=notes)


@guarded("operator")
async def retry(request: Request, session: Session) -> Response:
    console = console_of(request)
    input_id = int(request.path_params["input_id"])
    try:
        row = await run_in_threadpool(console.core.retry, input_id)
    except InputError as exc:
        session.flash.append(str(exc))
    else:
        session.flash.append(_("Input {id} ({name}) will be processed by the next run.").format(id=row.id,
                                                                                              name=row.name))
    form = await request.form()
    target = "/quarantine" if form.get("back") == "quarantine" else f"/inputs/{input_id}"
    return RedirectResponse(target, status_code=303)


@guarded("operator")
async def add_note(request: Request, session: Session) -> Response:
    console = console_of(request)
    input_id = int(request.path_params["input_id"])
    form = await request.form()
    text = str(form.get("text", "")).strip()[:2000]
    if text:
        try:
            await run_in_threadpool(console.core.add_note, input_id, session.user or "", text)
        except KeyError:
            raise HTTPException(404) from None
        session.flash.append(_("Note saved."))
    target = "/quarantine" if form.get("back") == "quarantine" else f"/inputs/{input_id}"
    return RedirectResponse(target, status_code=303)


# -- trying a mapping ---------------------------------------------------------------------------


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(UPLOAD_CHUNK):
        yield chunk


@guarded()
async def try_page(request: Request, session: Session) -> Response:
    console = console_of(request)
    examples = await run_in_threadpool(console.core.examples)
    result = None
    chosen: dict[str, str] = {"flow": _text(request, "flow"), "case": ""}
    problem = None
    if request.method == "POST":
        form = await request.form()
        chosen = {"flow": str(form.get("flow", "")), "case": str(form.get("case", ""))}
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            result = await run_in_threadpool(console.core.try_upload, chosen["flow"], upload.filename,
                                             _chunks(upload))
        elif chosen["case"]:
            result = await run_in_threadpool(console.core.try_example, chosen["flow"], chosen["case"])
        else:
            problem = _("Choose a file to upload or one of the flow's examples.")
        if result is None and problem is None:
            problem = _("There is no such flow or example.")
    return console.render("try", request, session, page="try", examples=examples, chosen=chosen, result=result,
                          problem=problem, upload_mb=f"{console.upload_limit / 1024 / 1024:g}")


# -- settings -----------------------------------------------------------------------------------


@guarded()
async def settings(request: Request, session: Session) -> Response:
    console = console_of(request)
    found = await run_in_threadpool(console.core.settings)
    origins = {"flow": _("the flow in gateway.yaml"), "installation": _("settings of gateway.yaml"),
               "mapping": _("the mapping's default")}
    return console.render("settings", request, session, page="settings", flows=found, origins=origins)


# -- login --------------------------------------------------------------------------------------


def _safe_next(target: str) -> str:
    """Only a path of this console: never another site (``//evil``, ``https://…``) after a login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login(request: Request) -> Response:
    console = console_of(request)
    if console.open_access:
        return RedirectResponse("/", status_code=303)
    session = console.sessions.get(request.cookies.get(console.cookie))
    fresh = session is None
    if session is None:
        session = console.sessions.create(None, None)
    target = _safe_next(request.query_params.get("next", "/"))
    response: Response
    if request.method == "GET":
        if session.user is not None:
            return RedirectResponse(target, status_code=303)
        response = console.render("login", request, session, page="login", next=target, user="")
    else:
        response = await _log_in(request, session, target)
    if fresh:
        set_cookie(console, response, session)
    return response


async def _log_in(request: Request, session: Session, target: str) -> Response:
    console = console_of(request)
    await check_post(request, session)
    form = await request.form()
    user = str(form.get("user", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    address = request.client.host if request.client else "?"
    wait = console.limiter.wait_seconds(address, user)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        return console.render("login", request, session, page="login", next=target, user=user, status_code=429,
                              error=_("Too many failed logins. Try again in {minutes} minutes.").format(
                                  minutes=minutes))
    role = await run_in_threadpool(check_login, console.users, user, password)
    if role is None:
        console.limiter.failed(address, user)
        return console.render("login", request, session, page="login", next=target, user=user, status_code=401,
                              error=_("Wrong user name or password."))
    console.limiter.succeeded(address, user)
    console.sessions.drop(session.token)
    new = console.sessions.create(user, role)  # a new token: one planted before the login is worth nothing now
    response = RedirectResponse(target, status_code=303)
    set_cookie(console, response, new)
    return response


@guarded()
async def logout(request: Request, session: Session) -> Response:
    console = console_of(request)
    console.sessions.drop(session.token)
    response = RedirectResponse("/login" if not console.open_access else "/", status_code=303)
    response.delete_cookie(console.cookie, path="/")
    return response
