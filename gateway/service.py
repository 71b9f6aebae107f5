"""Automatic mode (``gateway run``): watch the inboxes and run the schedules until told to stop.

File system events only *wake* the loop; they never say what to take. What to take is
decided by a scan of the inbox (``Engine.drain``), because events are unreliable
(ENGINEERING.md, "Folder watching"): a create event arrives when writing starts,
inotify drops events when its queue overflows, and nothing at all arrives for files
written by other machines on a network share or from a Docker host. Hence:

* at start, ``Engine.recover`` for every flow, then a full scan;
* an event for a flow schedules a scan of that flow (at most one per ``EVENT_GAP``:
  a slow copy sends thousands of modify events);
* a scan that sees a file still being written wakes up again when that file's settle
  time will have passed, so it is taken in time even if no further event comes;
* every ``rescan_seconds`` a full rescan, with ``Engine.recover`` (inputs whose delivery
  failed wait in the work folder), a repair of lost watches and the archive purge;
* a flow with a ``Schedule`` is not watched: it is scanned when due.

The loop sleeps until the earliest of these deadlines or an event, whichever is first.
Each pass of the loop (the start-up work, then every wake-up) can be reported to an
``on_pass`` callback as a :class:`Pass`: which flows were looked at and why, and what
each look left at its source. Tests wait for the pass that proves a moment has come and
gone ("the scan saw the file and left it") instead of sleeping; with a
:class:`~gateway.clock.ManualClock` they move time themselves and call :meth:`Service.wake`.

One flow's trouble (an inbox that vanished, a full disk) is logged once when it
starts and once when it ends, not every cycle, and the other flows go on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from .clock import Clock
from .config import Flow
from .engine import Engine
from .errors import GatewayError
from .i18n import _
from .reload import MappingReloader
from .schedule import Schedule, ScheduleTimer
from .sources.base import Candidate, Source
from .summary import RunSummary

log = logging.getLogger("gateway")

WatchMode = Literal["auto", "native", "polling"]
WATCH_MODES: tuple[WatchMode, ...] = ("auto", "native", "polling")
# Why a flow's source was looked at: the start-up scan, an event, a file seen unfinished whose
# settle time has passed, the periodic rescan, a schedule that was due. When several reasons
# meet, the one that would have caused the look on its own wins: rescan, then settle, then event.
ScanReason = Literal["start", "event", "settle", "rescan", "schedule"]

# A flow is scanned because of events at most once per EVENT_GAP seconds.
EVENT_GAP = 0.2
# Wake this long after a file's settle time, so that the scan finds it settled.
SETTLE_SLACK = 0.05
# Never wake for the same unfinished file more often than this (a file with a future time stamp).
MIN_RECHECK = 0.1
# A schedule with `at` times looks at the wall clock at least this often, so that a clock
# jump while the loop sleeps (sleeping counts monotonic time) delays a run by no more.
SCHEDULE_LOOK = 30.0
# How long to wait for an observer thread to end.
JOIN_SECONDS = 5.0

# Events worth a scan: something appeared, was written or renamed. Deletions are not (our own
# claims are deletions), except that of the watched folder itself, which ends the watch.
# Opened/closed-without-writing events are left out: they would come from readers, even scans.
WAKE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent,
    DirCreatedEvent, DirMovedEvent, DirDeletedEvent,  # batch folders; the inbox itself deleted
]


class _QuietStoppedEmitter(logging.Filter):
    """Demote watchdog 7.1's "queue_events() called when the thread is inactive" to DEBUG.

    watchdog logs it as an ERROR when an inotify emitter stops while an unpaired move
    event waits in its 0.5 s grouping queue: after every claim (a rename out of the inbox)
    and when a watched folder is deleted. Nothing is wrong then, and an operator should
    not see an ERROR on every shutdown.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and "called when the thread is inactive" in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_QUIET_STOPPED_EMITTER = _QuietStoppedEmitter()


class _Waker(FileSystemEventHandler):
    """Turns every event in a flow's inbox into 'look at this flow' (runs in the observer thread)."""

    def __init__(self, notify: Callable[[str, bool], None], flow: str, folder: str) -> None:
        super().__init__()
        self._notify = notify
        self._flow = flow
        self._folder = folder

    def on_any_event(self, event: FileSystemEvent) -> None:
        lost = isinstance(event, DirDeletedEvent) and os.fsdecode(event.src_path) == self._folder
        self._notify(self._flow, lost)


