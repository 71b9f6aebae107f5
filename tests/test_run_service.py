"""`gateway run` as the operator starts it: a real process, files dropped while it runs, SIGTERM.

Nothing waits for a fixed time: a test drops its files once the service's log says that it watches
the inbox, and waits for the outputs; ``SAFETY`` only ends a test that hangs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Install, order_xml, orders_file, read_csv_rows

SAFETY = 60.0  # real seconds: ends a test that hangs; never what a test asserts


def wait_for(condition: Callable[[], Any], what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``condition`` until it is true; fail after ``SAFETY``, or at once if ``proc`` has ended."""
    deadline = time.monotonic() + SAFETY
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the service ended with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {SAFETY} s waiting for {what}")
        time.sleep(0.02)


def start_service(install: Install, log: Path) -> subprocess.Popen[bytes]:
    """``gateway run`` in its own process, its log in ``log``; returns once it watches the inbox."""
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(install.config), "run"],
                                stdout=subprocess.DEVNULL, stderr=err)
    wait_for(lambda: f"watching {install.inbox()}" in log.read_text(encoding="utf-8"), "the service to start", proc)
    return proc


def stop_service(proc: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM, as systemd sends it; the service's exit status must be 0. Returns its log."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=SAFETY)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text
    return text


def test_the_service_delivers_files_dropped_while_it_runs_and_stops_cleanly_on_sigterm(
    install: Install, tmp_path: Path
) -> None:
    # rescans an hour apart: only the watch can deliver the files before SAFETY runs out
    install.config.write_text("rescan_seconds: 3600\n" + install.config.read_text(encoding="utf-8"), encoding="utf-8")
    log = tmp_path / "service.log"
    proc = start_service(install, log)
    try:
        install.drop("a.xml", orders_file(order_xml("1-1-1")))
        wait_for(lambda: len(install.outputs()) == 1, "the first output", proc)
        install.drop("b.xml", orders_file(order_xml("1-1-1"), order_xml("2-2-2")))
        wait_for(lambda: len(install.outputs()) == 2, "the second output", proc)
    finally:
        err = stop_service(proc, log)
    assert "Traceback" not in err
    numbers = sorted(r["Referenznummer"] for p in install.outputs() for r in read_csv_rows(p))
    assert numbers == ["1-1-1", "1-1-1", "2-2-2", "2-2-2"]  # item + shipping row each, order 1-1-1 once


def test_a_manual_run_while_the_service_runs_processes_nothing_twice(install: Install, tmp_path: Path) -> None:
    config = install.config.read_text(encoding="utf-8").replace("settle_seconds: 0", "settle_seconds: 0.3")
    install.config.write_text(config, encoding="utf-8")
    log = tmp_path / "service.log"
    proc = start_service(install, log)
    try:
        for n in range(20):
            install.drop(f"o{n}.xml", orders_file(order_xml(f"{n}-0-0")))
        manual = install.process("run", "--once")
        assert manual.returncode == 0, manual.stderr
        wait_for(lambda: len({p.name for p in install.outputs()}) == 20, "20 outputs", proc)
    finally:
        stop_service(proc, log)
    rows = [r["Referenznummer"] for p in install.outputs() for r in read_csv_rows(p)]
    assert sorted(set(rows)) == sorted(f"{n}-0-0" for n in range(20))
    assert len(rows) == 40  # one item row and one shipping row per order, none twice


def test_a_schedule_without_times_is_refused_by_check(install: Install) -> None:
    config = install.config.read_text(encoding="utf-8") + "    schedule: {}\n"
    install.config.write_text(config, encoding="utf-8")
    result = install.cli("check")
    assert result.exit_code == 2
    assert "gateway.yaml:" in result.output and "schedule" in result.output


def test_a_time_of_day_that_does_not_exist_is_refused_by_check(install: Install) -> None:
    config = install.config.read_text(encoding="utf-8") + '    schedule: { at: ["25:00"] }\n'
    install.config.write_text(config, encoding="utf-8")
    result = install.cli("check")
    assert result.exit_code == 2 and "'25:00' is not a time of day" in result.output
