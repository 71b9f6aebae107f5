"""A batch's records and their relations, served from the join store many records at a time.

A catalog article reads a dozen relations (its variants, prices, stock, texts, group …) and
each variant two more. Looked up one record at a time, that is a query, a cursor round trip
and a list built per relation per record. Two things make it cheaper, with the same results:

- **Chunks.** Records are made in *cohorts*: the primary table's rows in chunks of
  ``CHUNK_RECORDS``, and the rows one relation query brings for a chunk. When a template
  first reads a relation of one record, it is read for every record of the cohort at once:
  one query per relation per chunk (the keys in a ``VALUES`` list joined to the table's
  index), grouped by key in memory. The next records of the chunk find their lists ready.
  Memory holds one chunk's related rows, whatever the size of the batch.
- **Small tables once.** A table of at most ``SMALL_TABLE_ROWS`` rows (article groups) is
  read once per pass into memory, grouped by each relation's key; its rows are shared by all
  records, so a value that depends only on such rows (the category path of a group, walked
  through ``vater``) is looked up once for the whole batch, not once per article. A shared
  row keeps relations into other small tables; relations into large tables are read for the
  rows of its key together and kept only in a bounded cache (``RECENT_KEYS``), so that no
  large table ends up in memory through a shared row.

What a record sees is unchanged: a relation is the list of its related rows in file order,
empty when its key is empty or nothing matches; related rows are records of the same kind;
a relation read for the first time after the pass has ended raises ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...mapping.values import MISSING, Record
from .plan import Plan

CHUNK_RECORDS = 256  # primary records whose relations are read together
SMALL_TABLE_ROWS = 10_000  # tables at most this long are read once per pass and shared
RECENT_KEYS = 4_096  # relations of shared rows into large tables kept for at most this many keys
_KEYS_PER_QUERY = 400  # keys in one VALUES list (SQLite allows 32,766 parameters)


class Cohort:
    """Records made together, whose relations are read together: the columns of each, and what was read.

    A *shared* cohort holds rows of a small table that the whole pass shares (the rows of one
    key); it keeps nothing it reads from large tables (see ``Resolver.rows``).
    """

    __slots__ = ("found", "members", "shared")

    def __init__(self, shared: bool = False) -> None:
        self.members: list[Mapping[str, Any]] = []  # each record's columns (not the records: no cycles)
        self.found: dict[int, dict[tuple[str, ...], list[BatchRecord]]] = {}  # id(join) -> key -> rows
        self.shared = shared


class BatchRecord(Record):
    """A row of a batch table: its columns, and its relations resolved on first access.

    ``_fields`` holds the columns only, as for any ``Record``; a relation name reads as a
    list of ``BatchRecord`` (empty when nothing matches), looked up once and then kept.
    """

    __slots__ = ("_cohort", "_related", "_resolver", "_table")

    def __init__(self, fields: Mapping[str, Any], line: int | None, resolver: Resolver, table: str,
                 cohort: Cohort | None = None) -> None:
        super().__init__(fields, line)
        self._resolver = resolver
        self._table = table
        self._related: dict[str, list[BatchRecord]] | None = None
        self._cohort = cohort

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._value(name)

    def __getitem__(self, name: str) -> Any:
        return self._value(name)

    def __contains__(self, name: str) -> bool:
        return name in self._fields or self._resolver.relation(self._table, name) is not None

    def __repr__(self) -> str:
        return f"BatchRecord({self._table!r}, {self._fields!r})"

    def _value(self, name: str) -> Any:
        value = self._fields.get(name, MISSING)
        if value is not MISSING or type(name) is not str:
            return value  # a column's value (no relation has a column's name: that is refused)
        return self._relation(name)

    def _relation(self, name: str) -> Any:
        """The relation ``name`` (or ``MISSING`` when the table has none of that name)."""
        related = self._related
        if related is not None and name in related:
            return related[name]
        resolver = self._resolver
        join = resolver.relation(self._table, name)
        if join is None:
            return MISSING
        cohort = self._cohort
        rows = resolver.rows(join, self._fields, cohort)
        if cohort is None or not cohort.shared or join.small:  # a shared row keeps only what stays small
            if related is None:
                related = self._related = {}
            related[name] = rows
        return rows


@dataclass(eq=False)
class Join:
    table: str  # the related table's name
    source: tuple[str, ...]  # columns of this table's row
    target: tuple[int, ...]  # their partners' positions among the related table's columns
    sql_table: str
    columns: tuple[str, ...]  # the related table's columns, in the order the queries return them
    small: bool
    index: dict[tuple[str, ...], list[BatchRecord]] | None = field(default=None, repr=False)  # a small table's rows

    def key(self, fields: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The record's key for this relation, or ``None`` when a part of it is empty (it matches nothing)."""
        parts = []
        for column in self.source:
            value = fields.get(column, MISSING)
            if value is MISSING or value == "":
                return None
            parts.append(str(value))
        return tuple(parts)


