"""Telling the admin by e-mail what needs a person: a quarantined input, a partner that stays down.

Each alert is sent once per change of state: one message when an input is quarantined,
one when a source or destination has been failing for longer than ``alerts.after_minutes``
(not one per poll), and one when it works again. An alert that cannot be sent is logged;
it never stops the processing it reports on.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import tempfile
from pathlib import Path

from .clock import SYSTEM_CLOCK, Clock
from .config import Installation
from .errors import GatewayError
from .files import printable
from .i18n import _
from .journal import Journal

log = logging.getLogger("gateway")

_SOURCE = re.compile(r"^source of (?P<flow>.+)$")
_DESTINATION = re.compile(r"^destination (?P<name>\S+) of (?P<flow>.+)$")


def place_words(place: str) -> str:
    """A place as the journal keeps it (``source of orders``, in English: it is its key) in the admin's language."""
    match = _SOURCE.match(place)
    if match:
        return _("source of {flow}").format(flow=match["flow"])
    match = _DESTINATION.match(place)
    if match:
        return _("destination {name} of {flow}").format(name=match["name"], flow=match["flow"])
    return place


class Alerts:
    def __init__(self, inst: Installation, journal: Journal, clock: Clock = SYSTEM_CLOCK) -> None:
        self.inst = inst
        self.journal = journal
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.inst.alerts is not None and self.inst.smtp is not None

    def quarantined(self, flow: str, name: str, input_id: int, error: str) -> None:
        shown = printable(name)  # a partner's file name must not write lines of its own into the message
        self._send(
            _("Gateway: {flow}: {name} was quarantined").format(flow=flow, name=shown),
            _("The input {name} of the flow {flow} could not be processed and was put aside:\n\n"
              "    {error}\n\n"
              "What to do: correct the file or the mapping, then run\n\n"
              "    gateway retry {id}\n\n"
              "Other inputs are processed as usual.\n").format(name=shown, flow=flow, error=error, id=input_id),
        )

    def all_skipped(self, flow: str, name: str, input_id: int, warning: str) -> None:
        shown = printable(name)
        self._send(
            _("Gateway: {flow}: nothing came of {name}").format(flow=flow, name=shown),
            _("The input {name} of the flow {flow} was processed, but nothing was delivered:\n\n"
              "    {warning}\n\n"
              "The details are in the journal (gateway journal, input {id}). If a setting or the mapping\n"
              "was wrong, correct it and run 'gateway retry {id}'.\n").format(
                  name=shown, flow=flow, warning=warning, id=input_id),
        )

    def check_places(self) -> None:
        """Alert for every source or destination failing longer than the configured time."""
        if not self.enabled or self.inst.alerts is None:
            return
        limit = self.clock.now() - dt.timedelta(minutes=self.inst.alerts.after_minutes)
        for place in self.journal.due_alerts(limit.isoformat(timespec="seconds")):
            words = place_words(place["place"])
            sent = self._send(
                _("Gateway: {place} has been failing since {since}").format(place=words, since=place["failing_since"]),
                _("{place} (flow {flow}) has been failing since {since}.\n"
                  "The last error was:\n\n    {error}\n\n"
                  "Inputs and outputs wait and are tried again automatically; nothing is lost. Check the\n"
                  "connection, the partner's server or the credentials named in the error.\n").format(
                      place=words, flow=place["flow"], since=place["failing_since"], error=place["error"]),
            )
            if sent:
                self.journal.alerted(place["place"])

    def recovered(self, place: str, flow: str) -> None:
        words = place_words(place)
        self._send(_("Gateway: {place} works again").format(place=words),
                   _("{place} (flow {flow}) works again.\n").format(place=words, flow=flow))

    def _send(self, subject: str, text: str) -> bool:
        from .destinations.base import Delivery, NoCalls
        from .destinations.email import SmtpDestination
        from .writers.email import build_message

        alerts, smtp = self.inst.alerts, self.inst.smtp
        if alerts is None or smtp is None:
            return False
        spool = self.inst.state_dir / "spool" / "alerts"
        token = secrets.token_hex(8)
        destination = SmtpDestination(smtp.host, smtp.port, spool=spool, security=smtp.security,
                                      user=smtp.user, password_env=smtp.password_env)
        try:
            data = build_message(sender=smtp.sender, to=alerts.email, subject=subject, text=text,
                                 message_id=f"<gw.alert.{secrets.token_hex(12)}@{smtp.domain}>")
            with tempfile.TemporaryDirectory() as tmp:
                staged = Path(tmp) / f"alert-{token}.eml"
                staged.write_bytes(data)
                item = Delivery(key=f"alert-{token}", name=staged.name, staged=staged, flow="alerts",
                                input_id=0, output="alert")
                try:
                    destination.prepare(item)
                    destination.deliver(item, NoCalls())
                finally:
                    destination.close()
        except GatewayError as exc:
            log.warning(_("could not send the alert '{subject}': {error}").format(subject=subject, error=exc))
            (spool / f"alert-{token}.eml").unlink(missing_ok=True)
            return False
        return True
