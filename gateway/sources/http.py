"""A web service polled for new orders (the ``http`` kind of source): Rakuten France sales, Rakuten.de orders.

A scan *is* the poll: ``getnewsales`` (Rakuten France) or ``getOrders`` in one status, every
page (Rakuten.de). An answer that holds sales becomes one input, written to a spool file under
``state/http/<flow>/`` and journaled like a file; an answer without any is nothing. For each
Rakuten France sale the source also asks ``getshippinginformation`` and adds its answer to the
``<sale>``, as::

    <shippinginformation><purchaseshippingcostprice><amount>4.9</amount><currency>EUR</currency>
    </purchaseshippingcostprice></shippinginformation>

(``<shippinginformation><error>…</error></shippinginformation>`` when Rakuten refuses to give
it for that purchase, so that the mapping can tell). The answer is rewritten as it streams in,
without the ``<request>`` part that echoes the login; memory does not grow with the number
of sales.

Nothing is taken away at Rakuten: sales stay "new" until they are accepted (a destination of
the flow does that once the SOL output is committed), so a crash before then only means the
next poll brings them again, and the journal recognises them by their purchase ids. An answer
identical to the last one taken is not offered again (its sales are handled or waiting for
their acceptance), so that polling every few minutes does not fill the journal with duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import DeliveryError
from ..files import fsync_dir, new_work_path
from ..i18n import _, ngettext
from ..kinds import CheckContext, Kind, KindConfig, Parts, Problem
from .base import Candidate, Source

if TYPE_CHECKING:
    from ..clock import Clock
    from ..journal import Journal
    from ..webservices.rakuten_de import RakutenDe
    from ..webservices.rakuten_fr import RakutenFrance

log = logging.getLogger("gateway")

#: Spool files older than this are left-overs of a crash between a poll and its claim.
STALE_SECONDS = 3600
#: Where the last answer taken is remembered (journal memory), per flow.
LAST_ANSWER = "http-source:last-answer"

CALLS = {"getnewsales": ("rakuten-fr",), "getOrders": ("rakuten-de",)}


class HttpSourceConfig(KindConfig):
    """A web service under ``services`` polled for new orders."""

    kind = "http"

    http: str  # the service's name under 'services'
    call: Literal["getnewsales", "getOrders"]
    status: str = "pending"  # getOrders: the orders in this status are taken
    shipping_information: bool = True  # getnewsales: add each sale's getshippinginformation


class HttpSource(Source):
    kind = "http"
    polled = True

    def __init__(self, api: RakutenFrance | RakutenDe, call: str, spool: Path, *, flow: str,
                 journal: Journal | None, clock: Clock, status: str = "pending",
                 shipping_information: bool = True) -> None:
        self.api = api
        self.call = call
        self.spool = spool
        self.flow = flow
        self.journal = journal
        self.clock = clock
        self.status = status
        self.shipping_information = shipping_information

    def describe(self) -> str:
        return f"{self.api.describe()} ({self.call})"

    def origin(self, candidate: Candidate) -> str:
        return self.describe()

    # -- the poll ---------------------------------------------------------------------------------

    def scan(self) -> list[Candidate]:
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(_("cannot create the spool folder {folder}: {error}").format(
                folder=self.spool, error=exc.strerror or exc)) from None
        token = f"{os.getpid()}-{secrets.token_hex(4)}"
        raw = self.spool / f".answer-{token}.part"
        built = self.spool / f".input-{token}.part"
        try:
            count = self._poll(raw, built)
            if count == 0:
                return []
            sha = _sha256(built)
            if self.journal is not None and self.journal.recall(LAST_ANSWER, self.flow) == sha:
                log.debug("%s: the same %d sale(s) as the last answer taken; nothing new", self.flow, count)
                return []
            final = self.spool / f"{sha}.xml"
            os.replace(built, final)
            fsync_dir(self.spool)
        except OSError as exc:
            raise DeliveryError(_("cannot write the answer of {service} to {folder}: {error}").format(
                service=self.describe(), folder=self.spool, error=exc.strerror or exc)) from None
        finally:
            for temp in (raw, built):
                with contextlib.suppress(OSError):
                    temp.unlink()
        stamp = self.clock.local_now().strftime("%Y%m%dT%H%M%S")
        name = f"{self.call}_{stamp}.xml"
        if self.call == "getnewsales":
            words = ngettext("{flow}: {call} answered with {count} sale(s)",
                             "{flow}: {call} answered with {count} sale(s)", count)
        else:
            words = ngettext("{flow}: {call} answered with {count} order(s)",
                             "{flow}: {call} answered with {count} order(s)", count)
        log.info(words.format(flow=self.flow, call=self.call, count=count))
        return [Candidate(identity=sha, name=name, size=final.stat().st_size, changed=self.clock.time(), ready=True,
                          detail=final)]

    def _poll(self, raw: Path, built: Path) -> int:
        from ..webservices.rakuten_fr import RakutenFrance

        if isinstance(self.api, RakutenFrance):
            self.api.new_sales(raw)
            return _sales_file(self.api, raw, built, self.shipping_information)
        return _orders_file(self.api, self.status, self.spool, built)

    # -- taking it --------------------------------------------------------------------------------

    def fetch(self, candidate: Candidate, work_dir: Path) -> Path | None:
        """The claim: the spooled answer is renamed into the work folder (``None`` if another process took it)."""
        spooled = Path(candidate.detail)
        target = new_work_path(work_dir, candidate.name)
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
            os.rename(spooled, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeliveryError(_("cannot move {file} into {folder}: {error}").format(
                file=spooled, folder=work_dir, error=exc.strerror or exc)) from None
        fsync_dir(work_dir)
        return target

    def acknowledge(self, candidate: Candidate) -> None:
        """The journal holds the answer's final state: remember it, so that the same answer is not offered again."""
        if self.journal is not None:
            self.journal.remember(LAST_ANSWER, self.flow, candidate.identity)

    def recover(self, work_dir: Path) -> None:
        """Spool files a crash left between a poll and its claim are thrown away (the next poll brings them again)."""
        if not self.spool.is_dir():
            return
        now = time.time()
        for path in self.spool.iterdir():
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_SECONDS:
                    path.unlink()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _root_namespace(path: Path) -> str:
    from lxml import etree

    for _event, el in etree.iterparse(str(path), events=("start",), resolve_entities=False, no_network=True,
                                      load_dtd=False, huge_tree=False):
        tag = el.tag if isinstance(el.tag, str) else ""
        return tag[1:].partition("}")[0] if tag.startswith("{") else ""
    return ""


