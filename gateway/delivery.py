"""Delivering an input's committed outputs, each as far as the journal says it has not got yet.

An output passes ``staged`` → ``uploaded`` → ``delivered`` (→ ``marked``). The destination's
``prepare`` comes before ``uploaded`` is recorded and its ``deliver`` after; an output found
``uploaded`` when this starts was left by a crash (or a failure) somewhere around ``deliver``,
so the destination is asked (``status``) before anything is delivered again. That is how an
output is never written twice even when an importer took it the moment it appeared, and how a
web-service call whose answer was lost is resolved by asking, not by calling again.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .config import Flow
from .crashpoints import crashpoint
from .destinations.base import Delivered, Delivery, Destination
from .endpoints import Endpoints
from .errors import DeliveryError
from .files import printable
from .health import Places
from .i18n import _
from .journal import InputRow, Journal, OutputRow, OutputState

log = logging.getLogger("gateway")


class JournalCalls:
    """A delivery's remote calls, recorded in the journal before and after each one."""

    def __init__(self, journal: Journal, delivery: str) -> None:
        self.journal = journal
        self.delivery = delivery

    def started(self, call: str, request: str) -> None:
        self.journal.call_started(self.delivery, call, request)

    def answered(self, call: str, answer: str) -> None:
        self.journal.call_answered(self.delivery, call, answer)

    def failed(self, call: str, answer: str) -> None:
        self.journal.call_failed(self.delivery, call, answer)

    def record(self, entries: list[tuple[str, str, str]]) -> None:
        from .journal import CallState

        self.journal.record_calls(self.delivery, [(c, CallState(state), text) for c, state, text in entries])

    def state(self, call: str) -> str | None:
        row = self.journal.call(self.delivery, call)
        return str(row.state) if row else None


class Deliverer:
    def __init__(self, journal: Journal, endpoints: Endpoints, places: Places) -> None:
        self.journal = journal
        self.endpoints = endpoints
        self.places = places

    def deliver(self, flow: Flow, row: InputRow) -> None:
        """Deliver every output of ``row``; raise ``DeliveryError`` (the input waits) when one cannot be."""
        for out in self.journal.outputs(row.id):
            place = f"destination {out.destination} of {flow.name}"
            try:
                self._one(flow, row, out)
            except DeliveryError as exc:
                self.places.failed(place, flow.name, exc)
                raise
            self.places.ok(place, flow.name)

    def delivery_of(self, flow: Flow, row: InputRow, out: OutputRow) -> Delivery:
        return Delivery(key=f"{self.journal.installation_id}-{out.id}", name=out.name,
                        staged=Path(out.staged_path), flow=flow.name, input_id=row.id, output=out.output)

    def _one(self, flow: Flow, row: InputRow, out: OutputRow) -> None:
        marker = self.endpoints.marker_of(flow, out.destination)
        dest = self.endpoints.destination(flow, out.destination)
        item = self.delivery_of(flow, row, out)
        calls = JournalCalls(self.journal, item.key)
        state = out.state
        if state is OutputState.STAGED:
            if not item.staged.exists():
                raise DeliveryError(_("the staged output {path} is missing").format(path=out.staged_path))
            dest.prepare(item)
            crashpoint("uploaded")
            self.journal.output_uploaded(out.id)
            location = dest.deliver(item, calls)
            state = self._delivered(flow, row, out, location)
        elif state is OutputState.UPLOADED:
            state = self._delivered(flow, row, out, self._resume(dest, item, calls))
        if state is OutputState.DELIVERED and marker:
            dest.write_marker(item, marker)
            self.journal.output_marked(out.id)

    def _resume(self, dest: Destination, item: Delivery, calls: JournalCalls) -> str:
        """An unfinished delivery: ask the destination whether it arrived before delivering again."""
        status = dest.status(item, calls)
        if status.delivered is Delivered.YES:
            return status.location or item.name
        if status.delivered is Delivered.NO:
            if not item.staged.exists():
                raise DeliveryError(_("the staged output {path} is missing").format(path=item.staged))
            return dest.deliver(item, calls)
        raise DeliveryError(_(
            "{destination} cannot tell yet whether {name} arrived ({detail}); it is asked again on the next run, "
            "never sent blindly a second time").format(
                destination=dest.describe(), name=item.name, detail=status.detail or _("no answer")))

    def _delivered(self, flow: Flow, row: InputRow, out: OutputRow, location: str) -> OutputState:
        crashpoint("published")
        self.journal.output_delivered(out.id, location)
        log.info("%s: %s → %s", flow.name, printable(row.name), printable(location))
        return OutputState.DELIVERED
