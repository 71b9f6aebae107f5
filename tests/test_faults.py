"""Faults of the world around the gateway: full disk, read-only outbox, locked journal, odd clocks, two processes.

Every test runs the real command (``python -m gateway … run``), except the settle tests, which drive the
engine in this process with a ``ManualClock`` between the pieces a producer writes, and ends with the
checks of the crash campaign (tests/campaign.py, ``audit``): every order exactly once, only malformed
files quarantined, no partial output, no temporary visible. What must hold in each case:

- a full disk or a read-only outbox is not the input's fault: it waits (never quarantined), the journal
  or the log says why in plain words, and once the fault is gone the next run delivers it, once;
- a journal locked by another process makes the run wait, then complete;
- the settle logic neither takes a file early (an old mtime does not make a file being written look
  complete) nor never (a file stamped in the future is still taken);
- two ``run --once`` on one inbox deliver every order exactly once between them.

Disk full and read-only use real mounts (tmpfs, read-only bind mount): they need root, and are skipped
with the reason where mounting is not permitted. The machine's clock is not changed (``faketime`` is not
installed); clock jumps are simulated with file times in the past and the future.

Nothing waits for a fixed time: a test waits for what proves the moment it needs (the service's log
showing its retries, the run asleep in SQLite's wait for a lock, the journal's state), and ``SAFETY``
only ends a test that hangs.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign import (
    Feed,
    OutputFormat,
    audit,
    gateway_command,
    journal_entries,
    make_install,
    malformed_content,
)
from conftest import Install
from sshd import descendants

from gateway import Engine, load_installation
from gateway.clock import ManualClock

FLOW = "rakuten-orders"
SAFETY = 60.0  # real seconds: ends a test that hangs; never what a test asserts
SUMMARY = re.compile(r"(\d+) done, (\d+) duplicate, (\d+) quarantined"
                     r"(?:, (\d+) waiting \(tried again by the next run\))?")
NO_SPACE = "No space left on device"


# -- helpers ------------------------------------------------------------------------------------------------


class Mounts:
    """Mounts made by a test, undone (in reverse order) when it ends; a refused mount skips the test."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def mount(self, *args: str, point: Path) -> None:
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        result = subprocess.run(["mount", *args, str(point)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"mounting is not permitted here: mount {' '.join(args)}: {result.stderr.strip()}")
        self.points.append(point)

    def tmpfs(self, point: Path, size: str) -> None:
        point.mkdir(parents=True, exist_ok=True)
        self.mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", point=point)

    def read_only(self, point: Path) -> None:
        """``point`` made read-only by a bind mount of itself (root ignores mode bits, not a ro mount)."""
        self.mount("--bind", str(point), point=point)
        result = subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            pytest.skip(f"remounting read-only is not permitted here: {result.stderr.strip()}")

    def read_write(self, point: Path) -> None:
        subprocess.run(["mount", "-o", "remount,bind,rw", str(point)], check=True, capture_output=True)

    def undo(self) -> None:
        for point in reversed(self.points):
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind mount needs root")
    m = Mounts()
    try:
        yield m
    finally:
        m.undo()


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` up, then give back ``leave`` bytes; the filler file."""
    filler = folder / ".filler"  # hidden: an importer of the outbox ignores it
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == 28, exc
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def run_once(install: Install, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return install.process("run", "--once", timeout=timeout)


def summary(result: subprocess.CompletedProcess[str]) -> tuple[int, int, int, int]:
    found = SUMMARY.findall(result.stderr)
    assert found, f"no summary line:\n{result.stderr}"
    done, duplicate, quarantined, waiting = found[-1]
    return int(done), int(duplicate), int(quarantined), int(waiting or 0)


def entry(install: Install, name: str) -> dict[str, object]:
    (e,) = [e for e in journal_entries(install) if e["name"] == name]
    return e


def assert_all_delivered_once(install: Install, feed: Feed) -> None:
    result = audit(install, feed)
    assert result.ok, f"{result.line(0)}\n{result.details()}"


def set_settle(install: Install, seconds: float) -> None:
    text = install.config.read_text(encoding="utf-8")
    assert "settle_seconds: 0\n" in text
    install.config.write_text(text.replace("settle_seconds: 0\n", f"settle_seconds: {seconds}\n"), encoding="utf-8")


def wait_for(condition: Callable[[], object], what: str, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll ``condition`` until it is true; fail after ``SAFETY``, or at once if ``proc`` has ended."""
    deadline = time.monotonic() + SAFETY
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {SAFETY} s waiting for {what}")
        time.sleep(0.01)


def feed_for(install: Install, seed: int = 7, malformed: float = 0.0) -> Feed:
    return Feed(install, random.Random(seed), malformed_rate=malformed)


def visible_outputs_are_whole(install: Install) -> None:
    """Whatever an importer can see in the outbox is a complete output (temporaries are hidden)."""
    fmt = OutputFormat.of(install)
    for path in install.outbox().iterdir():
        if path.name.startswith("."):
            continue
        _, problem = fmt.parse(path.read_bytes())
        assert problem is None, f"{path.name}: {problem}"


# -- disk full ---------------------------------------------------------------------------------------------------


def test_outbox_disk_full_the_input_waits_and_is_delivered_once_when_space_is_freed(
    install: Install, mounts: Mounts
) -> None:
    mounts.tmpfs(install.outbox(), "256k")
    feed = feed_for(install)
    feed.drop_orders("small-1.xml", [1])
    feed.drop_orders("small-2.xml", [2, 3])
    feed.drop_orders("big.xml", list(range(10, 160)))  # an output of ~150 kB: more than is left
    filler = fill(install.outbox(), leave=48 * 1024)

    result = run_once(install)
    assert result.returncode == 3, result.stderr
    assert summary(result) == (2, 0, 0, 1)
    assert NO_SPACE in result.stderr, result.stderr  # the log says why
    big = entry(install, "big.xml")
    assert big["state"] == "delivering", big
    assert NO_SPACE in str(big["error"]), big  # and so does the journal
    assert big["outputs"] == [] and len(big["pending_outputs"]) == 1  # type: ignore[arg-type]
    assert not install.quarantine.exists() or not any(install.quarantine.rglob("*"))
    visible_outputs_are_whole(install)  # the half-written output is a hidden temporary

    filler.unlink()
    result = run_once(install)
    assert result.returncode == 0, result.stderr
    assert summary(result) == (1, 0, 0, 0)
    assert_all_delivered_once(install, feed)


def full_installation_disk(tmp_path: Path, mounts: Mounts) -> tuple[Install, Feed, Path]:
    """The whole installation (inbox, state with journal and staging, outbox) on a small disk that is
    full but for a little room: enough for the journal, not for staging the output of big.xml."""
    disk = tmp_path / "disk"
    mounts.tmpfs(disk, "4m")
    install = make_install(disk / "gw")
    feed = feed_for(install)
    feed.drop_orders("first.xml", [1])
    assert run_once(install).returncode == 0  # the journal and the state folders exist
    feed.drop_orders("big.xml", list(range(2, 302)))  # ~400 kB in, ~400 kB out
    return install, feed, fill(disk, leave=150 * 1024)


def test_installation_disk_full_while_staging_nothing_is_lost_and_it_is_delivered_once_freed(
    tmp_path: Path, mounts: Mounts
) -> None:
    install, feed, filler = full_installation_disk(tmp_path, mounts)

    result = run_once(install)
    assert result.returncode == 3, result.stderr
    assert NO_SPACE in result.stderr, result.stderr
    assert not install.quarantine.exists() or not any(install.quarantine.rglob("*"))
    waiting = [p.name for p in install.inbox().iterdir()] + [
        p.name for p in (install.root / "state" / "work" / FLOW).iterdir() if not p.name.startswith(".")
    ]
    assert [n for n in waiting if n.endswith("big.xml")], "big.xml is neither in the inbox nor in the work folder"
    assert entry(install, "big.xml")["state"] in ("waiting", "processing")
    assert [p.name for p in install.outputs()] == ["auftraege_first_1.csv"]

    filler.unlink()
    result = run_once(install)
    assert result.returncode == 0, result.stderr
    assert_all_delivered_once(install, feed)


def test_installation_disk_full_is_reported_plainly_and_recorded(tmp_path: Path, mounts: Mounts) -> None:
    install, _feed, _filler = full_installation_disk(tmp_path, mounts)
    result = run_once(install)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert summary(result)[3] == 1  # big.xml waits: the closing line says so
    # the log says it plainly; the journal records it only where the full disk still lets it write
    assert NO_SPACE in result.stderr or "disk is full" in result.stderr, result.stderr[-3000:]
    error = entry(install, "big.xml")["error"]
    assert error is None or NO_SPACE in str(error) or "disk is full" in str(error), error


def test_installation_disk_completely_full_at_start_is_reported_plainly(tmp_path: Path, mounts: Mounts) -> None:
    install, feed, _ = full_installation_disk(tmp_path, mounts)
    filler = fill(tmp_path / "disk", leave=0)  # the same filler, now up to the last byte
    on_full_disk = run_once(install)
    assert on_full_disk.returncode != 0

    filler.unlink()
    result = run_once(install)
    assert result.returncode == 0, result.stderr
    assert_all_delivered_once(install, feed)  # nothing lost, nothing twice

    assert "Traceback" not in on_full_disk.stderr, on_full_disk.stderr[-2000:]
    assert "journal" in on_full_disk.stderr, on_full_disk.stderr


def test_service_outlives_a_full_disk_and_delivers_once_space_is_freed(tmp_path: Path, mounts: Mounts) -> None:
    install, feed, filler = full_installation_disk(tmp_path, mounts)
    log = tmp_path / "service.log"
    with open(log, "wb") as err:
        config = install.config.read_text(encoding="utf-8")
        install.config.write_text("rescan_seconds: 0.5\n" + config, encoding="utf-8")
        proc = subprocess.Popen(gateway_command(install, "run"), stderr=err,
                                stdout=subprocess.DEVNULL)
    try:
        # a few cycles on the full disk: the first attempt and two rescans, each logged
        wait_for(lambda: log.read_text().count("big.xml: ") >= 3 and log.read_text().count("tried again") >= 3,
                 "the service to try big.xml three times", proc)
        assert NO_SPACE in log.read_text() or "disk is full" in log.read_text(), log.read_text()[-3000:]
        filler.unlink()
        wait_for(lambda: entry(install, "big.xml")["state"] == "done", "big.xml to be delivered", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SAFETY) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_all_delivered_once(install, feed)


# -- an inbox on another file system ------------------------------------------------------------------------------


def test_inbox_on_another_file_system_is_processed(install: Install, mounts: Mounts) -> None:
    mounts.tmpfs(install.inbox(), "1m")
    feed = feed_for(install)
    feed.drop_batch("orders", 3)
    result = run_once(install)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0, result.stderr
    assert_all_delivered_once(install, feed)


# -- read-only outbox -------------------------------------------------------------------------------------------


def test_read_only_outbox_the_inputs_wait_and_are_delivered_once_when_writable_again(
    install: Install, mounts: Mounts
) -> None:
    mounts.read_only(install.outbox())
    feed = feed_for(install)
    feed.drop_batch("orders", 6)

    result = run_once(install)
    assert result.returncode == 3, result.stderr
    assert "Read-only file system" in result.stderr, result.stderr
    entries = journal_entries(install)
    assert {e["state"] for e in entries} <= {"delivering", "duplicate"}
    delivering = [e for e in entries if e["state"] == "delivering"]
    assert delivering and all("Read-only file system" in e["error"] for e in delivering), entries
    assert summary(result)[3] == len(delivering)
    assert not install.quarantine.exists() or not any(install.quarantine.rglob("*"))

    mounts.read_write(install.outbox())
    result = run_once(install)
    assert result.returncode == 0, result.stderr
    assert_all_delivered_once(install, feed)


# -- a locked journal ---------------------------------------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys
print("ready", flush=True)
sys.stdin.readline()
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
"""


class JournalLock:
    """Another process, started ahead, that takes ``BEGIN EXCLUSIVE`` on the journal when told and lets go
    when told (so that taking the lock costs no interpreter start at the moment it matters)."""

    def __init__(self, install: Install) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(install.root / "state" / "journal.sqlite")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._expect("ready")

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == word, f"the lock holder said {line!r}, not {word!r}"

    def _tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def take(self) -> None:
        self._tell()
        self._expect("locked")

    def release(self) -> None:
        self._tell()
        self._expect("released")
        assert self.proc.wait(timeout=SAFETY) == 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def inputs_in_journal(install: Install) -> int:
    """Journal entries, read-only (readers are not held up by a writer's lock, nor do they take one)."""
    db = sqlite3.connect(f"file:{install.root / 'state' / 'journal.sqlite'}?mode=ro", uri=True, timeout=SAFETY)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM inputs").fetchone()
    finally:
        db.close()
    return int(n)


def wait_until_waiting_for_the_lock(proc: subprocess.Popen[Any]) -> None:
    """Wait until the run (or the child converting for it, which opens the journal too) sleeps in SQLite's
    busy handler: nothing else in a run sleeps (waiting for a conversion is a ``select``), so the run has
    met the lock and waits for it."""

    def sleeping() -> bool:
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                with open(f"/proc/{pid}/wchan", encoding="ascii") as fh:
                    if "nanosleep" in fh.read():
                        return True
            except OSError:
                continue
        return False

    wait_for(sleeping, "the run to wait for the journal's lock (/proc/PID/wchan: *nanosleep)", proc)


def test_journal_locked_by_another_process_when_the_run_starts_it_waits_then_completes(install: Install) -> None:
    feed = feed_for(install, malformed=0.05)
    feed.drop_orders("first.xml", [1])
    assert run_once(install).returncode == 0
    feed.drop_batch("orders", 30)

    lock = JournalLock(install)
    try:
        lock.take()
        proc = subprocess.Popen(gateway_command(install, "run", "--once"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_until_waiting_for_the_lock(proc)
            assert inputs_in_journal(install) == 1, "the run registered inputs while the journal was locked"
            lock.release()
            _, stderr = proc.communicate(timeout=SAFETY)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        lock.close()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    done, duplicate, quarantined, waiting = summary(result)
    assert waiting == 0 and done + duplicate + quarantined == 30
    assert_all_delivered_once(install, feed)


def test_journal_locked_by_another_process_in_the_middle_of_a_run_it_waits_then_completes(
    install: Install,
) -> None:
    feed = feed_for(install)
    feed.drop_batch("orders", 50)  # the lock is taken right after the first output: plenty still to do
    lock = JournalLock(install)
    proc = subprocess.Popen(gateway_command(install, "run", "--once"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: install.outputs(), "the run's first output", proc)  # in the middle of the run
        lock.take()
        assert proc.poll() is None, "the run ended before the lock was taken: drop more files"
        wait_until_waiting_for_the_lock(proc)
        lock.release()
        _, stderr = proc.communicate(timeout=SAFETY)
    finally:
        lock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert_all_delivered_once(install, feed)


# -- the clock -------------------------------------------------------------------------------------------------
#
# What the engine does now (gateway/sources/local.py): a local file counts as complete once
# time.time() - ctime >= settle_seconds. ctime is set by this machine's clock on every write and rename
# and cannot be set by a producer, so mtime does not matter either way: an old mtime does not make a
# file being written look complete, and a future one does not hold a complete file back.
# (Until the engine change of 2026-11-27 it used max(mtime, ctime): a file stamped a day ahead was
# "still being written" for a day, and `run --once` left it in the inbox with exit status 0.)
# Not covered: the machine's own clock jumping back, which puts ctimes in the future (needs faketime).


@pytest.mark.parametrize("offset", [-86400, 86400], ids=["mtime-a-day-behind", "mtime-a-day-ahead"])
def test_file_written_slowly_with_a_wrong_mtime_is_not_taken_before_it_is_complete(
    install: Install, offset: int
) -> None:
    """A producer whose clock is a day off writes a file in place, a piece a second (settle time: 10 minutes).

    The engine runs here with a ``ManualClock`` and looks at the inbox after every piece, as the service
    does; the clock moves a second per piece, so the file is being written for minutes of the clock's time,
    and only the settle logic decides. Ten minutes after the last piece it is taken, whole.
    """
    settle = 600
    set_settle(install, settle)
    feed = feed_for(install)
    content = feed.orders(list(range(1, 13))).encode("utf-8")
    pieces = [content[i:i + 64] for i in range(0, len(content), 64)]
    path = install.inbox() / "slow.xml"
    stamp = time.time() + offset
    clock = ManualClock()
    inst = load_installation(install.config)
    engine = Engine(inst, clock=clock)
    try:
        (flow,) = inst.select([])
        with open(path, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
                fh.flush()
                os.utime(fh.fileno(), (stamp, stamp))
                clock.advance(1)
                looked = engine.drain(flow, wait_for_settle=False)
                assert (looked.done, looked.failed) == (0, 0) and path.exists(), (
                    f"taken after {fh.tell()} of {len(content)} bytes")
        assert len(pieces) < settle / 2, "the producer must finish well within the settle time"
        clock.advance(settle)
        summary = engine.drain(flow, wait_for_settle=False)
    finally:
        engine.close()
    feed.files.append("slow.xml")
    assert (summary.done, summary.failed, summary.pending) == (1, 0, 0), summary
    slow = entry(install, "slow.xml")
    assert slow["state"] == "done", slow
    assert Path(str(slow["stored_path"])).read_bytes() == content
    assert_all_delivered_once(install, feed)


def test_file_with_an_mtime_a_few_seconds_ahead_is_taken_without_waiting_for_it(install: Install) -> None:
    set_settle(install, 0.5)
    feed = feed_for(install)
    path = install.inbox() / feed.drop_orders("ahead.xml", [1, 2])
    ahead = time.time() + 3
    os.utime(path, (ahead, ahead))

    result = run_once(install)
    assert result.returncode == 0, result.stderr
    assert summary(result) == (1, 0, 0, 0)
    # settling is judged by this machine's clock (ctime), so a time stamp ahead does not delay the file
    assert entry(install, "ahead.xml")["state"] == "done"
    assert_all_delivered_once(install, feed)


def test_complete_file_with_an_mtime_far_in_the_future_is_still_taken(install: Install) -> None:
    set_settle(install, 0.5)
    feed = feed_for(install)
    path = install.inbox() / feed.drop_orders("future.xml", [1, 2])
    future = time.time() + 86400
    os.utime(path, (future, future))

    result = run_once(install)  # waits for the settle time by this machine's clock, not for the time stamp
    assert result.returncode == 0, result.stderr
    assert [p.name for p in install.inbox().iterdir()] == [], f"left in the inbox:\n{result.stderr}"
    assert_all_delivered_once(install, feed)


# -- two processes ------------------------------------------------------------------------------------------------


def test_two_runs_on_the_same_inbox_deliver_every_order_exactly_once(install: Install) -> None:
    feed = feed_for(install, seed=11, malformed=0.04)
    feed.repeat_rate = 0.3  # many orders also in other files: the two processes race for their keys
    feed.resend_rate = 0.1
    feed.drop_batch("orders", 200)

    procs = [subprocess.Popen(gateway_command(install, "run", "--once"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    counts = []
    for stderr, status in results:
        assert status in (0, 1), stderr
        assert "Traceback" not in stderr, stderr
        done, duplicate, quarantined, waiting = summary(subprocess.CompletedProcess([], status, "", stderr))
        assert waiting == 0
        counts.append(done + duplicate + quarantined)
    assert sum(counts) == 200, f"inputs handled per process: {counts} (each input by exactly one)"
    assert min(counts) > 0, f"inputs handled per process: {counts}: the two did not overlap"
    assert_all_delivered_once(install, feed)


# -- a kill while quarantining ------------------------------------------------------------------------------------


def test_a_kill_while_quarantining_leaves_no_staged_output_behind(install: Install) -> None:
    install.drop("bad.xml", malformed_content("no-order-number", 900_000))  # its first order gets staged
    assert run_once(install).returncode == 1
    (bad,) = journal_entries(install)
    stored = Path(str(bad["stored_path"]))
    reason = stored.with_name(stored.name + ".reason.txt")
    db = sqlite3.connect(install.root / "state" / "journal.sqlite")
    try:
        (work_path,) = db.execute("SELECT work_path FROM inputs WHERE id = ?", (bad["id"],)).fetchone()
    finally:
        db.close()
    # Killed right after journal.finish(failed): the input still in the work folder, no reason file
    # yet, and what conversion had staged before it met the error still there.
    os.replace(stored, work_path)
    reason.unlink()
    stage = install.root / "state" / "work" / FLOW / ".stage" / str(bad["id"])
    stage.mkdir(parents=True)
    (stage / "00-auftrag").write_text("Mandant;Belegart;Referenznummer\r\n", encoding="utf-8")

    assert run_once(install).returncode == 1
    assert stored.is_file() and reason.is_file()  # quarantined as it should be
    assert not Path(work_path).exists()
    assert not stage.exists(), f"left behind: {sorted(p.name for p in stage.iterdir())}"


# -- the checks themselves ----------------------------------------------------------------------------------------


def test_the_audit_notices_each_kind_of_failure(install: Install) -> None:
    feed = feed_for(install, malformed=0.2)
    feed.drop_batch("orders", 12)
    assert feed.malformed, "the seed should give a malformed file"
    assert run_once(install).returncode == 1
    assert audit(install, feed).ok

    first, second = install.outputs()[:2]
    (install.outbox() / ".auftraege_x.csv.part").write_bytes(first.read_bytes())
    first.with_name("copy.csv").write_bytes(first.read_bytes())
    second.write_bytes(second.read_bytes()[:-2])  # the final CRLF cut off
    quarantined = next(p for p in (install.quarantine / FLOW).iterdir() if not p.name.endswith(".txt"))
    quarantined.unlink()
    counts = audit(install, feed).counts()
    assert counts == {"lost": 0, "duplicated": counts["duplicated"], "partial": 1, "wrongly_quarantined": 1,
                      "temp_visible": 1}, counts
    assert counts["duplicated"] >= 2  # copy.csv: not in the journal, and its orders twice

    first.unlink()
    assert audit(install, feed).counts()["lost"] >= 1
