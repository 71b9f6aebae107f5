"""Delivery, markers, settling, status and journal output, retention, and two processes at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import Install, order_xml, orders_file, read_csv_rows

from gateway import Engine, load_installation
from gateway.destinations.memory import MemoryDestination


def _journal(install: Install) -> list[dict[str, object]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def _set(install: Install, old: str, new: str) -> None:
    text = install.config.read_text(encoding="utf-8")
    assert old in text
    install.config.write_text(text.replace(old, new), encoding="utf-8")


def test_unwritable_outbox_keeps_the_input_waiting_and_delivers_it_later_once(install: Install) -> None:
    outbox = install.outbox()
    outbox.rmdir()
    outbox.write_text("a file where the outbox folder should be")
    install.drop("a.xml", orders_file(order_xml("1-1-1")))

    first = install.cli("run", "--once")
    assert first.exit_code == 3
    (entry,) = _journal(install)
    assert entry["state"] == "delivering"
    assert "delivery waits" in str(entry["error"])
    assert not (install.quarantine / "rakuten-orders").exists()

    outbox.unlink()
    second = install.cli("run", "--once")
    assert second.exit_code == 0, second.output
    (out,) = install.outputs()
    assert [r["Referenznummer"] for r in read_csv_rows(out)] == ["1-1-1", "1-1-1"]  # item + shipping
    (entry,) = _journal(install)
    assert entry["state"] == "done" and entry["error"] is None
    assert entry["outputs"] == [str(out)]


def test_a_failing_destination_is_retried_without_writing_twice(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("2-2-2")))
    inst = load_installation(install.config)
    memory = MemoryDestination("retried")
    memory.store.fail_next = "deliver"
    engine = Engine(inst)
    engine.set_destination("rakuten-orders", "outbox", memory)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    assert summary.pending == 1 and summary.done == 0
    assert memory.store.files() == {} and len(memory.store.prepared) == 1

    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    assert summary.done == 1
    assert list(memory.store.files()) == ["auftraege_a_1.csv"] and memory.store.prepared == {}
    assert set(memory.store.arrivals.values()) == {1}
    engine.close()


def test_a_delivery_whose_answer_was_lost_is_asked_about_not_repeated(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("2-2-3")))
    inst = load_installation(install.config)
    memory = MemoryDestination("lost-answer")
    memory.store.lose_answer = True
    engine = Engine(inst)
    engine.set_destination("rakuten-orders", "outbox", memory)
    assert engine.run_once(inst.select([]), wait_for_settle=False).pending == 1
    assert engine.run_once(inst.select([]), wait_for_settle=False).done == 1
    assert list(memory.store.arrivals.values()) == [1]  # arrived with the lost answer, never again
    (entry,) = _journal(install)
    assert entry["outputs"] == ["memory://lost-answer/auftraege_a_1.csv"]
    engine.close()


def test_marker_file_is_written_after_each_output(install: Install) -> None:
    _set(install, "      folder: outbox/rakuten-orders\n", "      folder: outbox/rakuten-orders\n      marker: .done\n")
    install.drop("a.xml", orders_file(order_xml("3-3-3")))
    assert install.cli("run", "--once").exit_code == 0
    (out,) = install.outputs()
    marker = out.with_name(out.name + ".done")
    assert marker.exists() and marker.stat().st_size == 0
    assert marker.stat().st_mtime_ns >= out.stat().st_mtime_ns


def test_an_existing_file_in_the_outbox_is_never_overwritten(install: Install) -> None:
    install.outbox().joinpath("auftraege_a_1.csv").write_text("someone else's file")
    install.drop("a.xml", orders_file(order_xml("4-4-4")))
    assert install.cli("run", "--once").exit_code == 3
    assert install.outbox().joinpath("auftraege_a_1.csv").read_text() == "someone else's file"
    (entry,) = _journal(install)
    assert entry["state"] == "delivering" and "already exists" in str(entry["error"])


def test_a_file_still_being_written_is_not_taken_before_it_settles(install: Install) -> None:
    _set(install, "settle_seconds: 0", "settle_seconds: 30")
    install.drop("a.xml", orders_file(order_xml("5-5-5")))
    inst = load_installation(install.config)
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    assert summary.done == 0
    assert (install.inbox() / "a.xml").exists()
    # the same file, last changed long enough ago, is taken
    old = time.time() - 60
    os.utime(install.inbox() / "a.xml", (old, old))
    engine.close()
    # ctime cannot be set back; a fresh installation with a shorter settle time takes it
    _set(install, "settle_seconds: 30", "settle_seconds: 0.2")
    inst = load_installation(install.config)
    engine = Engine(inst)
    assert engine.run_once(inst.select([])).done == 1
    engine.close()


def test_producer_marker_makes_a_file_taken_at_once_and_is_removed(install: Install) -> None:
    _set(install, "settle_seconds: 0", "settle_seconds: 3600")
    _set(install, '      include: ["*.xml"]\n', '      include: ["*.xml"]\n      marker: .ok\n')
    install.drop("a.xml", orders_file(order_xml("6-6-6")))
    install.drop("b.xml", orders_file(order_xml("7-7-7")))
    (install.inbox() / "a.xml.ok").write_text("")
    inst = load_installation(install.config)
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    assert summary.done == 1
    assert sorted(p.name for p in install.inbox().iterdir()) == ["b.xml"]
    (out,) = install.outputs()
    assert read_csv_rows(out)[0]["Referenznummer"] == "6-6-6"


def test_status_and_journal_report_every_input(install: Install) -> None:
    install.drop("good.xml", orders_file(order_xml("8-8-8")))
    install.drop("bad.xml", "<result><orders><order>")
    assert install.cli("run", "--once").exit_code == 1
    install.drop("waiting.xml", orders_file(order_xml("9-9-9")))

    status = install.cli("status", "--json")
    assert status.exit_code == 0
    (flow,) = [json.loads(line) for line in status.output.splitlines()]
    assert flow["flow"] == "rakuten-orders"
    assert (flow["done"], flow["failed"], flow["waiting"]) == (1, 1, 1)
    assert flow["last_run"] is not None

    entries = {e["name"]: e for e in _journal(install)}
    good, bad = entries["good.xml"], entries["bad.xml"]
    for key in ("id", "flow", "source", "name", "sha256", "state", "outputs", "error", "received_at", "finished_at"):
        assert key in good
    assert good["state"] == "done" and len(good["outputs"]) == 1 and good["error"] is None
    assert len(str(good["sha256"])) == 64
    assert bad["state"] == "failed" and "line" in str(bad["error"]) and bad["outputs"] == []

    table = install.cli("journal")
    assert "good.xml" in table.output and "quarantined" in table.output


def test_archive_keeps_inputs_for_the_configured_days(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("10-10-10")))
    assert install.cli("run", "--once").exit_code == 0
    (day_dir,) = (install.archive / "rakuten-orders").iterdir()
    assert day_dir.name == dt.date.today().isoformat()
    assert [p.name for p in day_dir.iterdir()] == ["1--a.xml"]
    old = install.archive / "rakuten-orders" / (dt.date.today() - dt.timedelta(days=31)).isoformat()
    old.mkdir()
    (old / "9--old.xml").write_text("x")
    assert install.cli("run", "--once").exit_code == 0
    assert not old.exists() and day_dir.exists()


def test_two_processes_on_one_inbox_deliver_every_order_exactly_once(install: Install) -> None:
    for n in range(40):
        install.drop(f"o{n:02d}.xml", orders_file(order_xml(f"{n}-0-0"), order_xml(f"{n}-1-1")))
    # the same order numbers again in other files, to race on the keys as well
    for n in range(0, 40, 4):
        install.drop(f"again{n:02d}.xml", orders_file(order_xml(f"{n}-1-1")))
    cmd = [sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    rows = [r for out in install.outputs() for r in read_csv_rows(out)]
    per_order: dict[str, int] = {}
    for r in rows:
        per_order[r["Referenznummer"]] = per_order.get(r["Referenznummer"], 0) + 1
    assert len(per_order) == 80
    assert set(per_order.values()) == {2}  # one item row and one shipping row, never doubled
    assert list(install.inbox().iterdir()) == []
    states = [e["state"] for e in _journal(install)]
    # which of two files with the same order wins depends on the race; that nothing is lost or doubled does not
    assert len(states) == 50 and set(states) <= {"done", "duplicate"}


def test_preview_prints_the_output_and_touches_nothing(install: Install, tmp_path: Path) -> None:
    sample = tmp_path / "p.xml"
    sample.write_text(orders_file(order_xml("11-11-11")), encoding="utf-8")
    result = install.cli("preview", "rakuten-orders", str(sample))
    assert result.exit_code == 0
    assert "11-11-11" in result.output
    assert install.outputs() == []
    assert not (install.root / "state").exists()
