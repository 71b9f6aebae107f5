"""Automatic mode (``gateway.service.Service``) with real folders, real watchdog observers and a real engine.

The service runs in a background thread with a stop Event, the way ``gateway run`` runs it
in the main thread with SIGINT/SIGTERM setting the Event.

Nothing here waits for real seconds to pass or asserts how long something took. Where time
matters (settle times, rescans, schedules) the engine gets a ``ManualClock`` that the test moves
(``Running.advance``), and each step waits for the *pass* of the service's loop that proves it
(``Running.wait_pass``): "a scan after the file was written saw it and left it" rather than "after
a sleep the file was still there". The manual clock stands still until the test moves it, so a
pass that began at or after the time the test moved the clock to came after everything the test
did before moving it. ``SAFETY`` only ends a test that hangs; no assertion depends on it. Where a
test shows that an event or the settle re-check took a file, rescans are an hour apart, so that
the rescan cannot have taken it instead.
"""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from campaign import wait_until_journal_open
from conftest import Install, order_xml, orders_file, read_csv_rows
from sshd import Sshd, sshd_fixture  # noqa: F401 - provides the "sshd" fixture

import gateway.service as service_module
from gateway import Engine, RunSummary, load_installation
from gateway.clock import Clock, ManualClock
from gateway.schedule import Schedule
from gateway.service import Pass, Service

FLOW = "rakuten-orders"
SAFETY = 60.0  # real seconds: ends a test that hangs; never what a test asserts
SETTLE = 600.0  # manual seconds: longer than any test takes in real time, so only advance() settles a file
HOUR = 3600.0


def _set(install: Install, old: str, new: str) -> None:
    text = install.config.read_text(encoding="utf-8")
    assert old in text
    install.config.write_text(text.replace(old, new), encoding="utf-8")


def _settle(install: Install, seconds: float) -> None:
    _set(install, "settle_seconds: 0\n", f"settle_seconds: {seconds}\n")


def wait_for(condition: Callable[[], Any], what: str) -> None:
    """Poll ``condition`` (the state of files or the log) until it is true, or fail after ``SAFETY``."""
    deadline = time.monotonic() + SAFETY
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {SAFETY} s waiting for {what}")
        time.sleep(0.05)


def order_numbers(install: Install, flow: str = FLOW) -> list[str]:
    return [row["Referenznummer"] for out in install.outputs(flow) for row in read_csv_rows(out)]


def journal(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    # stdout only: the service's thread logs into the same captured stderr meanwhile
    return [json.loads(line) for line in result.stdout.splitlines()]


def left(p: Pass, why: str | None = None, flow: str = FLOW) -> dict[str, int]:
    """Name → size of what the pass's looks at ``flow`` (for ``why``, if given) left at the source."""
    return {c.name: c.size for s in p.scans if s.flow == flow and why in (None, s.why) for c in s.left}


def reasons(p: Pass) -> list[tuple[str, str]]:
    return [(s.flow, s.why) for s in p.scans]


class Running:
    """A service running in a thread; ``stop()`` sets the Event and returns its summary."""

    def __init__(self, service: Service, engine: Engine, clock: Clock) -> None:
        self.service = service
        self.engine = engine
        self.clock = clock
        self.event = threading.Event()
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.cycles: list[RunSummary] = []
        self.passes: list[Pass] = []
        self._reported = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="service-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.service.run(self.event)
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            with self._reported:
                self._reported.notify_all()

    def on_pass(self, done: Pass) -> None:
        with self._reported:
            self.passes.append(done)
            self._reported.notify_all()

    def advance(self, seconds: float) -> float:
        """Move the service's ManualClock on and wake the service; the clock's monotonic time now."""
        assert isinstance(self.clock, ManualClock), "advance() needs running(..., clock=ManualClock())"
        self.clock.advance(seconds)
        self.service.wake()
        return self.clock.monotonic()

    def wait_pass(self, what: str, condition: Callable[[Pass], bool], since: float = float("-inf")) -> Pass:
        """The first pass that began at ``since`` or later and meets ``condition``, once it has been reported."""
        deadline = time.monotonic() + SAFETY
        with self._reported:
            while True:
                for p in self.passes:
                    if p.at >= since and condition(p):
                        return p
                if not self.thread.is_alive():
                    raise AssertionError(f"the service ended ({self.error!r}) before a pass {what}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(p.at, p.rescan, [(s.why, sorted(c.name for c in s.left)) for s in p.scans],
                             p.summary) for p in self.passes[-5:]]
                    raise AssertionError(f"no pass {what} within {SAFETY} s; the last passes: {seen}")
                self._reported.wait(remaining)

    def stop(self, timeout: float = SAFETY) -> RunSummary:
        self.event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the service did not stop"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@contextmanager
