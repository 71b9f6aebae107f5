"""Rakuten France (``sales_ws``, ``stock_ws``): the calls the gateway makes, with their parameters and answers.

Every call is ``GET`` (or, for an upload, a multipart ``POST``) to ``sales_ws`` or ``stock_ws``
with ``action``, ``login``, ``pwd`` (the web-service token) and ``version``. An answer that
is not the action's result element is an error (:func:`~gateway.webservices.answers.fr_refusal`):
of the *service* when its type is ``Receiver`` or its code is one of ``service_errors``
(credentials, quota: the call waits), else of the *record* (an item that cannot be accepted
any more): :class:`~gateway.webservices.client.RecordRefused`.

Facts and their sources: formats/rakuten-webservices.md. What public material does not say
(the import report's words for "done", the error codes of the service) is a setting in
:class:`~gateway.webservices.config.ServiceConfig`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from ..i18n import _, ngettext
from .answers import BrokenAnswer, fr_refusal, local, stream, text
from .client import Answer, AnswerLost, ServiceClient, ServiceError, expect

SALES = "sales_ws"
STOCK = "stock_ws"

#: The maximum number of pages of a listing (getcurrentsales, an import report) read in one go.
MAX_PAGES = 10_000


@dataclass(frozen=True)
class ReportLine:
    """One article of an import report with the errors Rakuten found."""

    sku: str
    status: str
    errors: list[str]


@dataclass(frozen=True)
class Report:
    status: str  # the file's status as Rakuten words it ("Traité", "En cours")
    done: bool
    lines: int  # how many article lines the report lists
    refused: list[ReportLine]  # the lines with errors


class RakutenFrance:
    api = "rakuten-fr"

    def __init__(self, client: ServiceClient) -> None:
        self.client = client
        self.config = client.config

    def describe(self) -> str:
        return self.client.describe()

    # -- plumbing ---------------------------------------------------------------------------------

    def _params(self, action: str, extra: dict[str, str]) -> dict[str, str]:
        creds = self.client.credentials
        return {"action": action, "login": creds.login, "pwd": creds.secret, "version": self.config.version(action),
                **extra}

    def _call(self, endpoint: str, action: str, result: str, what: str, *, changes: bool,
              to_file: Path | None = None, files: dict[str, tuple[str, Any, str]] | None = None,
              extra: dict[str, str] | None = None) -> Answer:
        params = self._params(action, extra or {})
        method = "POST" if files else "GET"
        answer = self.client.call(method, endpoint, params, what=what, changes=changes, to_file=to_file,
                                  files=files)
        refusal = fr_refusal(answer.root) if answer.root is not None else None
        if refusal is not None and (refusal.kind == "Receiver" or refusal.code in self.config.fr_service_errors):
            if refusal.code in ("InvalidUserRights", "InvalidLogin", "InvalidToken", "AuthenticationFailed"):
                self.client.forget_credentials()
                words = _("{service}: {call}: the login or token was refused ({answer}); set a valid token in "
                          "{variable} (and restart the service); the calls wait").format(
                    service=self.describe(), call=what, answer=refusal.words(), variable=self.config.token_env)
            else:
                words = _("{service}: {call}: the service refused to work ({answer})").format(
                    service=self.describe(), call=what, answer=refusal.words())
            raise self.client.refused(self.client.redact(words))
        expect(self.client, answer, result, what, refusal)
        return answer

    # -- sales ------------------------------------------------------------------------------------

    def new_sales(self, to_file: Path) -> Path:
        """``getnewsales``: the sales waiting to be accepted, as Rakuten answered (a file)."""
        self._call(SALES, "getnewsales", "getnewsalesresult", "getnewsales", changes=False, to_file=to_file)
        return to_file

    def shipping_cost(self, purchaseid: str) -> tuple[str, str]:
        """``getshippinginformation``: (amount, currency) of a purchase's shipping; RecordRefused for an unknown one."""
        answer = self._call(SALES, "getshippinginformation", "getshippinginformationresult",
                            f"getshippinginformation {purchaseid}", changes=False, extra={"purchaseid": purchaseid})
        root = answer.root
        info = next((e for e in root.iter() if local(e.tag) == "purchaseshippingcostprice"), None) \
            if root is not None else None
        return text(info, "amount"), text(info, "currency")

    def accept(self, itemid: str) -> str:
        """``acceptsale`` of one sold unit; the answer's status in words."""
        return self._decide("acceptsale", itemid)

    def refuse(self, itemid: str) -> str:
        """``refusesale`` of one sold unit."""
        return self._decide("refusesale", itemid)

    def _decide(self, action: str, itemid: str) -> str:
        answer = self._call(SALES, action, "saleacceptanceresult", f"{action} {itemid}", changes=True,
                            extra={"itemid": itemid})
        return f"{action} {itemid}: {text(answer.root, 'response', 'status') or 'answered'}"

    def current_sales(self, spool: Path, purchasedate: str = "") -> Iterator[etree._Element]:
        """``getcurrentsales``, every page (``nexttoken``): each ``<sale>`` of the accepted, unshipped sales."""
        yield from self._sales_pages("getcurrentsales", "getcurrentsalesresult", spool,
                                     {"purchasedate": purchasedate} if purchasedate else {})

    def waiting_sales(self, spool: Path) -> Iterator[etree._Element]:
        """``getnewsales``: each ``<sale>`` still waiting to be accepted."""
        yield from self._sales_pages("getnewsales", "getnewsalesresult", spool, {})

    def _sales_pages(self, action: str, result: str, spool: Path, extra: dict[str, str]) -> Iterator[etree._Element]:
        token = ""
        seen: set[str] = set()
        for _page in range(MAX_PAGES):
            path = spool / f".{action}.xml"
            params = dict(extra, **({"nexttoken": token} if token else {}))
            self._call(SALES, action, result, action, changes=False, to_file=path, extra=params)
            try:
                token = ""
                for el in stream(path, "sale"):
                    yield el
                for el in stream(path, "nexttoken"):
                    token = (el.text or "").strip()
                    if token:
                        break
            except BrokenAnswer as exc:
                raise ServiceError(f"{self.describe()}: {action}: {exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
            if not token or token in seen:
                return
            seen.add(token)
        raise ServiceError(_("{service}: {call}: more than {count} pages; stopped reading").format(
            service=self.describe(), call=action, count=MAX_PAGES))

    def track(self, itemid: str, transporter: str, number: str, url: str) -> str:
        """``settrackingpackageinfos`` for one item: its carrier, tracking number and URL."""
        extra = {"itemid": itemid, "transporter_name": transporter, "tracking_number": number}
        if url:
            extra["tracking_url"] = url
        answer = self._call(SALES, "settrackingpackageinfos", "settrackingpackageinfosresult",
                            f"settrackingpackageinfos {itemid}", changes=True, extra=extra)
        return f"settrackingpackageinfos {itemid}: {text(answer.root, 'response', 'status') or 'answered'}"

    # -- offers -----------------------------------------------------------------------------------

    def upload_offers(self, path: Path, name: str) -> str:
        """``genericimportfile``: upload an offer file; the import id Rakuten gives it."""
        with open(path, "rb") as fh:
            answer = self._call(STOCK, "genericimportfile", "importresult", f"genericimportfile {name}",
                                changes=True, files={"file": (name, fh, "text/xml")})
        importid = text(answer.root, "response", "importid")
        if not importid:
            raise AnswerLost(_("{service}: genericimportfile {name}: the answer (HTTP {status}) names no import "
                               "id, so whether the file was taken is not known").format(
                service=self.describe(), name=name, status=answer.status))
        return importid

    def report(self, importid: str, spool: Path) -> Report:
        """``genericimportreport`` of an import, every page: whether it is done and which articles were refused."""
        token = ""
        status = ""
        lines = 0
        refused: list[ReportLine] = []
        for _page in range(MAX_PAGES):
            path = spool / ".genericimportreport.xml"
            extra = {"fileid": importid, **({"nexttoken": token} if token else {})}
            self._call(STOCK, "genericimportreport", "genericimportreportresult", f"genericimportreport {importid}",
                       changes=False, to_file=path, extra=extra)
            try:
                token = ""
                for el in stream(path, "file"):
                    status = status or text(el, "status")
                for el in stream(path, "product"):
                    lines += 1
                    errors = [" ".join(f"{text(e, 'message')} ({text(e, 'code')})".split())
                              for e in el.iter() if local(e.tag) == "error"]
                    line_status = text(el, "status")
                    if errors:
                        refused.append(ReportLine(sku=text(el, "sku") or "?", status=line_status, errors=errors))
                for el in stream(path, "nexttoken"):
                    token = (el.text or "").strip()
                    break
            except BrokenAnswer as exc:
                raise ServiceError(f"{self.describe()}: genericimportreport {importid}: {exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
            if not token:
                break
        done = status.casefold() in {s.casefold() for s in self.config.report_done}
        return Report(status=status or _("(no status)"), done=done, lines=lines, refused=refused)

    # -- a harmless call --------------------------------------------------------------------------

    def test(self, spool: Path, today: dt.date) -> str:
        """One harmless call (``getcurrentsales`` of today) that proves address, login and token."""
        sales = sum(1 for _sale in self.current_sales(spool, today.isoformat()))
        return ngettext("getcurrentsales answered ({count} accepted, unshipped sale(s) of today)",
                        "getcurrentsales answered ({count} accepted, unshipped sale(s) of today)",
                        sales).format(count=sales)
