"""When a scheduled flow runs: every N minutes, and/or at fixed local times of day.

A flow with a schedule (periodic pulls, exports an importer collects at set hours) is
drained only when it is due, not whenever a file appears.

Clocks. The wall clock can jump: an NTP correction, a wrong date fixed by hand, the
change from summer to winter time. Two rules keep a schedule from firing twice in a
burst or stalling for hours when it does:

* ``every_minutes`` counts with ``time.monotonic()``, which never jumps. The interval
  runs from the *end* of the previous run (fixed delay), so a run that takes longer
  than the interval is not followed by a burst of catch-up runs. (Linux's monotonic
  clock stands still during suspend: after a resume the interval simply continues.)
* ``at`` times are times of the *wall clock* in local time, because "06:00" means what
  the clock on the wall says. Missed times (the service was busy, or the clock jumped
  forward) coalesce into one run. When the clock goes back, the "handled until" mark
  comes back with it, so the schedule never waits for the old time to come round
  again; and a time that already fired (06:00 of that date) does not fire a second
  time when the clock shows it again (the repeated hour in autumn, a clock set back).

``Schedule`` holds what the configuration says and answers pure questions about wall
times (``next_due``, ``due``); ``ScheduleTimer`` is one schedule's state in a running
service and applies the rules above. Both take "now" as arguments, so tests inject it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator

from .i18n import _

_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def _describe(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def parse_times(values: Iterable[object] | str) -> list[dt.time]:
    """Times of day written as ``HH:MM`` (24-hour clock), sorted, each once.

    Raises ``ValueError`` with a message an admin can act on. A number is refused with
    a hint about quotes: unquoted, YAML reads ``12:30`` as the number 750.
    """
    if isinstance(values, str):
        values = [values]
    times: set[dt.time] = set()
    for value in values:
        if not isinstance(value, str):
            raise ValueError(_(
                "{value} is not a time of day: write times in quotes as HH:MM, e.g. \"06:00\" "
                "(without quotes YAML reads 12:30 as the number 750)").format(value=_describe(value)))
        match = _TIME.fullmatch(value.strip())
        if match is None:
            raise ValueError(_(
                "{value} is not a time of day: write it as HH:MM on the 24-hour clock, e.g. 06:00 or 18:30").format(
                value=_describe(value)))
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23:
            raise ValueError(_("{value} is not a time of day: the hour must be 00 to 23 (midnight is 00:00)").format(
                value=_describe(value)))
        if minute > 59:
            raise ValueError(_("{value} is not a time of day: the minutes must be 00 to 59").format(
                value=_describe(value)))
        times.add(dt.time(hour, minute))
    return sorted(times)


class Schedule:
    """A flow's schedule: ``every_minutes`` and/or ``at`` times of day (local time).

    Built from the plain values of the configuration; raises ``ValueError`` in plain
    words when they make no sense, so that the config loader can show it with a line.
    """

    __slots__ = ("at", "every_minutes")

    def __init__(self, every_minutes: float | None = None, at: Iterable[object] | str | None = None) -> None:
        if every_minutes is not None:
            if isinstance(every_minutes, bool) or not isinstance(every_minutes, int | float):
                raise ValueError(_("every_minutes must be a number of minutes, like 15 or 0.5, not {value}").format(
                    value=_describe(every_minutes)))
            if not math.isfinite(every_minutes) or every_minutes <= 0:
                raise ValueError(_("every_minutes must be more than 0 minutes, not {value}").format(
                    value=every_minutes))
        times = tuple(parse_times(at)) if at is not None else ()
        if every_minutes is None and not times:
            raise ValueError(_("a schedule needs 'every_minutes', 'at' times, or both"))
        self.every_minutes: float | None = float(every_minutes) if every_minutes is not None else None
        self.at: tuple[dt.time, ...] = times

    @property
    def every_seconds(self) -> float | None:
        return self.every_minutes * 60.0 if self.every_minutes is not None else None

    def describe(self) -> str:
        """For log lines: ``every 15 min and at 06:00, 18:30``."""
        parts = []
        if self.every_minutes is not None:
            parts.append(_("every {minutes:g} min").format(minutes=self.every_minutes))
        if self.at:
            parts.append(_("at {times}").format(times=", ".join(t.strftime("%H:%M") for t in self.at)))
        if len(parts) == 2:
            return _("{every} and {at}").format(every=parts[0], at=parts[1])
        return parts[0]

    def __repr__(self) -> str:
        at = [t.strftime("%H:%M") for t in self.at]
        return f"Schedule(every_minutes={self.every_minutes!r}, at={at!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return (self.every_minutes, self.at) == (other.every_minutes, other.at)

    def __hash__(self) -> int:
        return hash((self.every_minutes, self.at))

    # -- the `at` times as datetimes ----------------------------------------------------

    def slots_after(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """The ``at`` times strictly after ``after``, earliest first, without end."""
        if not self.at:
            return
        for day in itertools.count():
            date = after.date() + dt.timedelta(days=day)
            for t in self.at:
                slot = dt.datetime.combine(date, t, tzinfo=after.tzinfo)
                if slot > after:
                    yield slot

    def slots_between(self, since: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
        """The ``at`` times in ``(since, until]``, latest first."""
        if not self.at or until <= since:
            return
        date = until.date()
        while date >= since.date():
            for t in reversed(self.at):
                slot = dt.datetime.combine(date, t, tzinfo=until.tzinfo)
                if slot <= since:
                    return
                if slot <= until:
                    yield slot
            date -= dt.timedelta(days=1)

    # -- pure questions on wall times ---------------------------------------------------

    def next_due(self, after: dt.datetime) -> dt.datetime:
        """When a schedule that last ran at ``after`` is due next (wall clock)."""
        candidates = []
        every = self.every_seconds
        if every is not None:
            candidates.append(after + dt.timedelta(seconds=every))
        if self.at:
            candidates.append(next(self.slots_after(after)))
        return min(candidates)

    def due(self, now: dt.datetime, last_run: dt.datetime | None) -> bool:
        """Whether a run is due at ``now``, by wall clock alone.

        ``last_run=None`` (never ran): an interval schedule is due at once, one with only
        ``at`` times is not (pass the start time as ``last_run`` to count from there).
        A ``last_run`` later than ``now`` means the clock went back. Without memory this
        cannot tell how long ago that run really was, so the answer is "due": one run,
        after which the caller's ``last_run`` is the corrected time, rather than a stall
        until the old time comes round again. A running service uses ``ScheduleTimer``,
        which remembers enough to need no such extra run.
        """
        if last_run is None:
            return self.every_minutes is not None
        if last_run > now:
            return True
        return now >= self.next_due(last_run)


class ScheduleTimer:
    """One schedule's state in a running service (see the module docstring for the clocks).

    ``wall`` arguments are local wall-clock datetimes (``datetime.now()``), ``mono``
    arguments are ``time.monotonic()`` values. The timer remembers the latest wall time
    it was shown, so that a clock set back is noticed.

    At start, an interval schedule is due at once (a pull right after start-up is
    what an operator expects); ``at`` times that passed before the start are not
    (a restart at 06:10 does not repeat the 06:00 export).
    """

    def __init__(self, schedule: Schedule, *, wall: dt.datetime) -> None:
        self.schedule = schedule
        self._last_mono: float | None = None  # end of the last run
        self._handled_until = wall  # `at` times up to here need no run
        # `at` times that fired, so that a clock set back does not fire them again;
        # two days' worth is enough for any correction worth surviving.
        self._fired: deque[dt.datetime] = deque(maxlen=2 * len(schedule.at) + 2)

    def _observe(self, wall: dt.datetime) -> None:
        if wall < self._handled_until:  # the clock went back
            self._handled_until = wall

    def _slot_pending(self, wall: dt.datetime) -> bool:
        # At most len(_fired) of the times in the window fired already: one more decides.
        window = self.schedule.slots_between(self._handled_until, wall)
        return any(slot not in self._fired for slot in itertools.islice(window, len(self._fired) + 1))

    def due(self, wall: dt.datetime, mono: float) -> bool:
        self._observe(wall)
        every = self.schedule.every_seconds
        if every is not None and (self._last_mono is None or mono - self._last_mono >= every):
            return True
        return self._slot_pending(wall)

    def ran(self, *, started_wall: dt.datetime, finished_mono: float) -> None:
        """Record a run: ``at`` times up to its start are handled, the interval counts from its end."""
        self._observe(started_wall)
        window = self.schedule.slots_between(self._handled_until, started_wall)
        fired = list(itertools.islice(window, self._fired.maxlen))
        self._fired.extend(reversed(fired))
        self._handled_until = started_wall
        self._last_mono = finished_mono

    def seconds_until_due(self, wall: dt.datetime, mono: float) -> float:
        """How long the service may sleep before this schedule needs a look (0 when due)."""
        self._observe(wall)
        waits: list[float] = []
        every = self.schedule.every_seconds
        if every is not None:
            waits.append(0.0 if self._last_mono is None else every - (mono - self._last_mono))
        if self.schedule.at:
            if self._slot_pending(wall):
                waits.append(0.0)
            else:
                upcoming = itertools.islice(self.schedule.slots_after(wall), len(self._fired) + 1)
                slot = next(s for s in upcoming if s not in self._fired)
                waits.append((slot - wall).total_seconds())
        return max(0.0, min(waits))