@dataclass(frozen=True)
class Scan:
    """One look at a flow's source during a :class:`Pass`."""

    flow: str
    why: ScanReason
    left: tuple[Candidate, ...] = ()  # still at the source afterwards: being written, or not taken now
    error: str | None = None  # the look failed (logged once per change, like every problem)


@dataclass(frozen=True)
class Pass:
    """What one pass of the service's loop did, as told to ``on_pass``.

    Passes are reported in order: the start-up work first, then one per wake-up, idle ones
    included, so that a pass with a later ``at`` proves that everything before it was seen.
    """

    at: float  # the clock's monotonic time when the pass began
    rescan: bool  # a full rescan was part of it (recover, watches repaired, archive purged)
    scans: tuple[Scan, ...]  # the flows looked at, in order
    summary: RunSummary  # what the pass handled


@dataclass
class _FlowState:
    flow: Flow
    timer: ScheduleTimer | None
    watch: tuple[BaseObserver, ObservedWatch] | None = None
    watched: tuple[int, int] | None = None  # (device, inode) of the folder when the watch began
    native_refused: bool = False  # auto mode fell back to polling for this inbox
    event_at: float | None = None  # monotonic: scan because of an event
    recheck_at: float | None = None  # monotonic: a file seen unfinished will have settled by then
    last_check: float = -math.inf
    pending: int = 0  # inputs waiting for delivery, as of the last recover and the scans since