def running(install: Install, clock: Clock | None = None, **options: Any) -> Iterator[Running]:
    inst = load_installation(install.config)
    engine = Engine(inst, clock=clock)
    cycles: list[RunSummary] = []
    run: Running
    service = Service(engine, inst.select([]), on_cycle=cycles.append, on_pass=lambda p: run.on_pass(p), **options)
    run = Running(service, engine, engine.clock)
    run.cycles = cycles
    run.thread.start()
    try:
        assert service.ready.wait(SAFETY), "the service did not start"
        yield run
    finally:
        if run.thread.is_alive():
            run.event.set()
            run.thread.join(SAFETY)
        engine.close()


@pytest.fixture
def gateway_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Log records of the ``gateway`` logger (which the CLI stops from propagating to the root)."""
    logger = logging.getLogger("gateway")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.propagate = False  # or caplog's handler on the root sees every record twice
    logger.setLevel(logging.DEBUG)
    caplog.handler.setLevel(logging.INFO)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def test_a_dropped_file_is_delivered_soon_after_its_settle_time(install: Install) -> None:
    _settle(install, SETTLE)
    # rescans an hour apart: only the event and the settle re-check can take the file
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=HOUR) as run:
        install.drop("a.xml", orders_file(order_xml("1-1-1")))
        moved = run.advance(1)  # the event's look comes at most EVENT_GAP after the start-up scan
        run.wait_pass("that sees a.xml after its event and leaves it", lambda p: "a.xml" in left(p, "event"), moved)
        # nine tenths of the settle time later, a file the flow does not take wakes the service again
        moved = run.advance(SETTLE * 0.9)
        (install.inbox() / "note.txt").write_text("not an order", encoding="utf-8")
        run.wait_pass("at nine tenths of the settle time that leaves a.xml", lambda p: "a.xml" in left(p), moved)
        assert install.outputs() == []
        moved = run.advance(SETTLE * 0.1 + 1)
        taken = run.wait_pass("that takes a.xml once settled", lambda p: p.summary.done > 0, moved)
        summary = run.stop()
    assert reasons(taken) == [(FLOW, "settle")] and not taken.rescan  # the re-check, at the settle time
    assert order_numbers(install) == ["1-1-1", "1-1-1"]  # item + shipping
    assert summary.done == 1 and summary.pending == 0
    assert [c.done for c in run.cycles] == [1]


def test_a_file_written_slowly_is_taken_only_when_complete(install: Install) -> None:
    _settle(install, SETTLE)
    numbers = [f"2-0-{n}" for n in range(6)]
    content = orders_file(*(order_xml(n) for n in numbers)).encode("utf-8")
    step = len(content) // 6 + 1
    pieces = [content[i:i + step] for i in range(0, len(content), step)]
    path = install.inbox() / "slow.xml"
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=HOUR) as run:
        written = 0
        with open(path, "wb") as fh:
            for piece in pieces:  # a piece a second: the service looks after each one
                fh.write(piece)
                fh.flush()
                written += len(piece)
                moved = run.advance(1)
                run.wait_pass(f"that sees slow.xml at {written} bytes and leaves it",
                              lambda p, size=written: left(p, "event").get("slow.xml") == size, moved)
                assert path.exists(), "taken while still being written"
        assert install.outputs() == []
        moved = run.advance(SETTLE)
        run.wait_pass("that takes slow.xml once settled", lambda p: p.summary.done == 1, moved)
    assert sorted(set(order_numbers(install))) == numbers
    assert not (install.quarantine / FLOW).exists()


def test_a_file_renamed_in_from_a_temporary_name_is_taken(install: Install) -> None:
    _settle(install, SETTLE)
    temp = install.inbox() / ".x.xml"  # matches the flow's *.xml: only the rule for temporary names leaves it
    final = install.inbox() / "x.xml"
    content = orders_file(order_xml("3-3-3")).encode("utf-8")
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=HOUR) as run:
        with open(temp, "wb") as fh:
            for i in range(0, len(content), 400):
                fh.write(content[i:i + 400])
                fh.flush()
        # longer than the settle time after the last write: a temporary name is never taken
        moved = run.advance(SETTLE + 1)
        run.wait_pass("that looks at the inbox after the writes", lambda p: (FLOW, "event") in reasons(p), moved)
        assert temp.exists() and install.outputs() == []
        temp.rename(final)
        moved = run.advance(1)
        taken = run.wait_pass("that takes x.xml", lambda p: p.summary.done == 1, moved)
    assert reasons(taken) == [(FLOW, "event")]  # the rename's event, at once: no rescan needed
    assert order_numbers(install) == ["3-3-3", "3-3-3"]


def test_polling_mode_takes_a_dropped_file(install: Install, gateway_log: pytest.LogCaptureFixture) -> None:
    _settle(install, SETTLE)
    with running(install, clock=ManualClock(), watch="polling", poll_seconds=0.2, rescan_seconds=HOUR) as run:
        install.drop("p.xml", orders_file(order_xml("4-4-4")))
        moved = run.advance(1)
        # no native watch: only the polling observer can have reported the new file
        run.wait_pass("that sees p.xml after a polling event", lambda p: "p.xml" in left(p, "event"), moved)
        moved = run.advance(SETTLE)
        taken = run.wait_pass("that takes p.xml once settled", lambda p: p.summary.done == 1, moved)
    assert not taken.rescan
    assert order_numbers(install) == ["4-4-4", "4-4-4"]
    assert any("polling every 0.2 s" in r.getMessage() for r in gateway_log.records)


@pytest.mark.parametrize("watch", ["native", "polling"])
def test_stop_while_idle_returns_promptly(install: Install, watch: str) -> None:
    # The loop's own next deadline is an hour away: a stop that waited for it would not return
    # within stop()'s SAFETY timeout.
    with running(install, watch=watch, poll_seconds=0.5, rescan_seconds=HOUR) as run:
        run.wait_pass("at start-up", lambda p: True)
        summary = run.stop()
    assert summary.done == 0
    # the observer threads are gone
    assert not [t for t in threading.enumerate() if "Observer" in type(t).__name__ or "Emitter" in type(t).__name__]


def test_a_scheduled_flow_is_drained_when_due_not_on_events(install: Install) -> None:
    every = 15  # minutes
    install.drop("early.xml", orders_file(order_xml("5-0-0")))
    schedules = {FLOW: Schedule(every_minutes=every)}
    with running(install, clock=ManualClock(), schedules=schedules, rescan_seconds=60) as run:
        start = run.clock.monotonic()
        # an interval schedule runs at start
        assert order_numbers(install) == ["5-0-0", "5-0-0"]
        install.drop("later.xml", orders_file(order_xml("5-1-1")))
        # rescans come and go, the last one a second before the run is due: the file waits for its time
        moved = run.advance(61)
        run.wait_pass("with a rescan", lambda p: p.rescan, moved)
        moved = run.advance(every * 60 - 62)
        run.wait_pass("with a rescan a second before the run is due", lambda p: p.rescan, moved)
        assert (install.inbox() / "later.xml").exists()
        moved = run.advance(1)
        due = run.wait_pass("with the scheduled run", lambda p: p.summary.done == 1, moved)
        run.stop()
    assert reasons(due) == [(FLOW, "schedule")] and due.at - start == every * 60
    assert sorted(set(order_numbers(install))) == ["5-0-0", "5-1-1"]
    assert [c.done for c in run.cycles] == [1, 1]


def test_an_input_whose_delivery_failed_is_retried_by_the_rescan(install: Install) -> None:
    outbox = install.outbox()
    outbox.rmdir()
    outbox.write_text("a file where the outbox folder should be")
    work = install.root / "state" / "work" / FLOW
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=60) as run:
        install.drop("a.xml", orders_file(order_xml("6-6-6")))
        moved = run.advance(1)
        run.wait_pass("that takes a.xml and cannot deliver it", lambda p: p.summary.pending > 0, moved)
        for _ in range(2):  # a couple of rescans retry it, and fail again
            moved = run.advance(60)
            run.wait_pass("with a rescan that retries it", lambda p: p.rescan and p.summary.pending > 0, moved)
        assert outbox.is_file()
        assert [p.name for p in work.iterdir() if p.is_file()] != []
        outbox.unlink()  # the admin fixes the outbox
        moved = run.advance(60)
        delivered = run.wait_pass("that delivers it", lambda p: p.summary.done == 1, moved)
        summary = run.stop()
    assert delivered.rescan  # the first rescan after the fix
    assert order_numbers(install) == ["6-6-6", "6-6-6"]
    assert summary.done == 1 and summary.pending == 0
    assert any(c.pending for c in run.cycles)
    (entry,) = journal(install)
    assert entry["state"] == "done" and entry["error"] is None


def test_with_a_concurrent_run_once_every_order_is_delivered_exactly_once(install: Install) -> None:
    names: list[str] = []

    def drop(first: int, last: int) -> None:
        for n in range(first, last):
            install.drop(f"o{n:02d}.xml", orders_file(order_xml(f"{n}-0-0"), order_xml(f"{n}-1-1")))
            names.append(f"o{n:02d}.xml")
            if n % 4 == 0:  # the same order again in another file, to race on the keys as well
                install.drop(f"again{n:02d}.xml", orders_file(order_xml(f"{n}-1-1")))
                names.append(f"again{n:02d}.xml")

    with running(install, watch="native", rescan_seconds=1.0):
        drop(0, 15)
        cmd = [sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until_journal_open(proc, timeout=SAFETY)  # the rest arrives while both run
            drop(15, 40)
            _, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, stderr

        def finished() -> bool:
            # Files only move forward (inbox → work folder → archive or quarantine): an empty inbox and then an
            # empty work folder mean every input is final. Files only, no journal: this thread must not use
            # SQLite while the service's thread forks its conversions (a child could inherit SQLite's lock held).
            work = install.root / "state" / "work" / FLOW
            return not any(install.inbox().iterdir()) and not any(p for p in work.iterdir()
                                                                   if not p.name.startswith("."))

        wait_for(finished, "every input to be finished")
    entries = journal(install)
    assert sorted(e["name"] for e in entries) == sorted(names)
    assert {e["state"] for e in entries} <= {"done", "duplicate"}, entries
    per_order: dict[str, int] = {}
    for number in order_numbers(install):
        per_order[number] = per_order.get(number, 0) + 1
    assert len(per_order) == 80
    assert set(per_order.values()) == {2}  # one item row and one shipping row, never doubled
    assert list(install.inbox().iterdir()) == []


def test_one_flows_trouble_is_logged_once_and_the_other_flows_go_on(
    install: Install, gateway_log: pytest.LogCaptureFixture
) -> None:
    _set(install, "flows:\n", (
        "flows:\n"
        "  second:\n"
        "    mapping: mappings/rakuten-orders.yaml\n"
        "    source:\n"
        "      folder: inbox/second\n"
        '      include: ["*.xml"]\n'
        "    outbox:\n"
        "      folder: outbox/second\n"
    ))
    inbox = install.inbox()
    inbox.rmdir()
    inbox.write_text("the inbox folder is a file")  # a slip of the hand, a share mounted wrongly
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=60) as run:
        for _ in range(5):
            moved = run.advance(60)
            run.wait_pass("with a rescan that meets the broken inbox",
                          lambda p: p.rescan and any(s.flow == FLOW and s.error for s in p.scans), moved)
        install.drop("b.xml", orders_file(order_xml("7-7-7")), flow="second")
        moved = run.advance(1)
        run.wait_pass("that takes the other flow's file", lambda p: p.summary.done == 1, moved)
        problems = [r.getMessage() for r in gateway_log.records
                    if r.levelno >= logging.ERROR and r.getMessage().startswith(f"{FLOW}: ")]
        # once when the trouble starts, not once per cycle: one for the watch, one for the scans
        assert len(problems) == 2, problems
        assert any("cannot be watched" in p and "File exists" in p for p in problems)
        assert any("cannot be scanned" in p and "Not a directory" in p for p in problems)

        inbox.unlink()  # fixed
        inbox.mkdir()
        install.drop("a.xml", orders_file(order_xml("8-8-8")))
        moved = run.advance(60)
        run.wait_pass("with the rescan that takes the repaired flow's file",
                      lambda p: p.rescan and p.summary.done == 1, moved)
    assert order_numbers(install) == ["8-8-8", "8-8-8"]
    assert order_numbers(install, "second") == ["7-7-7", "7-7-7"]
    infos = [r.getMessage() for r in gateway_log.records if r.levelno == logging.INFO]
    assert any("can be scanned again" in m for m in infos)
    assert any("watching the inbox" in m and "again" in m for m in infos)


def test_an_inbox_deleted_while_watched_is_recreated_and_watched_again(
    install: Install, gateway_log: pytest.LogCaptureFixture
) -> None:
    inbox = install.inbox()
    # rescans an hour apart: only a renewed watch can take the file
    with running(install, watch="native", rescan_seconds=HOUR) as run:
        inbox.rmdir()
        wait_for(lambda: any("the folder was deleted" in r.getMessage() for r in gateway_log.records),
                 "the watch to be renewed")
        assert inbox.is_dir()
        install.drop("a.xml", orders_file(order_xml("10-1-1")))
        taken = run.wait_pass("that takes a.xml", lambda p: p.summary.done == 1)
    assert reasons(taken) == [(FLOW, "event")]
    assert order_numbers(install) == ["10-1-1", "10-1-1"]


def test_an_inbox_replaced_by_another_folder_is_watched_again_at_the_rescan(
    install: Install, gateway_log: pytest.LogCaptureFixture
) -> None:
    inbox = install.inbox()
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=60) as run:
        inbox.rename(inbox.with_name("old-inbox"))  # a watch follows the folder it was given
        inbox.mkdir()
        moved = run.advance(60)
        run.wait_pass("with the rescan", lambda p: p.rescan, moved)
        assert any("the folder was replaced" in r.getMessage() for r in gateway_log.records)
        install.drop("a.xml", orders_file(order_xml("10-2-2")))
        moved = run.advance(1)  # the next rescan is a minute away: the renewed watch's event takes it
        taken = run.wait_pass("that takes a.xml", lambda p: p.summary.done == 1, moved)
    assert reasons(taken) == [(FLOW, "event")]
    assert order_numbers(install) == ["10-2-2", "10-2-2"]


BATCH_MAPPING = """
input:
  format: batch
  records: artikel
  as: a
  tables:
    artikel: { file: artikel.csv }
