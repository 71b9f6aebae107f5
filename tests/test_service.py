"""Automatic mode (``gateway.service.Service``) with real folders, real watchdog observers and a real engine.

The service runs in a background thread with a stop Event, the way ``gateway run`` runs it
in the main thread with SIGINT/SIGTERM setting the Event.
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
from conftest import Install, order_xml, orders_file, read_csv_rows
from sshd import Sshd, sshd_fixture  # noqa: F401 - provides the "sshd" fixture

import gateway.service as service_module
from gateway import Engine, RunSummary, load_installation
from gateway.schedule import Schedule
from gateway.service import Service

FLOW = "rakuten-orders"


def _set(install: Install, old: str, new: str) -> None:
    text = install.config.read_text(encoding="utf-8")
    assert old in text
    install.config.write_text(text.replace(old, new), encoding="utf-8")


def _settle(install: Install, seconds: float) -> None:
    _set(install, "settle_seconds: 0\n", f"settle_seconds: {seconds}\n")


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll ``condition`` until it is true; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def order_numbers(install: Install, flow: str = FLOW) -> list[str]:
    return [row["Referenznummer"] for out in install.outputs(flow) for row in read_csv_rows(out)]


def journal(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


class Running:
    """A service running in a thread; ``stop()`` sets the Event and returns its summary."""

    def __init__(self, service: Service, engine: Engine) -> None:
        self.service = service
        self.engine = engine
        self.event = threading.Event()
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.cycles: list[RunSummary] = []
        self.thread = threading.Thread(target=self._run, name="service-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.service.run(self.event)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self, timeout: float = 10.0) -> RunSummary:
        self.event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the service did not stop"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@contextmanager
def running(install: Install, **options: Any) -> Iterator[Running]:
    inst = load_installation(install.config)
    engine = Engine(inst)
    cycles: list[RunSummary] = []
    service = Service(engine, inst.select([]), on_cycle=cycles.append, **options)
    run = Running(service, engine)
    run.cycles = cycles
    run.thread.start()
    try:
        assert service.ready.wait(15), "the service did not start"
        yield run
    finally:
        if run.thread.is_alive():
            run.event.set()
            run.thread.join(10)
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


def test_a_dropped_file_is_delivered_soon_after_its_settle_time(install: Install,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    settle = 0.5
    _settle(install, settle)
    # a rescan every minute: only the event and the settle re-check can take the file in time
    with running(install, watch="native", rescan_seconds=60) as run:
        time.sleep(0.2)
        install.drop("a.xml", orders_file(order_xml("1-1-1")))
        written = time.monotonic()
        delivered = wait_for(lambda: install.outputs(), settle + 5, "the output")
        summary = run.stop()
    latency = delivered - written
    with capsys.disabled():
        print(f"\n[service] native watch, settle {settle} s: output {latency:.3f} s after the completed write")
    assert settle * 0.8 <= latency < settle + 2.0
    assert order_numbers(install) == ["1-1-1", "1-1-1"]  # item + shipping
    assert summary.done == 1 and summary.pending == 0
    assert [c.done for c in run.cycles] == [1]


def test_a_file_written_slowly_is_taken_only_when_complete(install: Install) -> None:
    _settle(install, 0.5)
    numbers = [f"2-0-{n}" for n in range(6)]
    content = orders_file(*(order_xml(n) for n in numbers)).encode("utf-8")
    step = len(content) // 6 + 1
    pieces = [content[i:i + step] for i in range(0, len(content), step)]
    path = install.inbox() / "slow.xml"
    with running(install, watch="native", rescan_seconds=60):
        with open(path, "wb") as fh:
            for n, piece in enumerate(pieces):  # 6 pieces 0.3 s apart: 1.5 s of writing, settle time 0.5 s
                if n:
                    time.sleep(0.3)
                    assert path.exists(), "taken while still being written"
                fh.write(piece)
                fh.flush()
        assert install.outputs() == []
        wait_for(lambda: install.outputs(), 5, "the output")
    assert sorted(set(order_numbers(install))) == numbers
    assert not (install.quarantine / FLOW).exists()


def test_a_file_renamed_in_from_a_temporary_name_is_taken(install: Install) -> None:
    _settle(install, 0.5)
    temp = install.inbox() / ".x.xml.part"
    final = install.inbox() / "x.xml"
    content = orders_file(order_xml("3-3-3")).encode("utf-8")
    with running(install, watch="native", rescan_seconds=60):
        with open(temp, "wb") as fh:
            for i in range(0, len(content), 400):
                fh.write(content[i:i + 400])
                fh.flush()
                time.sleep(0.05)
        time.sleep(0.8)  # longer than the settle time: a temporary name is never taken
        assert temp.exists() and install.outputs() == []
        temp.rename(final)
        renamed = time.monotonic()
        delivered = wait_for(lambda: install.outputs(), 5, "the output")
    assert delivered - renamed < 0.5 + 2.0
    assert order_numbers(install) == ["3-3-3", "3-3-3"]


def test_polling_mode_takes_a_dropped_file(install: Install, gateway_log: pytest.LogCaptureFixture,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    settle, poll = 0.3, 0.2
    _settle(install, settle)
    with running(install, watch="polling", poll_seconds=poll, rescan_seconds=60):
        install.drop("p.xml", orders_file(order_xml("4-4-4")))
        written = time.monotonic()
        delivered = wait_for(lambda: install.outputs(), 5, "the output")
    latency = delivered - written
    with capsys.disabled():
        print(f"\n[service] polling every {poll} s, settle {settle} s: output {latency:.3f} s after the write")
    assert latency < settle + poll + 2.0
    assert order_numbers(install) == ["4-4-4", "4-4-4"]
    assert any("polling every 0.2 s" in r.getMessage() for r in gateway_log.records)


@pytest.mark.parametrize("watch", ["native", "polling"])
def test_stop_while_idle_returns_promptly(install: Install, watch: str) -> None:
    with running(install, watch=watch, poll_seconds=0.5, rescan_seconds=60) as run:
        time.sleep(0.3)
        started = time.monotonic()
        summary = run.stop()
        took = time.monotonic() - started
    assert took < 2.0, f"stopping took {took:.2f} s"
    assert summary.done == 0
    # the observer threads are gone
    assert not [t for t in threading.enumerate() if "Observer" in type(t).__name__ or "Emitter" in type(t).__name__]


def test_a_scheduled_flow_is_drained_when_due_not_on_events(install: Install) -> None:
    every = 0.03  # minutes: 1.8 s
    install.drop("early.xml", orders_file(order_xml("5-0-0")))
    with running(install, schedules={FLOW: Schedule(every_minutes=every)}, rescan_seconds=0.5) as run:
        ready = time.monotonic()
        # an interval schedule runs at start
        assert order_numbers(install) == ["5-0-0", "5-0-0"]
        install.drop("later.xml", orders_file(order_xml("5-1-1")))
        time.sleep(max(0.0, ready + 0.9 - time.monotonic()))
        # events and rescans (every 0.5 s) have come and gone: the file waits for its time
        assert (install.inbox() / "later.xml").exists()
        delivered = wait_for(lambda: len(install.outputs()) == 2, every * 60 + 3, "the scheduled run")
        run.stop()
    assert delivered - ready > every * 60 - 0.3
    assert sorted(set(order_numbers(install))) == ["5-0-0", "5-1-1"]
    assert [c.done for c in run.cycles] == [1, 1]


def test_an_input_whose_delivery_failed_is_retried_by_the_rescan(install: Install) -> None:
    outbox = install.outbox()
    outbox.rmdir()
    outbox.write_text("a file where the outbox folder should be")
    work = install.root / "state" / "work" / FLOW
    with running(install, watch="native", rescan_seconds=0.5) as run:
        install.drop("a.xml", orders_file(order_xml("6-6-6")))
        wait_for(lambda: not (install.inbox() / "a.xml").exists(), 5, "the input to be claimed")
        time.sleep(1.2)  # a couple of rescans retry it, and fail again
        assert outbox.is_file()
        assert [p.name for p in work.iterdir() if p.is_file()] != []
        outbox.unlink()  # the admin fixes the outbox
        fixed = time.monotonic()
        delivered = wait_for(lambda: install.outputs(), 5, "the retried delivery")
        summary = run.stop()
    assert delivered - fixed < 0.5 + 2.0
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
            time.sleep(0.01)

    with running(install, watch="native", rescan_seconds=1.0):
        drop(0, 15)
        cmd = [sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        drop(15, 40)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr

        def finished() -> bool:
            entries = journal(install)
            return len(entries) == len(names) and all(e["state"] in ("done", "duplicate") for e in entries)

        wait_for(finished, 30, "every input to be finished")
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
    with running(install, watch="native", rescan_seconds=0.3):
        time.sleep(1.5)  # about five rescans
        install.drop("b.xml", orders_file(order_xml("7-7-7")), flow="second")
        wait_for(lambda: install.outputs("second"), 5, "the other flow's output")
        problems = [r.getMessage() for r in gateway_log.records
                    if r.levelno >= logging.ERROR and r.getMessage().startswith(f"{FLOW}: ")]
        # once when the trouble starts, not once per cycle: one for the watch, one for the scans
        assert len(problems) == 2, problems
        assert any("cannot be watched" in p and "File exists" in p for p in problems)
        assert any("cannot be scanned" in p and "Not a directory" in p for p in problems)

        inbox.unlink()  # fixed
        inbox.mkdir()
        install.drop("a.xml", orders_file(order_xml("8-8-8")))
        wait_for(lambda: install.outputs(), 5, "the repaired flow's output")
        wait_for(lambda: any("watching the inbox" in r.getMessage() and "again" in r.getMessage()
                             for r in gateway_log.records if r.levelno == logging.INFO), 3, "the watch to be back")
    assert order_numbers(install) == ["8-8-8", "8-8-8"]
    assert order_numbers(install, "second") == ["7-7-7", "7-7-7"]
    infos = [r.getMessage() for r in gateway_log.records if r.levelno == logging.INFO]
    assert any("can be scanned again" in m for m in infos)


def test_an_inbox_deleted_while_watched_is_recreated_and_watched_again(
    install: Install, gateway_log: pytest.LogCaptureFixture
) -> None:
    inbox = install.inbox()
    # a rescan every minute: only a renewed watch can take the file in time
    with running(install, watch="native", rescan_seconds=60):
        inbox.rmdir()
        wait_for(lambda: any("the folder was deleted" in r.getMessage() for r in gateway_log.records), 5,
                 "the watch to be renewed")
        assert inbox.is_dir()
        install.drop("a.xml", orders_file(order_xml("10-1-1")))
        wait_for(lambda: install.outputs(), 3, "the output")
    assert order_numbers(install) == ["10-1-1", "10-1-1"]


def test_an_inbox_replaced_by_another_folder_is_watched_again_at_the_rescan(
    install: Install, gateway_log: pytest.LogCaptureFixture
) -> None:
    inbox = install.inbox()
    with running(install, watch="native", rescan_seconds=0.3):
        inbox.rename(inbox.with_name("old-inbox"))  # a watch follows the folder it was given
        inbox.mkdir()
        wait_for(lambda: any("the folder was replaced" in r.getMessage() for r in gateway_log.records), 5,
                 "the watch to be renewed")
        install.drop("a.xml", orders_file(order_xml("10-2-2")))
        wait_for(lambda: install.outputs(), 3, "the output")
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
    # a rescan every minute: only a watch on the batch folder's content sees the marker in time
    with running(install, watch="native", rescan_seconds=60):
        batch = root / "inbox" / "katalog_1"
        batch.mkdir()
        (batch / "artikel.csv").write_text("Artikelnummer\r\n10001\r\n20001\r\n", encoding="utf-8")
        time.sleep(0.5)
        assert batch.exists()  # no marker yet: still being written
        (batch / "export.done").write_text("")
        wait_for(lambda: outbox.is_dir() and list(outbox.iterdir()), 3, "the batch's output")
    (out,) = outbox.iterdir()
    assert [r["nr"] for r in read_csv_rows(out, "utf-8")] == ["10001", "20001"]


def test_a_partners_sftp_folder_is_polled_at_the_rescan(install: Install, sshd: Sshd) -> None:
    (sshd.root / "orders").mkdir()
    _settle(install, 0.3)
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
    rescan = 0.5
    with running(install, watch="native", rescan_seconds=rescan) as run:
        assert run.service.ready.is_set()
        (sshd.root / "orders" / "a.xml").write_text(orders_file(order_xml("11-1-1")), encoding="utf-8")
        written = time.monotonic()
        # seen by a rescan, settled by a second look after the settle time (two listings 0.3 s apart)
        delivered = wait_for(lambda: install.outputs(), rescan + 0.3 + 3, "the output")
    assert delivered - written < rescan + 0.3 + 2.0
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
    with running(install, watch="auto", poll_seconds=0.2, rescan_seconds=60):
        install.drop("a.xml", orders_file(order_xml("9-9-9")))
        wait_for(lambda: install.outputs(), 3, "the output")
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
