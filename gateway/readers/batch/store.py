"""The join store: the batch's related tables in a throw-away SQLite database, and its records.

Why SQLite. A full catalog has 200,000 articles with variants, warehouses, languages and
tier prices: millions of secondary rows. Held in Python dicts that is gigabytes; the
gateway must stay flat in memory however large the export is. So each secondary table
is streamed (through the CSV reader, with all its checks) into a temporary SQLite
database in the reader's folder: one table per CSV, every column TEXT, an index on the
columns that relations join on. SQLite keeps a bounded page cache and spills index
sorting to temporary files, so memory does not grow with the export; the standard
library has it, so no dependency is added.

Why lazy. Most mappings read a few of the relations, and not every relation for every
record; a relation is only looked up when a template touches the field, and then for a
whole chunk of records at once (``relations``). Related rows are records of the same kind,
so their own relations resolve the same way, to any depth, and cycles cost nothing until
followed. Relation values are plain Python lists, so Jinja's ``length``, ``selectattr``,
``map``, ``sum`` and ``groupby`` work on them.

Matching is exact text: SOL writes ``AuspraegungID`` 0 as ``0`` and ``0`` is not ``00``.
A row whose join value is empty is kept in its table but matches nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ReadError
from ...i18n import _
from ...mapping.values import MISSING, Record
from .plan import Plan, Relation
from .relations import BatchRecord, Resolver

__all__ = ["BatchDatabase", "BatchRecord", "Resolver", "Store", "Table", "check_clash"]

_INSERT_BATCH = 2000  # rows per executemany
_CACHE_KIB = 16 * 1024  # SQLite page cache per batch database


class BatchDatabase:
    """The database of one pass over a batch, kept open for the next pass over the same batch.

    The caller owns it and closes it when the input is done; the folder it lives in (inside
    the first pass's reader folder) must stay until then.
    """

    def __init__(self) -> None:
        self._kept: tuple[Path, Plan, Store, Path, str] | None = None

    def find(self, path: Path, plan: Plan) -> tuple[Store, Path, str] | None:
        """The kept store, primary table file and its shown name, if kept for this batch and plan."""
        if self._kept is None:
            return None
        kept_path, kept_plan, store, primary, shown = self._kept
        return (store, primary, shown) if kept_path == path and kept_plan == plan else None

    def hold(self, path: Path, plan: Plan, store: Store, primary: Path, shown: str) -> bool:
        """Keep ``store`` for later passes; ``False`` (and the caller closes it) when one is kept already."""
        if self._kept is not None:
            return False  # one database is kept: the first pass's
        self._kept = (path, plan, store, primary, shown)
        return True

    def close(self) -> None:
        if self._kept is not None:
            self._kept[2].close()
            self._kept = None


def check_clash(
    columns: Iterable[str], joins: Mapping[str, Relation], table: str, shown: str, line: int | None
) -> None:
    """A relation named like a column would hide it (or be hidden): refused."""
    clash = [name for name in columns if name in joins]
    if clash:
        raise ReadError(_(
            "the file has a column '{column}', and the mapping names a relation of table '{table}' the same; one "
            "would hide the other, so rename the relation in the mapping").format(column=clash[0], table=table),
            file=shown, line=line,
        )


@dataclass
class Table:
    sql: str  # the SQLite table's name: t0, t1, ...
    columns: tuple[str, ...]  # the CSV's column names; the SQLite columns are c0, c1, ... in this order
    position: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # how many rows it holds (small tables are read once per pass, see relations.py)

    def __post_init__(self) -> None:
        self.position = {name: i for i, name in enumerate(self.columns)}


class Store:
    """The temporary database: one table per loaded CSV, every column TEXT, a ``line`` column."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # A throw-away database: no journal, no syncing; a bounded cache, and sorting spills to files.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                       f"cache_size = -{_CACHE_KIB}", "locking_mode = EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.cursor = self.conn.cursor()  # one cursor for every lookup: no new object per query
        self.tables: dict[str, Table] = {}
        self.closed = False

    def load(self, name: str, rows: Iterable[Record], needed: tuple[str, ...], shown: str,
             joins: Mapping[str, Relation]) -> None:
        iterator = iter(rows)
        first = next(iterator, None)
        columns = tuple(first._fields) if first is not None else needed
        if first is not None:
            check_clash(columns, joins, name, shown, first.line)
        table = Table(f"t{len(self.tables)}", columns)
        self.tables[name] = table
        definition = ", ".join(["line INTEGER", *(f"c{i} TEXT" for i in range(len(columns)))])
        self.conn.execute(f"CREATE TABLE {table.sql} ({definition})")
        if first is None:
            return
        insert = f"INSERT INTO {table.sql} VALUES ({', '.join('?' * (len(columns) + 1))})"  # noqa: S608 - names made here
        self.conn.execute("BEGIN")
        try:
            batch: list[tuple[Any, ...]] = []
            for record in _chain(first, iterator):
                # The CSV reader gives every row the header's columns in the header's order, and
                # an empty value as MISSING (never ""): the values go in as they come.
                batch.append((record.line, *[None if v is MISSING else v for v in record._fields.values()]))
                table.rows += 1
                if len(batch) >= _INSERT_BATCH:
                    self.conn.executemany(insert, batch)
                    batch.clear()
            self.conn.executemany(insert, batch)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def index(self, name: str, keys: Iterable[tuple[str, ...]]) -> None:
        table = self.tables[name]
        for number, key in enumerate(dict.fromkeys(keys)):
            columns = ", ".join(f"c{table.position[c]}" for c in key)
            self.conn.execute(f"CREATE INDEX {table.sql}_i{number} ON {table.sql} ({columns})")

    def close(self) -> None:
        self.closed = True
        self.cursor.close()
        self.conn.close()


def _chain(first: Record, rest: Iterator[Record]) -> Iterator[Record]:
    yield first
    yield from rest
