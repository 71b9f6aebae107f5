"""The smallest cases without a server (SQLite), and the pieces underneath: query text, values, based_on."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import order_xml, orders_file
from soldb import load_export, sorted_export
from sqlcampaign import ORDERS_FLOW
from sqlsetup import ENV, REPO, SqlInstall, by_kind, unpack_example

from gateway.errors import ConfigError
from gateway.mapping.compiler import load_mapping
from gateway.sql.querytext import shape
from gateway.sql.values import Unfit, parse_number, to_column, to_text


def test_orders_go_into_a_sqlite_staging_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "staging.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((REPO / "sql" / "staging-sqlite.sql").read_text(encoding="utf-8"))
    monkeypatch.setenv(ENV, f"sqlite:///{db}")
    install = SqlInstall.create(tmp_path / "gw", ORDERS_FLOW)
    inbox = install.root / "inbox" / "rakuten-orders"
    inbox.mkdir(parents=True)
    (inbox / "a.xml").write_text(orders_file(order_xml("100-200-301"), order_xml("100-200-302")), encoding="utf-8")
    assert install.run("rakuten-orders").done == 1
    (inbox / "b.xml").write_text(orders_file(order_xml("100-200-302"), order_xml("100-200-303")), encoding="utf-8")
    assert install.run("rakuten-orders").done == 1
    with sqlite3.connect(db) as conn:
        orders = [r[0] for r in conn.execute("SELECT Referenznummer FROM GatewayAuftragImport ORDER BY ImportID")]
        keys = conn.execute("SELECT COUNT(*), SUM(RowsInserted) FROM GatewayDelivered").fetchone()
    assert orders == ["100-200-301"] * 2 + ["100-200-302"] * 2 + ["100-200-303"] * 2
    assert keys == (2, 6)


def test_the_catalog_from_sqlite_matches_the_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = unpack_example("sol-catalog", "sample", tmp_path / "export", drop=("dokumente.csv", "dokumente",
                                                                                 "export.done"))
    url = f"sqlite:///{tmp_path / 'sol.db'}"
    engine = sa.create_engine(url)
    load_export(engine, export)
    engine.dispose()
    monkeypatch.setenv(ENV, url)
    install = SqlInstall.create(tmp_path / "gw", """\
  sol-catalog:
    mapping: mappings/sol-catalog.yaml
    source: { folder: inbox/sol-catalog, include: ["katalog*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-catalog }
  sol-catalog-db:
    mapping: mappings/sol-catalog-db.yaml
    source: { sql: sol, name: katalog }
    outbox: { folder: outbox/sol-catalog-db }
""")
    batch = sorted_export(export, install.root / "inbox" / "sol-catalog" / "katalog_export")
    (batch / "export.done").write_text("x", encoding="utf-8")
    assert install.run("sol-catalog", "sol-catalog-db").done == 2
    stems = ("katalog_export", "katalog_20261127T090000")
    assert by_kind(install.outputs("sol-catalog-db"), stems) == by_kind(install.outputs("sol-catalog"), stems)


# -- query text ------------------------------------------------------------------------------------------


def test_the_select_list_gives_names_in_the_query_s_spelling() -> None:
    found = shape("""
        WITH x AS (SELECT 1 AS a FROM y)  -- a comment, with a comma
        SELECT DISTINCT TOP (10) a.Artikelnummer, [Bezeichnung 1], "Menge" AS "Stück", CAST(a.x AS int) Zahl,
               CASE WHEN a.y = 'a,b' THEN 1 END AS Fall, COALESCE(a.z, 0) AS Z
        FROM dbo.KHKArtikel a JOIN KHKArtikelVarianten v ON v.Artikelnummer = a.Artikelnummer
        WHERE a.Mandant = :mandant ORDER BY a.Artikelnummer;
    """)
    assert found.problems == []
    assert found.columns == ["Artikelnummer", "Bezeichnung 1", "Stück", "Zahl", "Fall", "Z"]
    assert found.ordered and found.tables[:3] == ["y", "KHKArtikel", "KHKArtikelVarianten"]


@pytest.mark.parametrize(("query", "words"), [
    ("SELECT * FROM KHKArtikel ORDER BY 1", "'*'"),
    ("SELECT a.x + 1 FROM t ORDER BY 1", "without a name"),
    ("UPDATE KHKArtikel SET x = 1", "must be a SELECT"),
    ("SELECT a FROM t; DROP TABLE t", "more than one statement"),
    ("SELECT a, A FROM t ORDER BY a", "two columns named"),
    ("SELECT (a FROM t", "brackets"),
])
def test_a_query_the_gateway_cannot_check_is_refused_in_words(query: str, words: str) -> None:
    assert any(words in p for p in shape(query).problems)


# -- values ------------------------------------------------------------------------------------------------


def test_database_values_are_written_as_sol_exports_them() -> None:
    assert [to_text(v) for v in (None, True, False, 12, decimal.Decimal("12.9000"), decimal.Decimal("1250.0000"),
                                 decimal.Decimal("0.4200"), decimal.Decimal("-0.0000"), 2.5,
                                 dt.datetime(2026, 11, 27), dt.datetime(2026, 11, 27, 9, 14, 3), dt.date(2026, 1, 2),
                                 b"\x00\x01", "Büro")] == [
        "", "-1", "0", "12", "12,9", "1250", "0,42", "0", "2,5", "27.11.2026", "27.11.2026 09:14:03", "02.01.2026",
        "0x0001", "Büro"]


def test_output_text_becomes_the_column_s_type_or_is_refused() -> None:
    column = sa.Column("x", sa.Numeric(6, 2), nullable=True)
    assert to_column("12,90", column) == decimal.Decimal("12.90")
    assert to_column("1.234,50", column) == decimal.Decimal("1234.50")
    assert to_column("1.234", column) == decimal.Decimal("1.234")
    assert to_column("", column) is None
    assert parse_number("-3") == -3
    with pytest.raises(Unfit, match="too large"):
        to_column("123456,7", column)
    with pytest.raises(Unfit, match="not a number"):
        to_column("zwölf", column)
    assert to_column("27.11.2026", sa.Column("d", sa.DateTime())) == dt.datetime(2026, 11, 27)
    assert to_column("2026-11-27 09:14:03", sa.Column("d", sa.DateTime())) == dt.datetime(2026, 11, 27, 9, 14, 3)
    with pytest.raises(Unfit, match="not a date"):
        to_column("27/11/2026", sa.Column("d", sa.Date()))
    with pytest.raises(Unfit, match="at most 3"):
        to_column("abcd", sa.Column("t", sa.String(3)))
    with pytest.raises(Unfit, match="takes no NULL"):
        to_column("", sa.Column("n", sa.Integer(), nullable=False))
    with pytest.raises(Unfit, match="whole number"):
        to_column("1,5", sa.Column("n", sa.Integer()))
    assert to_column("-1", sa.Column("b", sa.Boolean())) is True


# -- based_on ------------------------------------------------------------------------------------------------


def _mapping(root: Path, name: str, text: str) -> Path:
    path = root / "mappings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


BASE = """\
input:
  format: batch
  records: t
  tables:
    t: { file: t.csv, required: [A] }
settings: { mandant: "1" }
outputs:
  - name: o
    file: "o_{{ input.id }}.csv"
    format: csv
    columns:
      a: "{{ record.A }}"
"""


def test_a_mapping_based_on_another_merges_groups_and_replaces_the_rest(tmp_path: Path) -> None:
    _mapping(tmp_path, "base.yaml", BASE)
    variant = _mapping(tmp_path, "variant.yaml", "based_on: base.yaml\ninput:\n  tables:\n    t:\n"
                                                 "      query: SELECT t.A FROM T t ORDER BY t.A\n"
                                                 "settings: { lager: HL }\n")
    mapping = load_mapping(variant, "mappings/variant.yaml", tmp_path)
    table = mapping.spec.input.tables["t"]  # type: ignore[union-attr]
    assert table.file == "t.csv" and table.required == ["A"] and table.query
    assert mapping.settings == {"mandant": "1", "lager": "HL"}
    assert mapping.doc.file_of(("outputs", 0, "columns", "a")) == "mappings/base.yaml"
    assert mapping.doc.file_of(("input", "tables", "t", "query")) == "mappings/variant.yaml"


def test_based_on_problems_point_at_the_file_that_has_them(tmp_path: Path) -> None:
    _mapping(tmp_path, "base.yaml", BASE.replace("{{ record.A }}", "{{ record.A | nosuchfilter }}"))
    variant = _mapping(tmp_path, "variant.yaml", "based_on: base.yaml\nsettings: { mandant: '2' }\n")
    with pytest.raises(ConfigError) as info:
        load_mapping(variant, "mappings/variant.yaml", tmp_path)
    assert str(info.value).startswith("mappings/base.yaml:12:")
    for text, words in (("based_on: nope.yaml\n", "does not exist"), ("based_on: ../../etc/passwd\n", "outside"),
                        ("based_on: variant2.yaml\n", "itself")):
        bad = _mapping(tmp_path, "variant2.yaml", text)
        with pytest.raises(ConfigError, match=words):
            load_mapping(bad, "mappings/variant2.yaml", tmp_path)
    _mapping(tmp_path, "chain.yaml", "based_on: variant.yaml\n")
    with pytest.raises(ConfigError, match="itself based on another"):
        load_mapping(tmp_path / "mappings" / "chain.yaml", "mappings/chain.yaml", tmp_path)
