"""A run's tables, read inside one transaction, streamed into the files of a batch folder.

Why files, not straight into the batch's SQLite store: the folder then *is* the input, like an
export SOL wrote. The engine hashes it (an unchanged catalog is recognised as a duplicate),
registers it in the journal, converts it with the mapping written for the export, archives it,
and after a crash finds it in the work folder and finishes it, all exactly as for a file batch;
``gateway preview`` and ``gateway retry`` work on it too. The cost is writing the tables once
more as text, which is small beside loading them into the batch store (bench/sql_catalog.py).

Rows come from a server-side cursor, ``chunk_rows`` at a time (``stream_results``, and the
result's own ``yield_per`` and ``partitions(chunk_rows)``), and go straight to the file: memory
does not grow with the size of a table (tests/test_sql_streaming.py).
Each file is flushed to disk before the folder is renamed into place, so a snapshot in the
work folder is always whole.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .values import to_text
from .watermark import later, normalised

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: How SQLAlchemy's ``text()`` finds parameters (``:name``, not ``::cast`` nor ``\\:``): the same rule here.
PARAMETER = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)


def parameters(query: str) -> list[str]:
    """The ``:names`` a query takes, in order of first use."""
    return list(dict.fromkeys(PARAMETER.findall(query)))


@dataclass
class TableRead:
    rows: int
    high: Any  # the highest watermark value among the rows (None without a watermark, or no rows)


def write_table(
    conn: Connection,
    query: str,
    values: dict[str, Any],
    target: Path,
    names: list[str],
    *,
    chunk_rows: int,
    watermark: tuple[str, Any] | None = None,
    track: str | None = None,
) -> TableRead:
    """Run ``query`` and write its rows to ``target`` as a batch table (UTF-8, ``;``, a header of ``names``).

    ``values`` are the parameters. ``watermark`` is (type, value to read after) when the input has
    one: ``:watermark`` is bound with its type. ``track`` names the column whose highest value is returned.
    """
    from sqlalchemy import bindparam, text

    statement = text(query)
    used = parameters(query)
    params = {name: values[name] for name in used if name in values}
    kind = watermark[0] if watermark is not None else "datetime"
    if watermark is not None and "watermark" in used:
        from .watermark import bind_type

        statement = statement.bindparams(bindparam("watermark", type_=bind_type(kind)))
        params["watermark"] = watermark[1]
    watermark_at: int | None = None
    if track is not None:
        folded = [n.casefold() for n in names]
        watermark_at = folded.index(track.casefold()) if track.casefold() in folded else None
    # ``yield_per`` as an execution option is not applied to a ``text()`` statement's result (SQLAlchemy 2.1
    # leaves it out for text and DML), and ``partitions()`` without a size then hands over every row at once:
    # the server-side cursor is fetched whole into memory. The result is told its chunk size itself.
    result = conn.execute(statement, params, execution_options={"stream_results": True, "yield_per": chunk_rows})
    result = result.yield_per(chunk_rows)
    header = _header(names, list(result.keys()))
    rows = 0
    high: Any = None
    with open(target, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        for part in result.partitions(chunk_rows):
            writer.writerows([to_text(v) for v in row] for row in part)
            rows += len(part)
            if watermark_at is not None:
                for row in part:
                    high = later(kind, high, normalised(kind, row[watermark_at]))
        fh.flush()
        os.fsync(fh.fileno())
    return TableRead(rows, high)


def _header(names: list[str], keys: list[str]) -> list[str]:
    """The query's own spelling of its columns (``Artikelnummer``), not the database's (PostgreSQL: ``artikelnummer``).

    ``names`` come from the query's text; should they not match what the database gave (a select list
    the text reader could not follow), the database's names are used, in the query's spelling where
    one matches without regard to case.
    """
    if len(names) == len(keys) and all(n.casefold() == str(k).casefold() for n, k in zip(names, keys, strict=True)):
        return names
    spelled = {n.casefold(): n for n in names}
    return [spelled.get(str(k).casefold(), str(k)) for k in keys]
