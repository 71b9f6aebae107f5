"""What the console asks of the journal: searching, paging, notes, error locations, the overview's counts; and the
console's pages in German."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from conftest import Install, order_xml, orders_file
from consoleserver import console_server

from gateway import i18n
from gateway.clock import ManualClock
from gateway.journal import InputState, JournalQuery
from gateway.journal.sqlite import SqliteJournal


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    return SqliteJournal(tmp_path / "journal.sqlite", clock=ManualClock())


def _input(jr: SqliteJournal, flow: str, name: str, keys: list[str], state: InputState = InputState.DONE) -> int:
    row = jr.register(flow, "folder inbox", name, f"/work/{flow}/{name}", 10)
    jr.start(row.id, "0" * 64, 10)
    jr.commit(row.id, [], flow, keys, [])
    jr.finish(row.id, state, f"/archive/{name}")
    return row.id


def test_search_finds_by_order_number_name_flow_and_state_newest_first(journal: SqliteJournal) -> None:
    a = _input(journal, "rakuten-orders", "orders_A.xml", ["111-111", "222-222"])
    b = _input(journal, "rakuten-fr-orders", "Sales_B.XML", ["333-333"])
    c = _input(journal, "rakuten-orders", "orders_C.xml", ["444-444"], InputState.FAILED)
    assert [r.id for r in journal.search(JournalQuery(key="222-222")).rows] == [a]
    assert [r.id for r in journal.search(JournalQuery(key="222")).rows] == []  # an order number is exact
    assert [r.id for r in journal.search(JournalQuery(name="orders_")).rows] == [c, a]
    assert [r.id for r in journal.search(JournalQuery(name="sales_b")).rows] == [b]  # case does not matter
    assert [r.id for r in journal.search(JournalQuery(name="%")).rows] == []  # % is a character, not a wildcard
    assert [r.id for r in journal.search(JournalQuery(flow="rakuten-orders", state=InputState.FAILED)).rows] == [c]
    assert journal.search(JournalQuery()).total == 3
    assert journal.record_keys(a) == [("rakuten-orders", "111-111"), ("rakuten-orders", "222-222")]


def test_search_pages_go_back_in_time_by_id(journal: SqliteJournal) -> None:
    ids = [_input(journal, "f", f"n{i}.xml", [f"k{i}"]) for i in range(7)]
    first = journal.search(JournalQuery(limit=3))
    assert [r.id for r in first.rows] == ids[::-1][:3] and first.total == 7
    second = journal.search(JournalQuery(limit=3, before=first.next_before))
    third = journal.search(JournalQuery(limit=3, before=second.next_before))
    assert [r.id for r in second.rows + third.rows] == ids[::-1][3:]
    assert third.next_before is None


def test_search_by_date_range(tmp_path: Path) -> None:
    clock = ManualClock()
    jr = SqliteJournal(tmp_path / "j.sqlite", clock=clock)
    first = _input(jr, "f", "a.xml", ["1"])
    clock.advance(3 * 86400)
    second = _input(jr, "f", "b.xml", ["2"])
    day = jr.get(first).received_at[:10]
    later = jr.get(second).received_at[:10]
    assert [r.id for r in jr.search(JournalQuery(since=day, until=later)).rows] == [first]
    assert [r.id for r in jr.search(JournalQuery(since=later)).rows] == [second]


def test_an_order_number_search_uses_the_index_not_a_scan(journal: SqliteJournal) -> None:
    plan = " ".join(str(tuple(r)) for r in journal.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM inputs WHERE id IN (SELECT input_id FROM record_keys WHERE key = ?) "
        "ORDER BY id DESC", ("x",)))
    assert "record_keys_by_key" in plan


def test_operators_notes_outlive_a_retry(journal: SqliteJournal) -> None:
    failed = _input(journal, "f", "bad.xml", [], InputState.FAILED)
    journal.add_note(failed, "olga", "asked the shop")
    journal.requeue(failed, "/work/f/bad.xml.again", force=False)
    assert [(n.author, n.text) for n in journal.notes(failed)] == [("olga", "asked the shop")]
    with pytest.raises(KeyError):
        journal.add_note(9999, "olga", "no such input")


def test_the_overview_counts_inputs_whose_records_were_all_skipped(journal: SqliteJournal) -> None:
    row = journal.register("f", "folder", "old.xml", "/work/f/old.xml", 1)
    journal.note_skipped(row.id, [{"key": "1", "reason": "cancelled"}])
    journal.finish(row.id, InputState.DONE, "/archive/old.xml", warning="the only record was skipped")
    _input(journal, "f", "new.xml", ["2"])
    assert journal.counts()["f"]["warnings"] == 1


def test_a_quarantined_input_keeps_the_line_and_field_of_its_error(install: Install) -> None:
    install.drop("bad.xml", orders_file(order_xml("1-2-3", payment="XYZ")))
    assert install.process("run", "--once").returncode == 1
    entry = install.process("journal", "--json").stdout.splitlines()[0]
    assert '"field": "Zahlungskond"' in entry and '"line": 3' in entry


def test_the_console_speaks_german_when_gateway_yaml_says_so(install: Install) -> None:
    install.drop("bad.xml", orders_file(order_xml("1-2-3", payment="XYZ")))
    assert install.process("run", "--once").returncode == 1
    try:
        i18n.set_language("de")
        with console_server(install.config) as url:
            overview = httpx.get(f"{url}/").text
            assert "Übersicht" in overview and "In Quarantäne" in overview
            page = httpx.get(f"{url}/inputs/1").text
            assert "Erneut verarbeiten" in page and "Zeile" in page and "Feld" in page
            assert re.search(r'"last_run":"\d{4}-', httpx.get(f"{url}/api/overview").text)
    finally:
        i18n.set_language("en")