outputs:
  - name: artikel
    file: "artikel_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.Artikelnummer }}"
"""


def test_a_batch_folder_is_taken_when_its_marker_appears_inside(tmp_path: Path) -> None:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "katalog.yaml").write_text(BATCH_MAPPING, encoding="utf-8")
    (root / "gateway.yaml").write_text(
        "settle_seconds: 0\nflows:\n  katalog:\n    mapping: mappings/katalog.yaml\n"
        "    source:\n      folder: inbox\n      batch_marker: export.done\n    outbox: { folder: outbox }\n",
        encoding="utf-8")
    install = Install(root)
    outbox = root / "outbox"
    # rescans an hour apart: only a watch on the batch folder's content sees the marker
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=HOUR) as run:
        batch = root / "inbox" / "katalog_1"
        batch.mkdir()
        (batch / "artikel.csv").write_text("Artikelnummer\r\n10001\r\n20001\r\n", encoding="utf-8")
        moved = run.advance(1)
        run.wait_pass("that looks at the batch folder after its file was written",
                      lambda p: ("katalog", "event") in reasons(p), moved)
        assert batch.exists()  # no marker yet: still being written
        (batch / "export.done").write_text("")
        moved = run.advance(1)
        taken = run.wait_pass("that takes the batch", lambda p: p.summary.done == 1, moved)
    assert reasons(taken) == [("katalog", "event")]
    (out,) = outbox.iterdir()
    assert [r["nr"] for r in read_csv_rows(out, "utf-8")] == ["10001", "20001"]


def test_a_partners_sftp_folder_is_polled_at_the_rescan(install: Install, sshd: Sshd) -> None:
    (sshd.root / "orders").mkdir()
    _settle(install, 30)
    _set(install, "flows:\n", (
        "partners:\n"
        "  acme:\n"
        f"    host: {sshd.host}\n"
        f"    port: {sshd.port}\n"
        f"    user: {sshd.user}\n"
        f"    key_file: {sshd.client_key}\n"
        f"    known_hosts: {sshd.known_hosts}\n"
        "    timeout: 5\n"
        "flows:\n"
    ))
    _set(install, "      folder: inbox/rakuten-orders\n", "      sftp: acme\n      folder: orders\n")
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=60) as run:
        (sshd.root / "orders" / "a.xml").write_text(orders_file(order_xml("11-1-1")), encoding="utf-8")
        # seen by a rescan, settled by a second look after the settle time (two listings 60 s apart)
        moved = run.advance(60)
        run.wait_pass("with the rescan that lists a.xml", lambda p: p.rescan and "a.xml" in left(p), moved)
        assert install.outputs() == []
        moved = run.advance(60)
        taken = run.wait_pass("that takes a.xml", lambda p: p.summary.done == 1, moved)
    assert taken.rescan
    assert order_numbers(install) == ["11-1-1", "11-1-1"]
    assert list((sshd.root / "orders").iterdir()) == []  # deleted on the server once delivered


def test_auto_falls_back_to_polling_when_native_watching_cannot_start(
    install: Install, gateway_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoInotify:
        """What watchdog raises when the inotify instance limit is reached."""

        def __init__(self, **_: Any) -> None:
            raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(service_module, "Observer", NoInotify)
    # rescans an hour apart: only the polling observer can report the file
    with running(install, watch="auto", poll_seconds=0.2, rescan_seconds=HOUR) as run:
        install.drop("a.xml", orders_file(order_xml("9-9-9")))
        taken = run.wait_pass("that takes a.xml", lambda p: p.summary.done == 1)
    assert reasons(taken) == [(FLOW, "event")]
    assert order_numbers(install) == ["9-9-9", "9-9-9"]
    warnings = [r.getMessage() for r in gateway_log.records if r.levelno == logging.WARNING]
    assert any("cannot be watched natively" in w and "instance limit" in w and "polling" in w for w in warnings)


def test_the_service_refuses_values_that_make_no_sense(install: Install) -> None:
    inst = load_installation(install.config)
    engine = Engine(inst)
    try:
        flows = inst.select([])
        with pytest.raises(ValueError, match="watch must be one of auto, native, polling"):
            Service(engine, flows, watch="inotify")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="rescan_seconds must be more than 0"):
            Service(engine, flows, rescan_seconds=0)
        with pytest.raises(ValueError, match="poll_seconds must be more than 0"):
            Service(engine, flows, poll_seconds=-1)
    finally:
        engine.close()


def test_the_service_logs_in_german_with_language_de(install: Install, gateway_log: pytest.LogCaptureFixture) -> None:
    from gateway import i18n

    _set(install, "flows:\n", (
        "flows:\n"
        "  second:\n"
        "    mapping: mappings/rakuten-orders.yaml\n"
        "    source:\n"
        "      folder: inbox/second\n"
        '      include: ["*.xml"]\n'
        "    outbox:\n"
        "      folder: outbox/second\n"
    ))
    schedules = {FLOW: Schedule(every_minutes=15, at=["06:00"])}
    i18n.set_language("de")
    try:
        with running(install, clock=ManualClock(), schedules=schedules, watch="polling", poll_seconds=0.2,
                     rescan_seconds=60):
            pass
    finally:
        i18n.set_language("en")
    infos = [r.getMessage() for r in gateway_log.records if r.levelno == logging.INFO]
    assert f"{FLOW}: läuft alle 15 min und um 06:00" in infos
    assert f"second: {install.root / 'inbox' / 'second'} wird überwacht (Abfrage alle 0.2 s)" in infos


def test_a_mapping_corrected_while_the_service_runs_is_taken_for_the_retried_input(
        install: Install, gateway_log: pytest.LogCaptureFixture) -> None:
    mapping = install.root / "mappings" / f"{FLOW}.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert "      PAL: PAL " in text
    with running(install, clock=ManualClock(), watch="native", rescan_seconds=60) as run:
        install.drop("a.xml", orders_file(order_xml("7-7-7", payment="XYZ")))
        moved = run.advance(1)
        run.wait_pass("that quarantines a.xml (payment code XYZ is unknown)", lambda p: p.summary.failed == 1, moved)
        # a correction with a mistake in it is not taken: the flow keeps the mapping it had
        mapping.write_text(text.replace("      PAL: PAL ", "      XYZ: {{ broken\n      PAL: PAL "), encoding="utf-8")
        install.drop("b.xml", orders_file(order_xml("8-8-8")))
        moved = run.advance(1)
        run.wait_pass("that delivers b.xml with the mapping it had", lambda p: p.summary.done == 1, moved)
        assert "the changed mapping is not taken" in gateway_log.text
        assert f"{FLOW}.yaml:" in gateway_log.text  # the problem with its file and line
        # the admin corrects the mapping and retries the quarantined file, as the reason file says
        mapping.write_text(text.replace("      PAL: PAL ", "      XYZ: VORKASSE\n      PAL: PAL "), encoding="utf-8")
        retried = install.process("retry", "--flow", FLOW)  # its own process: the command line sets up logging
        assert retried.returncode == 0, retried.stderr
        moved = run.advance(60)
        run.wait_pass("with a rescan that converts a.xml again", lambda p: p.rescan and p.summary.done == 1, moved)
        run.stop()
    assert "the changed mapping mappings/rakuten-orders.yaml is in use from now on" in gateway_log.text
    assert sorted(set(order_numbers(install))) == ["7-7-7", "8-8-8"]
    states = {e["name"]: e["state"] for e in journal(install)}
    assert states == {"a.xml": "done", "b.xml": "done"}


def test_a_mapping_broken_before_its_first_use_holds_its_inputs_back_instead_of_quarantining_them(
        install: Install, gateway_log: pytest.LogCaptureFixture) -> None:
    mapping = install.root / "mappings" / f"{FLOW}.yaml"
    text = mapping.read_text(encoding="utf-8")
    # as `gateway run` starts when the mapping's note says it passed its check: not compiled until first used
    inst = load_installation(install.config, noted=True)
    object.__setattr__(inst.flows[FLOW], "loaded", None)
    mapping.write_text(text.replace("      PAL: PAL ", "      XYZ: {{ broken\n      PAL: PAL "), encoding="utf-8")
    engine = Engine(inst, clock=ManualClock())
    run: Running
    service = Service(engine, inst.select([]), watch="native", rescan_seconds=60, on_pass=lambda p: run.on_pass(p))
    run = Running(service, engine, engine.clock)
    run.thread.start()
    try:
        assert service.ready.wait(SAFETY), "the service did not start"
        install.drop("a.xml", orders_file(order_xml("9-9-9")))
        moved = run.advance(1)
        run.wait_pass("that sees a.xml and leaves it", lambda p: "a.xml" in left(p), moved)
        assert "its inputs wait until they are corrected" in gateway_log.text
        assert (install.inbox() / "a.xml").exists() and install.outputs() == []  # neither taken nor quarantined
        mapping.write_text(text, encoding="utf-8")  # corrected: the file is taken at the next look
        moved = run.advance(60)
        run.wait_pass("that delivers a.xml", lambda p: p.summary.done == 1, moved)
        run.stop()
    finally:
        if run.thread.is_alive():
            run.event.set()
            run.thread.join(SAFETY)
        engine.close()
    assert gateway_log.text.count("its inputs wait until they are corrected") == 1
    assert [e["state"] for e in journal(install)] == ["done"]
