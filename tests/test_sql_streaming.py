"""A table is read a chunk at a time: the memory of a read does not grow with the number of rows.

SQLAlchemy applies ``yield_per`` given as an execution option only to compiled statements, not to
a ``text()`` query's result; without a chunk size of its own the result handed over the whole
server-side cursor at once (a 200,000-article catalog took 1.2 GB in the engine). The read here
brings 20,000 rows of 1,000 characters (about 20 MB as text, several times that as Python
objects) through ``write_table`` in chunks of 200 rows and must stay far below that.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from postgres import Postgres

from gateway.sql.database import Database, DatabaseConfig
from gateway.sql.snapshot import write_table

ROWS = 20_000
WIDTH = 1_000
CHUNK = 200
BOUND = 8 * 1024 * 1024  # all rows at once would be > 20 MB of strings alone; one chunk is ~0.2 MB

QUERIES = {
    "postgresql": "SELECT g AS Nummer, repeat('x', :width) AS Text FROM generate_series(1, :rows) AS g",
    "sqlite": "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :rows) "
              "SELECT g AS Nummer, replace(hex(zeroblob(:width / 2)), '0', 'x') AS Text FROM s",
}


def _read(url: str, query: str, target: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("GW_TEST_STREAM_URL", url)
    database = Database("sol", DatabaseConfig(url_env="GW_TEST_STREAM_URL", chunk_rows=CHUNK))
    try:
        with database.reading("reading") as conn:
            conn.exec_driver_sql("SELECT 1").all()  # the connection and the dialect are set up outside the measurement
            tracemalloc.start()
            try:
                read = write_table(conn, query, {"rows": ROWS, "width": WIDTH}, target, ["Nummer", "Text"],
                                   chunk_rows=database.config.chunk_rows)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        database.close()
    assert read.rows == ROWS
    with target.open(encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == ROWS + 1
    return peak


def test_a_postgresql_table_is_read_a_chunk_at_a_time(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres.fresh_database("stream")
    peak = _read(postgres.url("stream"), QUERIES["postgresql"], tmp_path / "rows.csv", monkeypatch)
    assert peak < BOUND, f"reading {ROWS} rows took {peak / 2**20:.1f} MiB at its peak"


def test_a_sqlite_table_is_read_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _read(f"sqlite:///{tmp_path / 'sol.db'}", QUERIES["sqlite"], tmp_path / "rows.csv", monkeypatch)
    assert peak < BOUND, f"reading {ROWS} rows took {peak / 2**20:.1f} MiB at its peak"
