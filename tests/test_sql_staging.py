"""Orders into SOL's staging table on a real PostgreSQL server: each once, typed, through crashes and trouble."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SAMPLE_ORDERS, order_xml, orders_file
from postgres import Postgres
from sqlcampaign import ORDERS_FLOW, StagingCampaign, staging_database
from sqlsetup import ENV, SqlInstall


@pytest.fixture
def staging(postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SqlInstall, str]:
    url = staging_database(postgres, f"staging_{abs(hash(tmp_path.name)) % 10**8}")
    monkeypatch.setenv(ENV, url)
    return SqlInstall.create(tmp_path / "gw", ORDERS_FLOW), url


def _rows(url: str, sql: str = "SELECT * FROM GatewayAuftragImport ORDER BY ImportID") -> list[dict[str, object]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _drop(install: SqlInstall, name: str, content: str | bytes) -> None:
    inbox = install.root / "inbox" / "rakuten-orders"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_bytes(content.encode() if isinstance(content, str) else content)


def test_orders_go_into_the_staging_table_once_with_typed_values(staging: tuple[SqlInstall, str]) -> None:
    install, url = staging
    _drop(install, "orders_de.xml", SAMPLE_ORDERS.read_bytes())
    assert install.run("rakuten-orders").done == 1
    rows = _rows(url)
    assert rows, "rows in the staging table"
    first = rows[0]
    assert first["mandant"] == 123 and first["belegart"] == "VVA" and first["istimportiert"] == 0
    assert isinstance(first["belegdatum"], dt.datetime)
    priced = [r for r in rows if r["einzelpreis"] is not None]
    assert priced and all(isinstance(r["einzelpreis"], decimal.Decimal) for r in priced)
    keys = _rows(url, "SELECT * FROM GatewayDelivered")
    assert len(keys) == 1 and keys[0]["rowsinserted"] == len(rows) and keys[0]["flow"] == "rakuten-orders"
    assert {r["gatewaykey"] for r in rows} == {keys[0]["deliverykey"]}

    # The same file again is a duplicate; the same orders in another file are skipped: nothing new.
    _drop(install, "orders_de_again.xml", SAMPLE_ORDERS.read_bytes())
    _drop(install, "orders_de_copy.xml", SAMPLE_ORDERS.read_text(encoding="utf-8") + "\n")
    again = install.run("rakuten-orders")
    assert again.done + again.duplicate == 2 and not again.failed
    assert len(_rows(url)) == len(rows)


def test_a_value_the_table_cannot_hold_quarantines_the_input_and_inserts_nothing(
        staging: tuple[SqlInstall, str]) -> None:
    install, url = staging
    _drop(install, "long.xml", orders_file(order_xml("100-200-301", client={"zip_code": "1" * 30})))
    summary = install.run("rakuten-orders")
    assert summary.failed == 1
    reason = next((install.root / "quarantine" / "rakuten-orders").glob("*.reason.txt")).read_text()
    assert "A0PLZ" in reason and "at most 20" in reason and "line 2" in reason
    assert _rows(url) == [] and _rows(url, "SELECT * FROM GatewayDelivered") == []


@pytest.mark.parametrize("point", ["sql-inserted", "sql-committed"])
def test_a_crash_around_the_commit_leaves_each_order_once(staging: tuple[SqlInstall, str], point: str) -> None:
    install, url = staging
    _drop(install, "a.xml", orders_file(order_xml("100-200-301"), order_xml("100-200-302")))
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASH_AT"} | {"GATEWAY_CRASH_AT": point}
    command = [sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"]
    crashed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert crashed.returncode == -9, crashed.stderr
    assert len(_rows(url)) == (0 if point == "sql-inserted" else 4), "rolled back / committed"
    env.pop("GATEWAY_CRASH_AT")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    orders = [r["referenznummer"] for r in _rows(url)]
    assert sorted(orders) == ["100-200-301"] * 2 + ["100-200-302"] * 2  # one position + shipping each


@pytest.mark.campaign  # a crash campaign: run by CI (.ci/run), not by the README's `pytest -q`
def test_a_seeded_crash_campaign_leaves_every_order_once(postgres: Postgres, tmp_path: Path) -> None:
    url = staging_database(postgres, "staging_campaign")
    campaign = StagingCampaign(tmp_path / "gw", url, seed=7)
    result = campaign.run(kills=12)
    assert result.ok, (result.line(), result.problems)
    assert result.kills >= 12 and result.orders > 10


def test_a_table_locked_by_another_session_waits_with_a_clear_message_and_loses_nothing(
        postgres: Postgres, staging: tuple[SqlInstall, str]) -> None:
    install, url = staging
    database = url.rsplit("/", 1)[1]
    _drop(install, "a.xml", orders_file(order_xml("100-200-301")))
    with postgres.connect(database) as other:
        other.autocommit = False
        other.execute("LOCK TABLE GatewayAuftragImport IN ACCESS EXCLUSIVE MODE")
        summary = install.run("rakuten-orders")
        other.rollback()
    assert summary.pending == 1 and not summary.failed
    entry = _journal_entry(install)
    assert "locked by another session" in entry["error"] and "Nothing was changed" in entry["error"]
    assert install.run("rakuten-orders").done == 1
    assert len(_rows(url)) == 2


def test_an_unreachable_server_and_a_wrong_password_wait_in_plain_words(
        postgres: Postgres, staging: tuple[SqlInstall, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from postgres import PASSWORD, free_port

    install, url = staging
    _drop(install, "a.xml", orders_file(order_xml("100-200-301")))
    database = url.rsplit("/", 1)[1]
    monkeypatch.setenv(ENV, postgres.url(database, port=free_port()))
    down = install.run("rakuten-orders")
    unreachable = _journal_entry(install)["error"]
    monkeypatch.setenv(ENV, postgres.url(database, password="wrong-password"))  # noqa: S106
    refused_run = install.run("rakuten-orders")
    refused = _journal_entry(install)["error"]
    assert down.pending == 1 and refused_run.pending == 1 and not down.failed and not refused_run.failed
    assert "cannot reach database 'sol'" in unreachable and "127.0.0.1" in unreachable and "Check that" in unreachable
    assert "refused the login of user 'gateway'" in refused and "SOL_TEST_DATABASE_URL" in refused
    for text in (unreachable, refused):
        assert PASSWORD not in text and "wrong-password" not in text
    monkeypatch.setenv(ENV, url)
    assert install.run("rakuten-orders").done == 1
    assert len(_rows(url)) == 2


def _journal_entry(install: SqlInstall) -> dict[str, object]:
    import json

    from click.testing import CliRunner

    from gateway.cli import cli

    result = CliRunner().invoke(cli, ["--config", str(install.config), "journal", "--json"])
    entries = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return entries[-1]


def test_the_staging_scripts_create_what_the_destination_needs() -> None:
    from gateway.sql.staging import KEY_COLUMNS

    root = Path(__file__).resolve().parents[1] / "sql"
    for script in ("staging-postgresql.sql", "staging-sqlserver.sql", "staging-sqlite.sql"):
        text = (root / script).read_text(encoding="utf-8")
        assert "CREATE TABLE GatewayAuftragImport" in text and "CREATE TABLE GatewayDelivered" in text
        for column in KEY_COLUMNS:
            assert f"    {column} " in text, (script, column)
