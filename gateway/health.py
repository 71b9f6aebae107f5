"""Whether each source and destination works: logged once per change, kept in the journal, alerted.

A partner that is down is tried again on every cycle; writing "fails" every few seconds
would bury the log, so a failure is a warning once when it starts, then quiet until it ends.
"""

from __future__ import annotations

import logging

from .alerts import Alerts, place_words
from .i18n import _
from .journal import Journal

log = logging.getLogger("gateway")


class Places:
    def __init__(self, journal: Journal, alerts: Alerts) -> None:
        self.journal = journal
        self.alerts = alerts
        self._known: dict[str, bool] = {}  # last known state of each place in this process (True = works)

    def ok(self, place: str, flow: str) -> None:
        """Note that a source or destination works; logged (and told) only when that is news."""
        if self._known.get(place) is True:
            return
        if self.journal.place_ok(place, flow):
            log.info("%s works again", place)
            if self.alerts.enabled:
                self.alerts.recovered(place, flow)
        self._known[place] = True

    def failed(self, place: str, flow: str, exc: Exception) -> None:
        """Note a failure; logged as a warning once when it starts, then quietly until it ends."""
        if self.journal.place_failed(place, flow, str(exc)) or self._known.get(place) is not False:
            log.warning(_("{place} fails: {error} (tried again automatically)").format(
                place=place_words(place), error=exc))
        else:
            log.debug("%s still fails: %s", place, exc)
        self._known[place] = False
        self.alerts.check_places()
