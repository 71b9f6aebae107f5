"""A time limit per record, so that a mapping that loops endlessly cannot hold the gateway.

Jinja's sandbox bounds what a template may touch, not how long it runs: two nested
``range(100000)`` loops keep a process busy for hours. The limit is a real-time timer
(SIGALRM), re-armed for every record, whose handler raises ``RecordTimeout`` in the
middle of whatever is rendering. ``RecordTimeout`` is a ``BaseException`` on purpose: the
error paths that render a failed column once more to name it catch ``Exception`` and
must not start the endless loop a second time.

Signals reach only the main thread; elsewhere (an embedding application's worker thread)
the limit is not applied, and this module says so rather than pretend.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from .i18n import _

DEFAULT_SECONDS = 30.0


class RecordTimeout(BaseException):
    """A record took longer than the limit."""


class RecordClock:
    def __init__(self, seconds: float = DEFAULT_SECONDS) -> None:
        self.seconds = seconds
        self.active = seconds > 0 and threading.current_thread() is threading.main_thread()
        self._previous: Any = None

    def __enter__(self) -> RecordClock:
        if self.active:
            self._previous = signal.signal(signal.SIGALRM, self._expired)
        return self

    def start(self) -> None:
        """Give the next record the full time."""
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        raise RecordTimeout(self.seconds)

    def message(self) -> str:
        return _("converting one record took longer than {seconds} seconds; a template or expression of the "
                 "mapping probably loops without end (look for nested loops over range())").format(
                     seconds=f"{self.seconds:g}")