def _sales_file(api: RakutenFrance, raw: Path, built: Path, shipping: bool) -> int:
    """The getnewsales answer rewritten sale by sale, each with its shipping information; the number of sales."""
    from lxml import etree

    from ..webservices.answers import BrokenAnswer, stream, text
    from ..webservices.client import RecordRefused, ServiceError

    ns = _root_namespace(raw)

    def q(name: str) -> str:
        return f"{{{ns}}}{name}" if ns else name

    count = 0
    try:
        with etree.xmlfile(str(built), encoding="utf-8") as xf:
            xf.write_declaration()
            with xf.element(q("getnewsalesresult"), nsmap={None: ns} if ns else None), \
                    xf.element(q("response")), xf.element(q("sales")):
                for sale in stream(raw, "sale"):
                    if shipping:
                        info = etree.SubElement(sale, q("shippinginformation"))
                        purchaseid = text(sale, "purchaseid")
                        try:
                            amount, currency = api.shipping_cost(purchaseid)
                        except RecordRefused as exc:
                            etree.SubElement(info, q("error")).text = str(exc)
                        else:
                            price = etree.SubElement(info, q("purchaseshippingcostprice"))
                            etree.SubElement(price, q("amount")).text = amount
                            etree.SubElement(price, q("currency")).text = currency
                    sale.tail = None
                    xf.write(sale)
                    count += 1
    except BrokenAnswer as exc:
        raise ServiceError(f"{api.describe()}: getnewsales: {exc}") from None
    return count


def _orders_file(api: RakutenDe, status: str, spool: Path, built: Path) -> int:
    """Every page of getOrders as one answer, order by order; the number of orders."""
    from lxml import etree

    count = 0
    with etree.xmlfile(str(built), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("result"):
            success = etree.Element("success")
            success.text = "1"
            xf.write(success)
            with xf.element("orders"):
                for order in api.orders(status, spool):
                    order.tail = None
                    xf.write(order)
                    count += 1
    return count


def _build(config: HttpSourceConfig, parts: Parts) -> HttpSource:
    from ..webservices import api_for, client_for

    api = api_for(client_for(parts, config.http))
    spool = parts.installation.state_dir / "http" / parts.flow.name
    return HttpSource(api, config.call, spool, flow=parts.flow.name, journal=parts.journal, clock=parts.clock,
                      status=config.status, shipping_information=config.shipping_information)


def _check(config: HttpSourceConfig, ctx: CheckContext) -> list[Problem]:
    from ..webservices import check_service

    return check_service(config.http, ctx, CALLS[config.call], config.call)


def _needs(config: HttpSourceConfig, installation: object) -> list[str]:
    from ..webservices import variables_of

    return variables_of(config.http, installation)


KIND = Kind(
    name="http",
    role="source",
    config=HttpSourceConfig,
    build=_build,
    summary="a web service under `services` polled for new orders (Rakuten France `getnewsales` with each "
            "sale's shipping cost, Rakuten.de `getOrders`, every page); each answer holding orders is one input",
    example="{http: rakuten-fr, call: getnewsales}",
    check=_check,
    needs=_needs,
    poll_minutes=5.0,
)
