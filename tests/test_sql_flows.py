"""The database flows on a real PostgreSQL server: the same outputs as from the exports, and only what changed.

SOL's KHK tables are filled from the golden examples' exports (tests/soldb.py). The export flow
converts the same export with its rows in the order the database flow's queries read them
(ORDER BY): the outputs must then be byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from postgres import Postgres
from soldb import KHK_BESTAENDE, load_export, sorted_export, split_bins, split_price_lists
from sqlsetup import ENV, SqlInstall, by_kind, unpack_example

from gateway.clock import ManualClock

CATALOG_FLOWS = """\
  sol-catalog:
    mapping: mappings/sol-catalog.yaml
    source: { folder: inbox/sol-catalog, include: ["katalog*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-catalog }
  sol-catalog-db:
    mapping: mappings/sol-catalog-db.yaml
    source: { sql: sol, name: katalog }
    outbox: { folder: outbox/sol-catalog-db }
"""

STOCK_PRICE_FLOWS = """\
  sol-stock:
    mapping: mappings/sol-stock.yaml
    source: { folder: inbox/sol-stock, include: ["bestand*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-stock }
    same_content_is_duplicate: no
  sol-stock-db:
    mapping: mappings/sol-stock-db.yaml
    source: { sql: sol, name: bestand }
    outbox: { folder: outbox/sol-stock-db }
    same_content_is_duplicate: no
  sol-prices:
    mapping: mappings/sol-prices.yaml
    source: { folder: inbox/sol-prices, include: ["preise*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-prices }
    same_content_is_duplicate: no
  sol-prices-db:
    mapping: mappings/sol-prices-db.yaml
    source: { sql: sol, name: preise }
    outbox: { folder: outbox/sol-prices-db }
    same_content_is_duplicate: no
"""


def _database(postgres: Postgres, name: str, export: Path) -> str:
    postgres.fresh_database(name)
    url = postgres.url(name)
    engine = sa.create_engine(url)
    try:
        load_export(engine, export)
    finally:
        engine.dispose()
    return url


def _drop_export(install: SqlInstall, flow: str, name: str, export: Path) -> None:
    target = install.root / "inbox" / flow / name
    sorted_export(export, target)
    (target / "export.done").write_text("2026-11-27 06:00:00\n", encoding="utf-8")


@pytest.mark.parametrize("case", ["sample", "edge-cases"])
def test_the_database_catalog_gives_the_same_outputs_as_the_export(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    export = unpack_example("sol-catalog", case, tmp_path / "export",
                            drop=("dokumente.csv", "dokumente", "export.done"))
    lists = split_price_lists(export)
    split_bins(export)
    promotions = ",".join(i for liste in ("7", "8") for i in lists.get(liste, [liste]))
    monkeypatch.setenv(ENV, _database(postgres, f"catalog_{case.replace('-', '_')}", export))
    settings = f"    settings: {{ aktionslisten: '{promotions}' }}\n"
    flows = CATALOG_FLOWS.replace("outbox/sol-catalog }\n", "outbox/sol-catalog }\n" + settings)
    flows = flows.replace("outbox/sol-catalog-db }\n", "outbox/sol-catalog-db }\n" + settings)
    install = SqlInstall.create(tmp_path / "gw", flows)
    _drop_export(install, "sol-catalog", "katalog_export", export)

    summary = install.run("sol-catalog", "sol-catalog-db")

    assert summary.done == 2 and not summary.failed and not summary.pending, summary
    from_file = by_kind(install.outputs("sol-catalog"), ("katalog_export",))
    from_db = by_kind(install.outputs("sol-catalog-db"), ("katalog_20261127T090000",))
    assert "rakuten_produkte.csv" in from_db and "staffelpreise.csv" in from_db
    assert from_db.keys() == from_file.keys()
    for name, data in from_file.items():
        assert from_db[name] == data, f"{name} differs between the export and the database"


def test_the_database_stock_and_prices_give_the_same_outputs_as_their_exports(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stock = unpack_example("sol-stock", "harder", tmp_path / "stock", drop=("export.done",))
    prices = unpack_example("sol-prices", "harder", tmp_path / "prices", drop=("export.done", "varianten.csv"))
    both = tmp_path / "both"
    both.mkdir()
    for folder in (stock, prices):
        for path in folder.iterdir():
            (both / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv(ENV, _database(postgres, "stock_prices", both))
    install = SqlInstall.create(tmp_path / "gw", STOCK_PRICE_FLOWS)
    _drop_export(install, "sol-stock", "bestand_export", stock)
    _drop_export(install, "sol-prices", "preise_export", both)

    summary = install.run("sol-stock", "sol-stock-db", "sol-prices", "sol-prices-db")

    assert summary.done == 4 and not summary.failed and not summary.pending, summary
    for flow, stems in (("sol-stock", ("bestand_export", "bestand_20261127T090000")),
                        ("sol-prices", ("preise_export", "preise_20261127T090000"))):
        from_file = by_kind(install.outputs(flow), stems)
        from_db = by_kind(install.outputs(f"{flow}-db"), stems)
        assert from_file and from_db == from_file, flow


def test_an_unchanged_catalog_is_recognised_and_not_sent_again(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = unpack_example("sol-catalog", "sample", tmp_path / "export", drop=("dokumente.csv", "dokumente"))
    monkeypatch.setenv(ENV, _database(postgres, "catalog_twice", export))
    install = SqlInstall.create(tmp_path / "gw", CATALOG_FLOWS)
    clock = ManualClock()

    first = install.run("sol-catalog-db", clock=clock)
    sent = install.outputs("sol-catalog-db")
    clock.advance(3600)
    second = install.run("sol-catalog-db", clock=clock)

    assert (first.done, second.done, second.duplicate) == (1, 0, 1)
    assert install.outputs("sol-catalog-db") == sent
    entries = [json.loads(line) for line in _journal(install)]
    assert entries[0]["sha256"] == entries[1]["sha256"] and entries[1]["state"] == "duplicate"
    assert "KHK" not in entries[0]["source"] or "tables artikel" in entries[0]["source"]


def _journal(install: SqlInstall) -> list[str]:
    from click.testing import CliRunner

    from gateway.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(install.config), "journal", "--json"])
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.strip()]


# -- incremental stock ---------------------------------------------------------------------------------

STOCK_DB_FLOW = """\
  sol-stock-db:
    mapping: mappings/sol-stock-db.yaml
    source: { sql: sol, name: bestand }
    outbox: { folder: outbox/sol-stock-db }
    same_content_is_duplicate: no
"""


def _stock_lines(install: SqlInstall) -> list[list[str]]:
    """Every stock line sent so far, file after file: [product, variant, stock]."""
    lines = []
    for _, data in sorted(install.outputs("sol-stock-db").items(), key=lambda kv: _input_no(kv[0])):
        for line in data.decode().splitlines()[1:]:
            lines.append(line.split(";")[:3])
    return lines


def _input_no(name: str) -> int:
    return int(name.rsplit("_", 1)[1].split(".")[0])


def _change(url: str, article: str, platz: int, bestand: int, at: dt.datetime) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(KHK_BESTAENDE)
                     .where(KHK_BESTAENDE.c.artikelnummer == article, KHK_BESTAENDE.c.platzid == platz)
                     .values(bestand=bestand, geaendertam=at))
    engine.dispose()


@pytest.fixture
def stock_db(postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SqlInstall, str]:
    export = unpack_example("sol-stock", "sample", tmp_path / "export", drop=("export.done",))
    url = _database(postgres, f"stock_{tmp_path.name[-20:].replace('-', '_').lower()}", export)
    monkeypatch.setenv(ENV, url)
    return SqlInstall.create(tmp_path / "gw", STOCK_DB_FLOW), url


def test_incremental_stock_sends_everything_first_then_only_what_changed(stock_db: tuple[SqlInstall, str]) -> None:
    install, url = stock_db
    clock = ManualClock()
    first = install.run("sol-stock-db", clock=clock)
    everything = _stock_lines(install)
    assert first.done == 1 and len(everything) == 2

    clock.advance(600)
    nothing = install.run("sol-stock-db", clock=clock)
    assert (nothing.done, nothing.duplicate) == (0, 0), "a run that finds nothing changed makes no input"

    _change(url, "10001", 101, 80, dt.datetime(2026, 11, 27, 9, 30))
    clock.advance(600)
    changed = install.run("sol-stock-db", clock=clock)
    assert changed.done == 1
    lines = _stock_lines(install)[len(everything):]
    assert lines == [["10001", "", "110"]], "only the changed article, with the sum over all its bins (80 + 30)"


def test_a_crash_between_sending_and_remembering_sends_the_same_changes_again(
        stock_db: tuple[SqlInstall, str]) -> None:
    install, url = stock_db
    assert install.run("sol-stock-db").done == 1
    before = len(_stock_lines(install))
    _change(url, "10001", 101, 50, dt.datetime(2026, 11, 27, 9, 30))

    # Killed once the output is delivered and the journal says done, before the watermark is remembered.
    env = {"GATEWAY_CRASH_AT": "finished"}
    crashed = _process(install, env)
    assert crashed.returncode == -9, crashed.stderr
    sent = _stock_lines(install)[before:]
    assert sent == [["10001", "", "80"]]

    again = _process(install, {})
    assert again.returncode == 0, again.stderr
    resent = _stock_lines(install)[before + 1:]
    assert resent == [["10001", "", "80"]], "the same change is sent again, never skipped"
    quiet = _process(install, {})
    assert quiet.returncode == 0 and _stock_lines(install)[before + 2:] == [], "and then it is remembered"


def _process(install: SqlInstall, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASH_AT"} | env
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"],
                          capture_output=True, text=True, timeout=120, env=full, check=False)
