"""`gateway run` as the operator starts it: a real process, files dropped while it runs, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import Install, order_xml, orders_file, read_csv_rows


def _wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_service_delivers_files_dropped_while_it_runs_and_stops_cleanly_on_sigterm(install: Install) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(install.config), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
    )
    try:
        time.sleep(1.0)
        dropped = time.monotonic()
        install.drop("a.xml", orders_file(order_xml("1-1-1")))
        assert _wait_for(lambda: len(install.outputs()) == 1), "no output within 15 s"
        latency = time.monotonic() - dropped
        assert latency < 5.0, latency
        install.drop("b.xml", orders_file(order_xml("1-1-1"), order_xml("2-2-2")))
        assert _wait_for(lambda: len(install.outputs()) == 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    numbers = sorted(r["Referenznummer"] for p in install.outputs() for r in read_csv_rows(p))
    assert numbers == ["1-1-1", "1-1-1", "2-2-2", "2-2-2"]  # item + shipping row each, order 1-1-1 once


def test_a_manual_run_while_the_service_runs_processes_nothing_twice(install: Install) -> None:
    config = install.config.read_text(encoding="utf-8").replace("settle_seconds: 0", "settle_seconds: 0.3")
    install.config.write_text(config, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(install.config), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        for n in range(20):
            install.drop(f"o{n}.xml", orders_file(order_xml(f"{n}-0-0")))
        manual = install.process("run", "--once")
        assert manual.returncode == 0, manual.stderr
        assert _wait_for(lambda: len({p.name for p in install.outputs()}) == 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
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