class Resolver:
    """Turns a relation of a record into the list of related records (see the module docstring)."""

    def __init__(self, store: Any, plan: Plan) -> None:
        self._store = store
        self._plan = plan
        self._joins: dict[tuple[str, str], Join | None] = {}
        self._recent: dict[tuple[int, tuple[str, ...]], list[BatchRecord]] = {}  # shared rows' large relations
        self.closed = False  # the pass is over: its records' relations are no longer read

    def relation(self, table: str, name: str) -> Join | None:
        try:
            return self._joins[(table, name)]
        except KeyError:
            pass
        relation = self._plan.relations.get(table, {}).get(name)
        join = None
        if relation is not None:
            target = self._store.tables[relation.table]
            join = Join(relation.table, tuple(here for here, _ in relation.on),
                        tuple(target.position[there] for _, there in relation.on), target.sql, target.columns,
                        small=target.rows <= SMALL_TABLE_ROWS)
        self._joins[(table, name)] = join
        return join

    def _check_open(self) -> None:
        if self.closed or self._store.closed:
            raise RuntimeError(
                "the batch has been read to the end and its database is closed: relations of its records "
                "can only be read while the records are being read"
            )

    def rows(self, join: Join, fields: Mapping[str, Any], cohort: Cohort | None) -> list[BatchRecord]:
        key = join.key(fields)
        if key is None:
            return []  # an empty key matches nothing
        self._check_open()
        if join.small:
            if join.index is None:
                join.index = self._whole(join)
            return join.index.get(key) or []
        if cohort is None:
            return self._fetch(join, [key]).get(key) or []
        if cohort.shared:  # rows of a small table, shared by the pass: see the module docstring
            recent = self._recent.get((id(join), key))
            if recent is None:
                keys = list(dict.fromkeys(k for k in map(join.key, cohort.members) if k is not None))
                if len(self._recent) + len(keys) > RECENT_KEYS:
                    self._recent.clear()
                for found_key, rows in self._fetch(join, keys).items():
                    self._recent[(id(join), found_key)] = rows
                recent = self._recent.get((id(join), key)) or []
            return recent
        found = cohort.found.get(id(join))
        if found is None:
            keys = list(dict.fromkeys(k for k in map(join.key, cohort.members) if k is not None))
            found = cohort.found[id(join)] = self._fetch(join, keys)
        return found.get(key) or []

    def _select(self, join: Join) -> str:
        return ", ".join(["t.rowid", "t.line", *(f"t.c{i}" for i in range(len(join.columns)))])

    def _fetch(self, join: Join, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], list[BatchRecord]]:
        """The rows of ``join``'s table for each key, in file order, as one new cohort."""
        cohort = Cohort()
        found: dict[tuple[str, ...], list[BatchRecord]] = {}
        width = len(join.target)
        step = max(1, _KEYS_PER_QUERY // width)
        on = " AND ".join(f"t.c{position} = k.k{i}" for i, position in enumerate(join.target))
        names = ", ".join(f"k{i}" for i in range(width))
        for start in range(0, len(keys), step):
            part = keys[start:start + step]
            values = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(part))
            # CROSS JOIN keeps the keys as the outer loop, so the table is searched through its index
            sql = (f"WITH k({names}) AS (VALUES {values}) "  # noqa: S608 - names and placeholders made here
                   f"SELECT {self._select(join)} FROM k CROSS JOIN {join.sql_table} AS t ON {on}")
            params = [value for key in part for value in key]
            self._collect(join, self._store.conn.execute(sql, params), cohort, found)
        return found

    def _whole(self, join: Join) -> dict[tuple[str, ...], list[BatchRecord]]:
        """A small table's rows grouped by this relation's key, shared by the pass (a cohort per key)."""
        found: dict[tuple[str, ...], list[BatchRecord]] = {}
        sql = f"SELECT {self._select(join)} FROM {join.sql_table} AS t"  # noqa: S608 - names made here
        self._collect(join, self._store.conn.execute(sql), None, found)
        for rows in found.values():
            cohort = Cohort(shared=True)
            for record in rows:
                record._cohort = cohort
                cohort.members.append(record._fields)
        return found

    def _collect(self, join: Join, rows: Iterable[tuple[Any, ...]], cohort: Cohort | None,
                 found: dict[tuple[str, ...], list[BatchRecord]]) -> None:
        columns, table, target = join.columns, join.table, join.target
        order: dict[tuple[str, ...], list[tuple[int, BatchRecord]]] = {}
        for row in list(rows):  # read whole before the next query
            values = row[2:]
            key = tuple(values[i] for i in target)
            if None in key:
                continue  # an empty join value matches nothing
            if None in values:
                fields = {c: (MISSING if v is None else v) for c, v in zip(columns, values, strict=True)}
            else:
                fields = dict(zip(columns, values, strict=True))
            record = BatchRecord(fields, row[1], self, table, cohort)
            if cohort is not None:
                cohort.members.append(fields)
            order.setdefault(key, []).append((row[0], record))
        for key, entries in order.items():
            if any(entries[i][0] > entries[i + 1][0] for i in range(len(entries) - 1)):
                entries.sort(key=lambda entry: entry[0])  # file order, whatever order the index gave
            found[key] = [record for _, record in entries]

