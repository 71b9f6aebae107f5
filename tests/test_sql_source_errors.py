"""A database source in trouble, and ``gateway check`` with and without a connection: plain words, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from postgres import PASSWORD, Postgres, free_port
from soldb import load_export
from sqlcampaign import ORDERS_FLOW
from sqlsetup import ENV, SqlInstall, unpack_example

from gateway.cli import cli
from gateway.clock import ManualClock
from gateway.engine import Engine

CATALOG_DB = """\
  sol-catalog-db:
    mapping: mappings/sol-catalog-db.yaml
    source: { sql: sol, name: katalog }
    outbox: { folder: outbox/sol-catalog-db }
"""


@pytest.fixture(scope="module")
def catalog_url(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> str:
    export = unpack_example("sol-catalog", "sample", tmp_path_factory.mktemp("export"),
                            drop=("dokumente.csv", "dokumente"))
    postgres.fresh_database("catalog_errors")
    url = postgres.url("catalog_errors")
    engine = sa.create_engine(url)
    load_export(engine, export)
    engine.dispose()
    return url


def _run(install: SqlInstall) -> tuple[int, int, str]:
    """(inputs done, inputs waiting, the source's last error) after one ``run --once``."""
    inst = install.installation()
    engine = Engine(inst, clock=ManualClock())
    try:
        summary = engine.run_once(inst.select([]))
        errors = [h["error"] or "" for h in engine.journal.health() if "source" in h["place"]]
        entries = engine.journal.entries()
    finally:
        engine.close()
    assert not entries or summary.done, "nothing is registered when the database cannot be read"
    return summary.done, summary.pending, " ".join(errors)


def test_an_unreachable_server_and_a_wrong_password_are_said_in_plain_words(
        postgres: Postgres, catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install = SqlInstall.create(tmp_path / "gw", CATALOG_DB)
    monkeypatch.setenv(ENV, postgres.url("catalog_errors", port=free_port()))
    done, waiting, unreachable = _run(install)
    assert (done, waiting) == (0, 1)
    assert "cannot reach database 'sol' (postgresql at 127.0.0.1:" in unreachable
    assert "database catalog_errors, user gateway" in unreachable and "firewall" in unreachable
    monkeypatch.setenv(ENV, postgres.url("catalog_errors", password="not-the-password"))  # noqa: S106
    done, waiting, refused = _run(install)
    assert (done, waiting) == (0, 1)
    assert "refused the login of user 'gateway'" in refused and f"${ENV}" in refused
    assert "not-the-password" not in refused and PASSWORD not in unreachable
    monkeypatch.setenv(ENV, catalog_url)
    assert _run(install)[:2] == (1, 0), "once the URL is right, the catalog goes out"


def test_a_missing_column_stops_the_read_and_check_online_names_it(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = unpack_example("sol-catalog", "sample", tmp_path / "export", drop=("dokumente.csv", "dokumente"))
    postgres.fresh_database("catalog_missing")
    url = postgres.url("catalog_missing")
    engine = sa.create_engine(url)
    load_export(engine, export)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE khkartikel DROP COLUMN user_metatitel"))
        conn.execute(sa.text("DROP TABLE user_artikeltexte"))
    engine.dispose()
    monkeypatch.setenv(ENV, url)
    install = SqlInstall.create(tmp_path / "gw", CATALOG_DB)

    done, waiting, error = _run(install)
    assert (done, waiting) == (0, 1)
    assert "user_metatitel" in error and "lacks a table or column" in error and "--online" in error

    result = CliRunner().invoke(cli, ["--config", str(install.config), "check", "--online"])
    assert result.exit_code == 2, result.output
    assert "sol-catalog-db.yaml:" in result.output
    assert "table 'artikel': the query fails" in result.output and "user_metatitel" in result.output
    assert "table 'texte': the database has no table USER_ArtikelTexte" in result.output


def test_a_table_locked_by_another_session_is_waited_for_then_read(
        postgres: Postgres, catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, catalog_url)
    install = SqlInstall.create(tmp_path / "gw", CATALOG_DB)
    with postgres.connect("catalog_errors") as other:
        other.autocommit = False
        other.execute("LOCK TABLE khkartikelgruppen IN ACCESS EXCLUSIVE MODE")
        done, waiting, error = _run(install)
        other.rollback()
    assert (done, waiting) == (0, 1)
    assert "locked by another session" in error and "more than 2 s" in error
    assert _run(install)[:2] == (1, 0)


def test_check_online_passes_on_the_shipped_tables_and_names_what_it_did_not_check(
        postgres: Postgres, catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlcampaign import staging_database

    staging = staging_database(postgres, "catalog_errors_staging")
    flows = CATALOG_DB + ORDERS_FLOW
    install = SqlInstall.create(tmp_path / "gw", flows, extra=(
        "  shop:\n    url_env: SOL_TEST_STAGING_URL\n"))
    text = install.config.read_text().replace("outbox: { sql: sol,", "outbox: { sql: shop,")
    staging_tables = "url_env: SOL_TEST_STAGING_URL\n    staging_tables: [GatewayAuftragImport]\n"
    install.config.write_text(text.replace("url_env: SOL_TEST_STAGING_URL\n", staging_tables))
    monkeypatch.setenv(ENV, catalog_url)
    monkeypatch.delenv("SOL_TEST_STAGING_URL", raising=False)
    result = CliRunner().invoke(cli, ["--config", str(install.config), "check", "--online"])
    assert result.exit_code == 0, result.output
    assert "rakuten-orders: not checked online, the environment variable SOL_TEST_STAGING_URL is not set" in (
        result.output)
    monkeypatch.setenv("SOL_TEST_STAGING_URL", staging)
    result = CliRunner().invoke(cli, ["--config", str(install.config), "check", "--online"])
    assert result.exit_code == 0, result.output

    with postgres.connect("catalog_errors_staging") as conn:
        conn.execute("ALTER TABLE GatewayAuftragImport DROP COLUMN A0Telefon")
    result = CliRunner().invoke(cli, ["--config", str(install.config), "check", "--online"])
    assert result.exit_code == 2
    assert "rakuten-orders.yaml:" in result.output and "has no column 'A0Telefon'" in result.output


def test_check_refuses_queries_that_cannot_work_without_connecting(tmp_path: Path) -> None:
    install = SqlInstall.create(tmp_path / "gw", CATALOG_DB + """\
  to-khk:
    mapping: mappings/rakuten-orders.yaml
    source: { folder: inbox/x }
    outbox: { sql: sol, table: KHKVKBelege }
  to-other:
    mapping: mappings/rakuten-orders.yaml
    source: { folder: inbox/y }
    outbox: { sql: sol, table: Kunden }
  unknown-db:
    mapping: mappings/rakuten-orders.yaml
    source: { folder: inbox/z }
    outbox: { sql: nowhere, table: GatewayAuftragImport }
""")
    mapping = install.root / "mappings" / "sol-catalog-db.yaml"
    text = mapping.read_text(encoding="utf-8")
    text = text.replace("a.Mandant, a.Artikelnummer, a.Bezeichnung1,", "a.Mandant, a.Artikelnummer,")
    text = text.replace("WHERE g.Mandant = :mandant\n        ORDER BY g.Artikelgruppe", "WHERE g.Mandant = :firma")
    text = text.replace("SELECT s.Mandant, s.Stueckliste, s.Element, s.AuspraegungID, s.Menge, s.Sortierung",
                        "SELECT *")
    text = text.replace("SELECT z.Mandant,", "DELETE FROM x; SELECT z.Mandant,")
    mapping.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(install.config), "check"])
    out = result.output
    assert result.exit_code == 2, out
    assert "table 'artikel': the query does not select the column 'Bezeichnung1'" in out
    assert "mappings/sol-catalog.yaml:" in out  # where the mapping uses it
    assert "table 'artikelgruppen': the query has no ORDER BY" in out
    assert "the query uses :firma, and the mapping has no setting 'firma'" in out
    assert "table 'stuecklisten': the query selects '*'" in out
    assert "table 'zubehoer': the query must be a SELECT" in out
    assert "KHKVKBelege is one of SOL's own tables" in out
    assert "the table Kunden is not a staging table of the database 'sol'" in out
    assert "no database named 'nowhere' under 'databases'" in out