class Service:
    """``gateway run`` without ``--once``: see the module docstring for what it does when.

    Constructed from plain values so that the command line can pass what the config says:

    * ``watch``: ``native`` uses the system's notifications (inotify), ``polling`` lists
      the folders every ``poll_seconds`` (network shares, Docker bind mounts), ``auto``
      is native and falls back to polling, with a warning, for an inbox that cannot be
      watched natively (inotify watch or instance limit reached).
    * ``rescan_seconds``: the full rescan; the safety net for lost events.
    * ``schedules``: flow name → ``Schedule``; those flows are scanned only when due
      (entries for flows not being run are ignored).
    * ``on_cycle``: called with each cycle's ``RunSummary`` when inputs were handled
      (not for idle wake-ups); an exception in it is logged and does not stop the service.
    * ``on_pass``: called with a :class:`Pass` after every pass of the loop, idle ones too
      (for tests: see the module docstring); an exception in it is logged likewise.

    ``ready`` is set once the start-up work (recover, watches, first scan) is done.
    """

    def __init__(
        self,
        engine: Engine,
        flows: Sequence[Flow],
        *,
        watch: WatchMode = "auto",
        rescan_seconds: float = 60.0,
        poll_seconds: float = 2.0,
        schedules: Mapping[str, Schedule] | None = None,
        on_cycle: Callable[[RunSummary], None] | None = None,
        on_pass: Callable[[Pass], None] | None = None,
    ) -> None:
        if watch not in WATCH_MODES:
            raise ValueError(f"watch must be one of {', '.join(WATCH_MODES)}, not '{watch}'")
        if not rescan_seconds > 0:
            raise ValueError(f"rescan_seconds must be more than 0, not {rescan_seconds}")
        if not poll_seconds > 0:
            raise ValueError(f"poll_seconds must be more than 0, not {poll_seconds}")
        self.engine = engine
        self._reloader = MappingReloader(engine.inst)  # a mapping the admin corrects is taken without a restart
        self.flows = list(flows)
        self.watch_mode: WatchMode = watch
        self.rescan_seconds = float(rescan_seconds)
        self.poll_seconds = float(poll_seconds)
        self.schedules = dict(schedules or {})
        self.on_cycle = on_cycle
        self.on_pass = on_pass
        self.clock: Clock = engine.clock
        self.ready = threading.Event()
        logging.getLogger("watchdog.observers.inotify").addFilter(_QUIET_STOPPED_EMITTER)  # once: same object

        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._woken: set[str] = set()
        self._lost: set[str] = set()
        self._states: dict[str, _FlowState] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._native: BaseObserver | None = None
        self._native_error: OSError | None = None
        self._polling: BaseObserver | None = None
        self._next_rescan = 0.0
        self._total = RunSummary()
        self._scans: list[Scan] = []  # the looks of the pass in hand, for on_pass

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> RunSummary:
        """Run until ``stop`` is set; then finish the scan in hand and return what was done.

        In the returned summary, ``pending`` is the number of inputs still waiting for
        delivery at the end (not the number of attempts).
        """
        wall = self.clock.local_now()
        self._states = {
            f.name: _FlowState(f, ScheduleTimer(s, wall=wall) if (s := self.schedules.get(f.name)) else None)
            for f in self.flows
        }
        self._total = RunSummary()
        self.ready.clear()
        finished = threading.Event()
        threading.Thread(target=self._forward_stop, args=(stop, finished), name="gateway-stop", daemon=True).start()
        try:
            self._start(stop)
            self.ready.set()
            while not stop.is_set():
                timeout = self._next_wake() - self.clock.monotonic()
                if timeout > 0:
                    self._wake.wait(timeout)
                self._wake.clear()
                if stop.is_set():
                    break
                cycle = RunSummary()
                at = self.clock.monotonic()
                self._scans = []
                rescan = self._cycle(stop, cycle)
                self._report(cycle)
                self._report_pass(at, rescan, cycle)
        finally:
            finished.set()
            self._stop_watching()
        self._total.pending = sum(st.pending for st in self._states.values())
        return self._total

    def wake(self) -> None:
        """Look at the deadlines again now.

        Events wake the loop by themselves, and a real clock needs nothing else. A test that
        moved the service's :class:`~gateway.clock.ManualClock` calls this, because the loop
        sleeps on a real timer computed from the clock's time before it was moved.
        """
        self._wake.set()

    def _forward_stop(self, stop: threading.Event, finished: threading.Event) -> None:
        """Wake the loop when ``stop`` is set (the loop sleeps on its own event, which events set)."""
        while not stop.wait(1.0):
            if finished.is_set():
                return
        self._wake.set()

    def _start(self, stop: threading.Event) -> None:
        cycle = RunSummary()
        at = self.clock.monotonic()
        self._scans = []
        for st in self._states.values():
            if stop.is_set():
                return
            self._recover(st, cycle)
        # Watch before the first scan: a file arriving during a long first scan wakes us after it.
        for st in self._states.values():
            if self._watched(st):
                self._watch(st)
        for st in self._states.values():
            if stop.is_set():
                return
            if st.timer is None:
                self._check(st, cycle, "start")
            else:
                log.info(_("{flow}: runs {schedule}").format(flow=st.flow.name,
                                                             schedule=st.timer.schedule.describe()))
                self._run_if_due(st, st.timer, cycle)
        self._purge()
        self._report(cycle)
        self._report_pass(at, True, cycle)
        self._next_rescan = self.clock.monotonic() + self.rescan_seconds

    def _cycle(self, stop: threading.Event, cycle: RunSummary) -> bool:
        """One wake-up's work; whether it was a full rescan."""
        now = self.clock.monotonic()
        self._take_events(now)
        rescan = now >= self._next_rescan
        if rescan and not self._upkeep(stop, cycle):
            return rescan
        for st in self._states.values():
            if stop.is_set():
                return rescan
            self._check_if_due(st, cycle, now, rescan)
        if rescan:
            self._next_rescan = self.clock.monotonic() + self.rescan_seconds
        return rescan

    def _take_events(self, now: float) -> None:
        """Act on what the watchers reported since the last wake-up: watch deleted folders again, and set an
        event scan for each woken flow (not before ``EVENT_GAP`` after its last look, so a burst is one scan)."""
        with self._lock:
            woken, self._woken = self._woken, set()
            lost, self._lost = self._lost, set()
        for name in lost:
            st = self._states.get(name)
            if st is not None:
                self._rewatch(st, _("the folder was deleted"))
        for name in woken:
            st = self._states.get(name)
            if st is None or st.timer is not None:
                continue
            at = max(now, st.last_check + EVENT_GAP)
            st.event_at = at if st.event_at is None else min(st.event_at, at)

    def _upkeep(self, stop: threading.Event, cycle: RunSummary) -> bool:
        """A rescan's care before the scans: recover interrupted work, renew lost watches, clean up the archive;
        whether it got through (``False`` when ``stop`` came first)."""
        for st in self._states.values():
            if stop.is_set():
                return False
            self._recover(st, cycle)
        for st in self._states.values():
            if self._watched(st) and not self._watching(st):
                self._rewatch(st, _("the folder was replaced or its watch had ended"))
        self._purge()
        return True

    def _check_if_due(self, st: _FlowState, cycle: RunSummary, now: float, rescan: bool) -> None:
        """Scan one flow if anything calls for it now: its schedule, a rescan, a settle re-check or an event."""
        if st.timer is not None:
            if not self._run_if_due(st, st.timer, cycle) and _passed(st.recheck_at, now):
                self._check(st, cycle, "settle")  # the due run waits for the files it saw being written
        elif rescan:
            self._check(st, cycle, "rescan")
        elif _passed(st.recheck_at, now):
            self._check(st, cycle, "settle")
        elif _passed(st.event_at, now):
            self._check(st, cycle, "event")

    def _next_wake(self) -> float:
        """The monotonic time of the earliest deadline: rescan, event scan, settle re-check, schedule."""
        mono = self.clock.monotonic()
        wall = self.clock.local_now()
        wake = self._next_rescan
        for st in self._states.values():
            for at in (st.event_at, st.recheck_at):
                if at is not None:
                    wake = min(wake, at)
            if st.timer is not None:
                wait = st.timer.seconds_until_due(wall, mono)
                if st.timer.schedule.at:
                    wait = min(wait, SCHEDULE_LOOK)
                wake = min(wake, mono + wait)
        return wake

    # -- one flow -----------------------------------------------------------------------

    def _run_if_due(self, st: _FlowState, timer: ScheduleTimer, cycle: RunSummary) -> bool:
        started = self.clock.local_now()
        if not timer.due(started, self.clock.monotonic()):
            return False
        log.debug("%s: scheduled run", st.flow.name)
        self._check(st, cycle, "schedule")
        timer.ran(started_wall=started, finished_mono=self.clock.monotonic())
        return True

    def _check(self, st: _FlowState, cycle: RunSummary, why: ScanReason) -> None:
        """Scan the flow's inbox, drain it when something is complete, and note when to look again."""
        flow = st.flow
        key = (flow.name, "inbox")
        candidates: Sequence[Candidate] = ()
        error: str | None = None
        try:
            source = self.engine.source(flow)
            if source.local_folder is not None:
                # A local scan is cheap: drain only when there is something to take, because
                # drain logs every unfinished file it sees (a slow copy would fill the log).
                candidates = source.scan()
                if any(source.settle_remaining(c) <= 0 for c in candidates):
                    self._drain(st, cycle)
                    candidates = source.scan()
            elif self._drain(st, cycle).messages or source.polled:
                # A remote source is scanned by drain, which also keeps the partner's health
                # (logged once per change, alerts); a listing that failed is not repeated now.
                # A polled source (a database) always says "read now": drain has just read it.
                candidates = []
            else:
                try:
                    candidates = source.scan()
                except (GatewayError, OSError) as exc:
                    log.debug("%s: listing again failed: %s", flow.name, exc)
                    candidates = []
            st.recheck_at = _recheck_time(source, candidates, self.clock.monotonic())
        except Exception as exc:
            st.recheck_at = None  # the next event or rescan tries again
            candidates, error = (), _text(exc)
            self._problem(key, _("{flow}: the inbox {folder} cannot be scanned: {error}; tried again on the next "
                                 "event or rescan, the other flows go on").format(
                flow=flow.name, folder=flow.source_folder, error=_text(exc)), exc)
        else:
            self._resolved(key, _("{flow}: the inbox {folder} can be scanned again").format(
                flow=flow.name, folder=flow.source_folder))
        finally:
            st.event_at = None
            st.last_check = self.clock.monotonic()
        self._scans.append(Scan(flow.name, why, tuple(candidates), error))

    def _drain(self, st: _FlowState, cycle: RunSummary) -> RunSummary:
        if not self._reloader.refresh(st.flow):
            return RunSummary()  # its mapping cannot be used: the inputs wait where they are
        summary = self.engine.drain(st.flow, wait_for_settle=False)
        st.pending += summary.pending
        cycle.add(summary)
        return summary

    def _recover(self, st: _FlowState, cycle: RunSummary) -> None:
        flow = st.flow
        if not self._reloader.refresh(flow):
            return  # its mapping cannot be used: unfinished inputs wait in the work folder
        key = (flow.name, "work")
        try:
            summary = self.engine.recover(flow)
        except Exception as exc:
            self._problem(key, _("{flow}: unfinished inputs in the work folder cannot be handled: {error}; "
                                 "tried again on the next rescan").format(flow=flow.name, error=_text(exc)), exc)
            return
        st.pending = summary.pending  # recover retried every waiting input: this is the current count
        cycle.add(summary)
        self._resolved(key, _("{flow}: the work folder can be handled again").format(flow=flow.name))

    def _purge(self) -> None:
        try:
            self.engine.purge_archive()
        except Exception as exc:
            self._problem(("", "archive"), _("the archive cannot be cleaned up: {error}").format(error=_text(exc)),
                          exc)
        else:
            self._resolved(("", "archive"), _("the archive can be cleaned up again"))

    def _report(self, cycle: RunSummary) -> None:
        self._total.add(cycle)
        if self.on_cycle is None:
            return
        if not (cycle.done or cycle.duplicate or cycle.failed or cycle.pending or cycle.skipped_records
                or cycle.messages):
            return
        try:
            self.on_cycle(cycle)
        except Exception as exc:
            self._problem(("", "on_cycle"), _("the cycle report failed: {error}").format(error=_text(exc)), exc)
        else:
            self._resolved(("", "on_cycle"), _("the cycle report works again"))

    def _report_pass(self, at: float, rescan: bool, cycle: RunSummary) -> None:
        if self.on_pass is None:
            return
        done = Pass(at, rescan, tuple(self._scans), cycle)
        try:
            self.on_pass(done)
        except Exception as exc:
            self._problem(("", "on_pass"), _("the pass report failed: {error}").format(error=_text(exc)), exc)
        else:
            self._resolved(("", "on_pass"), _("the pass report works again"))

    # -- trouble, logged once per change ------------------------------------------------

    def _problem(self, key: tuple[str, str], message: str, exc: BaseException) -> None:
        if self._problems.get(key) == message:
            log.debug("%s (still)", message)
            return
        self._problems[key] = message
        # Our own kind of trouble is explained by its message; anything else may be a bug.
        expected = isinstance(exc, OSError)
        log.error("%s", message, exc_info=None if expected else exc)

    def _resolved(self, key: tuple[str, str], message: str) -> None:
        if self._problems.pop(key, None) is not None:
            log.info("%s", message)

    # -- watching -----------------------------------------------------------------------

    def _notify(self, flow: str, lost: bool) -> None:
        """Called by the observer threads for every event."""
        with self._lock:
            self._woken.add(flow)
            if lost:
                self._lost.add(flow)
        self._wake.set()

    def _native_observer(self) -> BaseObserver:
        if self._native is None:
            if self._native_error is not None:
                raise self._native_error
            if Observer is PollingObserver:
                self._native_error = OSError(errno.ENOSYS, _("this system has no native file notifications"))
                raise self._native_error
            try:
                observer = Observer()
                observer.start()
            except OSError as exc:
                self._native_error = exc
                raise
            self._native = observer
        return self._native

    def _polling_observer(self) -> BaseObserver:
        if self._polling is None:
            observer = PollingObserver(timeout=self.poll_seconds)
            observer.start()
            self._polling = observer
        return self._polling

    @staticmethod
    def _watched(st: _FlowState) -> bool:
        """Local inboxes of flows without a schedule are watched; SFTP folders wait for the rescan."""
        return st.timer is None and st.flow.source_folder is not None

    def _schedule(self, observer: BaseObserver, st: _FlowState) -> None:
        folder = str(st.flow.source_folder)
        handler = _Waker(self._notify, st.flow.name, folder)
        # A batch is a folder completed by a marker file inside it: only a recursive watch sees that.
        recursive = self.engine.source(st.flow).recursive_watch
        st.watch = (observer, observer.schedule(handler, folder, recursive=recursive, event_filter=WAKE_EVENTS))

    def _watch(self, st: _FlowState, again: str | None = None) -> None:
        flow = st.flow
        folder = flow.source_folder
        if folder is None:
            return
        key = (flow.name, "watch")
        kind = _("native")
        try:
            folder.mkdir(parents=True, exist_ok=True)  # so that a partner has somewhere to drop
            st.watched = _identity(folder)
            if self.watch_mode != "polling" and not st.native_refused:
                try:
                    self._schedule(self._native_observer(), st)
                except OSError as exc:
                    if self.watch_mode == "native" or exc.errno in (errno.ENOENT, errno.ENOTDIR):
                        raise
                    st.native_refused = True
                    log.warning(_("{flow}: the inbox {folder} cannot be watched natively ({error}); polling it "
                                  "every {seconds:g} s instead").format(
                        flow=flow.name, folder=folder, error=_text(exc), seconds=self.poll_seconds))
            if st.watch is None:
                kind = _("polling every {seconds:g} s").format(seconds=self.poll_seconds)
                self._schedule(self._polling_observer(), st)
        except Exception as exc:
            self._problem(key, _("{flow}: the inbox {folder} cannot be watched: {error}; it is scanned every "
                                 "{seconds:g} s until this is fixed").format(
                flow=flow.name, folder=folder, error=_text(exc), seconds=self.rescan_seconds), exc)
            return
        if key in self._problems:
            self._resolved(key, _("{flow}: watching the inbox {folder} again ({kind})").format(
                flow=flow.name, folder=folder, kind=kind))
        elif again:
            log.info(_("{flow}: watching the inbox {folder} again ({why}; {kind})").format(
                flow=flow.name, folder=folder, why=again, kind=kind))
        else:
            log.info(_("{flow}: watching {folder} ({kind})").format(flow=flow.name, folder=folder, kind=kind))

    def _watching(self, st: _FlowState) -> bool:
        """Whether the flow's watch still works.

        An emitter ends when its folder is deleted; a watch follows the folder's inode,
        so it sees nothing once the folder was moved away and another put in its place.
        """
        if st.watch is None or st.flow.source_folder is None:
            return False
        observer, watch = st.watch
        if not observer.is_alive():
            return False
        if not any(e.watch == watch and e.is_alive() for e in list(observer.emitters)):
            return False
        try:
            return _identity(st.flow.source_folder) == st.watched
        except OSError:
            return False

    def _rewatch(self, st: _FlowState, reason: str) -> None:
        if st.watch is not None:
            observer, watch = st.watch
            with contextlib.suppress(Exception):
                observer.unschedule(watch)
            st.watch = None
            self._watch(st, again=reason)
        else:
            self._watch(st)

    def _stop_watching(self) -> None:
        observers = [o for o in (self._native, self._polling) if o is not None]
        for observer in observers:
            with contextlib.suppress(Exception):
                observer.stop()
        for observer in observers:
            with contextlib.suppress(RuntimeError):
                observer.join(JOIN_SECONDS)
        self._native = self._polling = None
        self._native_error = None
        for st in self._states.values():
            st.watch = None


def _recheck_time(source: Source, candidates: Sequence[Candidate], now: float) -> float | None:
    """When the earliest file still being written will count as complete, if it stays unchanged."""
    waits = [source.settle_remaining(c) for c in candidates]
    if not waits:
        return None
    # A time stamp in the future (another machine's clock) would give a long wait: look
    # again after the settle time anyway; the source decides whether the file is complete.
    wait = min(min(waits), max(source.settle_seconds, 1.0))
    return now + max(wait + SETTLE_SLACK, MIN_RECHECK)


def _identity(folder: Path) -> tuple[int, int]:
    st = os.stat(folder)
    return st.st_dev, st.st_ino


def _passed(at: float | None, now: float) -> bool:
    return at is not None and now >= at


def _text(exc: BaseException) -> str:
    """An exception in plain words: an ``OSError`` says what and where without its class name."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
