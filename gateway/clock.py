"""Time, as the engine and the service see it: one object, passed in, never read from modules.

Dates decide real things here: which promotions are valid today, which archive folder an
input goes to, when a schedule is due, when a failing partner is worth an alert. A test
that wants "the 27th of November" or "31 minutes later" hands the engine a
:class:`ManualClock` instead of patching ``datetime`` in some module.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the gateway asks of time."""

    def now(self) -> dt.datetime:
        """The current moment, time-zone aware (UTC): for the journal and alerts."""

    def local_now(self) -> dt.datetime:
        """The current local date and time, naive: for schedules (``at: 06:00``) and archive days."""

    def today(self) -> dt.date:
        """The local date: for ``input.today`` in mappings and the archive folder of the day."""

    def time(self) -> float:
        """Seconds since the epoch: compared with file time stamps (settling)."""

    def monotonic(self) -> float:
        """Seconds that only go forward: for waits, deadlines and time limits."""

    def sleep(self, seconds: float) -> None:
        """Wait (a manual clock moves itself forward instead)."""


class SystemClock:
    """The real time of this machine."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def local_now(self) -> dt.datetime:
        return dt.datetime.now()

    def today(self) -> dt.date:
        return dt.date.today()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock whose dates stand still until a test moves it (``advance``); thread-safe.

    ``start`` is a local time; UTC is taken to be the same, which is all a test needs.
    :meth:`time` is the exception: it is compared with the time stamps of real files (is a
    file settled?), so it is this machine's time plus what ``advance`` added.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._local = (start or dt.datetime(2026, 11, 27, 9, 0, 0)).replace(tzinfo=None)
        self._mono = 1000.0
        self._ahead = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._local += dt.timedelta(seconds=seconds)
            self._mono += seconds
            self._ahead += seconds

    def set(self, local: dt.datetime) -> None:
        """Jump the wall clock (as an admin or NTP may); monotonic time does not move."""
        with self._lock:
            self._local = local.replace(tzinfo=None)

    def now(self) -> dt.datetime:
        with self._lock:
            return self._local.replace(tzinfo=dt.UTC)

    def local_now(self) -> dt.datetime:
        with self._lock:
            return self._local

    def today(self) -> dt.date:
        return self.local_now().date()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._ahead

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))


SYSTEM_CLOCK = SystemClock()


def stamp(clock: Clock) -> str:
    """The journal's time stamp: UTC, seconds, ISO 8601."""
    return clock.now().isoformat(timespec="seconds")
