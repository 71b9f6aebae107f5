"""A web service as a destination (the ``http`` kind): each row of an output becomes a call, made once.

An output going to ``{http: rakuten-fr, call: acceptsale}`` is a CSV file whose rows say what
to do (accept unit 260306083 of sale 40021877). It is committed in the journal together with
the input's other outputs (the SOL order import), so the calls are owed from that moment on,
through crashes. Delivering it makes the calls one by one, at the service's pace, each
recorded in the journal before it is made and after it was answered (a :class:`CallLog`):

* a call answered is never made again;
* a call recorded as started but never answered (a crash, a dropped connection) is resolved by
  asking the service (:mod:`gateway.webservices.calls` says how, per call);
* an answer refusing the record (a unit no longer to be accepted, an unknown article) is
  recorded with its reason, noted in the input's journal entry, and the rest goes on;
* trouble of the service (down, 5xx, a token refused) stops the delivery: the input waits and
  its delivery goes on from where it stopped, and the service's health shows in ``gateway status``.

``genericimportfile`` is different: the whole output is one offer file, uploaded once, then
its import report is asked for until Rakuten has processed it; the articles it refused are
noted in the journal with Rakuten's reasons.

Stock, prices and offers replace each other: a newer update must never be overwritten by an
older one that was held up. Their deliveries therefore go in order: an update waits while an
earlier input of the same flow still owes this destination its delivery.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..crashpoints import crashpoint
from ..errors import DeliveryError
from ..i18n import _, ngettext
from ..kinds import CheckContext, Kind, KindConfig, Parts, Problem
from .base import CallLog, Delivered, Delivery, Destination, Status

if TYPE_CHECKING:
    from ..clock import Clock
    from ..journal import Journal
    from ..webservices.calls import Call, Operation
    from ..webservices.rakuten_de import RakutenDe
    from ..webservices.rakuten_fr import RakutenFrance

log = logging.getLogger("gateway")

CallName = Literal["acceptsale", "settrackingpackageinfos", "setOrderShipped", "editProduct", "genericimportfile"]

APIS: dict[str, tuple[str, ...]] = {
    "acceptsale": ("rakuten-fr",),
    "settrackingpackageinfos": ("rakuten-fr",),
    "genericimportfile": ("rakuten-fr",),
    "setOrderShipped": ("rakuten-de",),
    "editProduct": ("rakuten-de",),
}

#: Journal memory: the import id Rakuten France gave an uploaded offer file, by delivery key.
IMPORTS = "rakuten-fr:imports"
UPLOAD = "genericimportfile"
#: Calls journaled as started in one step when there is no pace: a crash leaves at most this many to ask about.
CALLS_PER_STEP = 50
REPORT = "genericimportreport"


class HttpDestinationConfig(KindConfig):
    """A web service under ``services``; ``call`` says what each row of the output becomes."""

    kind = "http"

    http: str
    call: CallName


class HttpDestination(Destination):
    kind = "http"

    def __init__(self, api: RakutenFrance | RakutenDe, call: str, *, journal: Journal | None, place: str,
                 clock: Clock, spool: Path) -> None:
        self.api = api
        self.call = call
        self.journal = journal
        self.place = place
        self.clock = clock
        self.spool = spool

    def describe(self) -> str:
        return f"{self.api.describe()} ({self.call})"

    def _location(self, item: Delivery) -> str:
        return f"{self.api.client.name}:{self.call}/{item.name}"

    def _operation(self) -> Operation:
        from ..webservices.calls import OPERATIONS

        self.spool.mkdir(parents=True, exist_ok=True)
        return OPERATIONS[self.call](self.api, self.journal, self.spool)

    # -- the contract ------------------------------------------------------------------------------

    def prepare(self, item: Delivery) -> None:
        if not item.staged.is_file():
            raise DeliveryError(_("the staged output {file} is missing").format(file=item.staged))

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        if self.call == UPLOAD:
            return self._upload(item, calls)
        from ..webservices.calls import Resolved, read_rows

        op = self._operation()
        if op.in_order:
            self._wait_for_earlier(item)
        made = 0
        group: list[Call] = []
        for call in op.calls(read_rows(item.staged, op.columns, item.output), remember=True):
            state = calls.state(call.name)
            if state == "answered":
                continue
            if call.problem:
                calls.answered(call.name, f"not made: {call.problem}")
                self._note(item, [op.refused_note(call, call.problem)])
                continue
            if state == "started":
                outcome = op.resolve(call)
                if outcome.resolved is Resolved.TAKEN:
                    calls.answered(call.name, f"{outcome.words} (asked after its answer was lost)")
                    continue
                if outcome.resolved is Resolved.UNKNOWN:
                    raise DeliveryError(_("{service}: whether the {request} took effect cannot be told yet "
                                          "({answer}); asked again later, never sent blindly").format(
                        service=self.describe(), request=call.request, answer=outcome.words))
                log.info(_("{service}: the {request} did not take effect ({answer}); it is made now").format(
                    service=self.describe(), request=call.request, answer=outcome.words))
            group.append(call)
            if len(group) >= self._group_size():
                made += self._make_group(op, group, calls, item)
                group = []
        if group:
            made += self._make_group(op, group, calls, item)
        if made:
            log.info(ngettext("{service}: {name}: {count} call(s) made", "{service}: {name}: {count} call(s) made",
                              made).format(service=self.describe(), name=item.name, count=made))
        return self._location(item)

    def _group_size(self) -> int:
        """Calls journaled as started in one step: about a second's worth at the pace, at most CALLS_PER_STEP."""
        config = self.api.client.config
        if config.calls_per_second <= 0:
            return CALLS_PER_STEP
        return max(config.parallel_calls, min(CALLS_PER_STEP, int(config.calls_per_second)))

    def _make_group(self, op: Operation, group: list[Call], calls: CallLog, item: Delivery) -> int:
        """Make a group of calls: all recorded as started first, each answer recorded once they are made.

        Up to ``parallel_calls`` are in flight at once; what to make of an answer (a lost one is
        resolved by asking, a refusal noted) is decided here, one after the other, in the order of
        the rows. A service that fails ends the group: the calls it answered are recorded, the rest
        are recorded as not made, and the delivery waits.
        """
        from ..webservices.client import AnswerLost, RecordRefused, ServiceError

        calls.record([(c.name, "started", c.request) for c in group])
        crashpoint("call-started")
        outcomes = self._run_all(op, group)
        records: list[tuple[str, str, str]] = []
        notes: list[dict[str, str]] = []
        failure: DeliveryError | None = None
        try:
            for call, (answer, exc) in zip(group, outcomes, strict=True):
                if failure is not None:
                    if exc is None or isinstance(exc, RecordRefused):
                        records.append(self._recorded(op, call, answer, exc, notes))
                    elif not isinstance(exc, AnswerLost):
                        records.append((call.name, "failed", str(exc)))
                    continue  # a lost answer stays "started": asked about on the next run
                try:
                    if isinstance(exc, AnswerLost):
                        log.warning("%s", exc)
                        answer, exc = self._after_lost_answer(op, call, calls)
                    if isinstance(exc, RecordRefused):
                        wait = op.wait_instead(call, str(exc))
                        if wait:
                            records.append((call.name, "failed", f"not yet: {exc}"))
                            failure = DeliveryError(f"{self.describe()}: {wait}")
                            continue
                    if isinstance(exc, ServiceError):
                        records.append((call.name, "failed", str(exc)))
                        failure = exc
                        continue
                    records.append(self._recorded(op, call, answer, exc, notes))
                except ServiceError as again:  # asking after a lost answer failed: it stays "started"
                    failure = again
            crashpoint("called")
        finally:
            calls.record(records)
            self._note(item, notes)
        if failure is not None:
            raise failure
        return len(group)

    def _recorded(self, op: Operation, call: Call, answer: str, exc: BaseException | None,
                  notes: list[dict[str, str]]) -> tuple[str, str, str]:
        """The journal's record of a call that was answered (also when the answer refused the record)."""
        if exc is not None:
            notes.append(op.refused_note(call, str(exc)))
            return (call.name, "answered", f"refused: {exc}")
        note = op.answered_note(call, answer)
        if note:
            notes.append(note)
        return (call.name, "answered", answer)

    def _run_all(self, op: Operation, group: list[Call]) -> list[tuple[str, BaseException | None]]:
        """Each call made once: its answer, or what went wrong (a refusal, a lost answer, the service down)."""
        from ..webservices.client import AnswerLost, RecordRefused, ServiceError

        def one(call: Call) -> tuple[str, BaseException | None]:
            try:
                return op.make(call), None
            except (RecordRefused, ServiceError) as exc:
                return "", exc

        parallel = self.api.client.config.parallel_calls
        if parallel <= 1 or len(group) == 1:
            results: list[tuple[str, BaseException | None]] = []
            for call in group:
                answer, exc = one(call)
                results.append((answer, exc))
                if isinstance(exc, ServiceError) and not isinstance(exc, AnswerLost):
                    # the service refuses to work (down, a token expired): the rest is not even tried
                    results += [("", ServiceError(_("not made: {error}").format(error=exc)))] * (
                        len(group) - len(results))
                    break
            return results
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="gateway-call") as pool:
            return list(pool.map(one, group))

    def _after_lost_answer(self, op: Operation, call: Call, calls: CallLog) -> tuple[str, BaseException | None]:
        """Ask the service whether a call whose answer was lost took effect; make it again only if it did not."""
        from ..webservices.calls import Resolved
        from ..webservices.client import AnswerLost, RecordRefused, ServiceError

        for _attempt in range(self.api.client.config.retries + 1):
            op.forget_snapshot()  # what the service says now, not what it said before the call
            outcome = op.resolve(call)
            if outcome.resolved is Resolved.TAKEN:
                return f"{outcome.words} (asked after its answer was lost)", None
            if outcome.resolved is Resolved.UNKNOWN:
                raise ServiceError(_("{service}: whether the {request} took effect cannot be told yet "
                                     "({answer})").format(service=self.describe(), request=call.request,
                                                          answer=outcome.words))
            calls.started(call.name, call.request)
            try:
                return op.make(call), None
            except AnswerLost as exc:
                log.warning("%s", exc)
            except (RecordRefused, ServiceError) as exc:
                return "", exc
        raise ServiceError(_("{service}: the {request} kept losing its answer; it is asked about and tried again "
                             "later").format(service=self.describe(), request=call.request))

    def status(self, item: Delivery, calls: CallLog) -> Status:
        from ..webservices.calls import Resolved, read_rows
        from ..webservices.client import ServiceError

        if self.call == UPLOAD:
            return self._upload_status(item, calls)
        op = self._operation()
        try:
            for call in op.calls(read_rows(item.staged, op.columns, item.output), remember=False):
                state = calls.state(call.name)
                if state == "answered":
                    continue
                if state != "started":
                    return Status(Delivered.NO)
                outcome = op.resolve(call)
                if outcome.resolved is Resolved.NOT_TAKEN:
                    return Status(Delivered.NO)
                if outcome.resolved is Resolved.UNKNOWN:
                    return Status(Delivered.UNKNOWN, detail=outcome.words)
        except ServiceError as exc:
            return Status(Delivered.UNKNOWN, detail=str(exc))
        return Status(Delivered.YES, self._location(item))

    # -- offer files ----------------------------------------------------------------------------------

    def _upload(self, item: Delivery, calls: CallLog) -> str:
        from ..webservices.client import AnswerLost, RecordRefused, ServiceError
        from ..webservices.offers import build_offer_file

        fr = self._france()
        self._wait_for_earlier(item)
        importid = self.journal.recall(IMPORTS, item.key) if self.journal is not None else None
        if importid is None:
            if calls.state(UPLOAD) == "started":
                log.warning(_("{service}: the answer to the upload of {name} was lost and Rakuten cannot be asked "
                              "about it; the file (values, not actions) is uploaded again").format(
                    service=self.describe(), name=item.name))
            offer_file = self.spool / f"{item.key}.xml"
            items = build_offer_file(item.staged, item.output, offer_file)
            calls.started(UPLOAD, f"upload of {item.name}: {items} offer(s), {offer_file.stat().st_size:,} bytes")
            crashpoint("call-started")
            try:
                importid = fr.upload_offers(offer_file, item.name.rpartition(".")[0] + ".xml")
            except AnswerLost:
                raise
            except RecordRefused as exc:
                calls.answered(UPLOAD, f"refused: {exc}")
                self._note(item, [{"key": item.name,
                                   "reason": _("Rakuten France refused the offer file: {error}").format(error=exc)}])
                return self._location(item)
            except ServiceError as exc:
                calls.failed(UPLOAD, str(exc))
                raise
            crashpoint("called")
            if self.journal is not None:
                self.journal.remember(IMPORTS, item.key, importid)
        if calls.state(UPLOAD) != "answered":
            calls.answered(UPLOAD, f"import {importid}")
            with contextlib.suppress(OSError):
                (self.spool / f"{item.key}.xml").unlink()
        if calls.state(REPORT) == "answered":
            return self._location(item)
        config = self.api.client.config
        deadline = self.clock.monotonic() + config.report_wait_seconds
        while True:
            report = fr.report(importid, self.spool)
            if report.done:
                break
            if self.clock.monotonic() >= deadline:
                raise DeliveryError(_("{service}: Rakuten France has not finished import {id} of {name} yet (status "
                                      "'{status}'); its report is asked for again on the next run").format(
                    service=self.describe(), id=importid, name=item.name, status=report.status))
            self.clock.sleep(config.report_every_seconds)
        notes = [{"key": line.sku, "reason": _("Rakuten France refused article {article} (import {id}): "
                                               "{errors}").format(article=line.sku, id=importid,
                                                                  errors="; ".join(line.errors))}
                 for line in report.refused]
        if notes:
            self._note(item, notes)
            log.warning(ngettext("{service}: import {id}: Rakuten refused {count} of {total} article(s); "
                                 "`gateway journal` lists them with the reasons",
                                 "{service}: import {id}: Rakuten refused {count} of {total} article(s); "
                                 "`gateway journal` lists them with the reasons", report.lines).format(
                service=self.describe(), id=importid, count=len(notes), total=report.lines))
        calls.answered(REPORT, f"import {importid}: {report.status}, {report.lines} line(s), "
                               f"{len(report.refused)} refused")
        return self._location(item)

    def _upload_status(self, item: Delivery, calls: CallLog) -> Status:
        from ..webservices.client import ServiceError

        if calls.state(REPORT) == "answered":
            return Status(Delivered.YES, self._location(item))
        importid = self.journal.recall(IMPORTS, item.key) if self.journal is not None else None
        if importid is None:
            return Status(Delivered.NO)  # not uploaded, or its answer lost: Rakuten cannot be asked, it goes again
        try:
            report = self._france().report(importid, self.spool)
        except ServiceError as exc:
            return Status(Delivered.UNKNOWN, detail=str(exc))
        if report.done:
            return Status(Delivered.NO)  # processed: the delivery records the report and its refusals
        return Status(Delivered.UNKNOWN, detail=_("Rakuten France is still processing import {id} (status "
                                                  "'{status}')").format(id=importid, status=report.status))

    def _france(self) -> RakutenFrance:
        from ..webservices.rakuten_fr import RakutenFrance

        self.spool.mkdir(parents=True, exist_ok=True)
        assert isinstance(self.api, RakutenFrance)  # noqa: S101 - the config check makes sure of it
        return self.api

    # -- order and notes --------------------------------------------------------------------------------

    def _wait_for_earlier(self, item: Delivery) -> None:
        """Values replace each other: wait while an earlier input of the flow still owes this destination."""
        if self.journal is None:
            return
        from ..journal import InputState, OutputState

        for row in self.journal.unfinished(item.flow):
            if row.id >= item.input_id:
                continue
            if row.state is InputState.DELIVERING:
                owed = [o for o in self.journal.outputs(row.id)
                        if o.destination == self.place and o.state in (OutputState.STAGED, OutputState.UPLOADED)]
                if not owed:
                    continue
            raise DeliveryError(_("{service}: {name} waits until the earlier update (input {id}, {earlier}) has "
                                  "reached Rakuten: updates go in the order they came").format(
                service=self.describe(), name=item.name, id=row.id, earlier=row.name))

    def _note(self, item: Delivery, notes: list[dict[str, str]]) -> None:
        """Add what Rakuten refused (or what was refused on purpose) to the input's journal entry."""
        if self.journal is None or not notes:
            return
        with contextlib.suppress(KeyError):
            row = self.journal.get(item.input_id)
            known = {(n.get("key"), n.get("reason")) for n in row.skipped}
            fresh = [n for n in notes if (n.get("key"), n.get("reason")) not in known]
            if fresh:
                self.journal.note_skipped(item.input_id, [*row.skipped, *fresh])


def _build(config: HttpDestinationConfig, parts: Parts) -> HttpDestination:
    from ..webservices import api_for, client_for

    api = api_for(client_for(parts, config.http))
    spool = parts.installation.state_dir / "http" / parts.flow.name / parts.place
    return HttpDestination(api, config.call, journal=parts.journal, place=parts.place, clock=parts.clock,
                           spool=spool)


def _check(config: HttpDestinationConfig, ctx: CheckContext) -> list[Problem]:
    from ..webservices import check_service

    return check_service(config.http, ctx, APIS[config.call], config.call)


def _needs(config: HttpDestinationConfig, installation: object) -> list[str]:
    from ..webservices import variables_of

    return variables_of(config.http, installation)


KIND = Kind(
    name="http",
    role="destination",
    config=HttpDestinationConfig,
    build=_build,
    summary="a web service under `services`: each row of the output becomes one call (`acceptsale`, "
            "`settrackingpackageinfos`, `setOrderShipped`, `editProduct`), journaled before and after, a lost "
            "answer resolved by asking; `genericimportfile` uploads the output and records its import report",
    example="{http: rakuten-fr, call: acceptsale}",
    check=_check,
    needs=_needs,
)
