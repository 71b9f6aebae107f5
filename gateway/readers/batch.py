"""Records from a *batch*: several CSV tables exported together, as a ZIP archive or a folder.

A Sage Office Line catalog export is not one file but a set of tables (artikel.csv,
varianten.csv, lager.csv, preise.csv, ...), delivered as ``katalog_*.zip`` or as a folder
that is complete when ``export.done`` appears in it. A mapping sees one record per row of
the *primary* table (the articles), and reaches the rows of the other tables that belong
to it as fields: ``a.varianten``, ``a.lager``, and further on ``v.lager`` for a variant or
``component.lager`` for a component of a bill of materials.

Why SQLite. A full catalog has 200,000 articles with variants, warehouses, languages and
tier prices: millions of secondary rows. Held in Python dicts that is gigabytes; the
gateway must stay flat in memory however large the export is. So each secondary table
is streamed (through the CSV reader, with all its checks) into a temporary SQLite
database in the caller's ``work_dir``: one table per CSV, every column TEXT, an index on
the columns that relations join on. SQLite keeps a bounded page cache and spills index
sorting to temporary files, so memory does not grow with the export; the standard
library has it, so no dependency is added. The primary table is not loaded: it is
streamed straight from its CSV, one row at a time, as a plain CSV input would be.

Why lazy. Most mappings read a few of the relations, and not every relation for every
record; a list is only looked up (one indexed query) when a template touches the field,
and kept with that record for its later uses. Related rows are records of the same kind,
so their own relations resolve the same way, to any depth, and cycles cost nothing
until followed. Relation values are plain Python lists, so Jinja's ``length``,
``selectattr``, ``map``, ``sum`` and ``groupby`` work on them.

Matching is exact text: SOL writes ``AuspraegungID`` 0 as ``0`` and ``0`` is not ``00``.
A row whose join value is empty is kept in its table but matches nothing.

A ZIP archive comes from outside and is not trusted. Before anything is unpacked the
archive's directory is checked: the number of members, the names (no absolute paths,
``..``, backslashes, drive letters, colons or control characters; no two names that
differ only in case), encryption, and the declared sizes and compression ratios. Members
are unpacked into ``work_dir`` under names chosen here (never the member's own name),
counting the bytes as they come out, so a header that lies about a size does not help.

Limits and behaviour worth knowing:

* the relations of a record can be read while the batch is being read (while the
  iteration runs); once the iterator is finished or closed, the database is closed and
  reading a relation that was not read before raises ``RuntimeError``;
* every call builds its own database (in a new folder inside ``work_dir``), unless it is
  given a ``BatchDatabase`` that holds the database of an earlier pass over the same batch
  with the same tables and relations: then that one is read again (a template output reads
  the catalog once more after the row outputs, and loading it twice would double the work);
* only the tables that are the primary one or the target of a relation are read; the
  others are only checked to be present when required;
* a relation field with the name of a column of its table is refused (``ReadError``), as
  one of them would silently hide the other;
* with ``group_by``, the primary table is loaded into the database as well, and its rows
  with equal values in those columns become one record, wherever they stand in the file:
  the first row's columns and relations, plus ``rows`` (all of them, in file order); the
  records come in the order of their first rows. A stock export lists an article's bins in
  any order, so grouping by neighbourhood (as for a plain CSV file) would not do;
* for a record, ``_fields``, ``to_plain()`` and ``repr()`` hold the columns only, never
  the relations;
* in a folder, symbolic links (and Windows junctions) are refused; the folder given
  itself is taken as it is. ``export.done`` is not required here: deciding when a folder
  is complete is the source's job.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import sqlite3
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ReadError
from ..mapping.values import MISSING, Record
from .csv import _check_arguments, read_csv_records

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

RATIO_FROM_BYTES = MiB  # the compression ratio is judged only for members larger than this
_CHUNK = MiB  # bytes per read when unpacking a member
_INSERT_BATCH = 2000  # rows per executemany
_CACHE_KIB = 16 * KiB  # SQLite page cache per batch database
_DIRECTORY_BYTES_PER_MEMBER = KiB  # average size of one entry in a ZIP's central directory that is accepted
_FILES_LISTED = 40  # names shown when a required table is missing

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_UNPACKABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_WINDOWS_REPARSE_POINT = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT: junctions and symbolic links


@dataclass(frozen=True)
class BatchLimits:
    """Bounds for an untrusted batch; a batch over any of them is refused with ``ReadError``."""

    max_members: int = 1000  # entries of a ZIP archive (folders included), or files and folders of a folder
    max_total_bytes: int = 2 * GiB  # all members together, unpacked
    max_member_bytes: int = 1 * GiB  # one member, unpacked
    max_ratio: float = 200  # unpacked / packed size of one member larger than RATIO_FROM_BYTES


@dataclass(frozen=True)
class TableSpec:
    """One table of a batch: its file, how to read it, and whether the batch must have it."""

    file: str  # matched case-insensitively against the base name (or the end of the path) of each member
    encoding: str = "auto"
    delimiter: str = ";"
    required: tuple[str, ...] = ()  # columns the header must have
    optional: bool = False  # a missing optional file is an empty table; a missing required file is a ReadError


@dataclass(frozen=True)
class Relation:
    """The rows of ``table`` whose columns equal the given columns of this table's row."""

    table: str
    on: tuple[tuple[str, str], ...]  # (column of this table, column of the related table), one pair per key part


class BatchRecord(Record):
    """A row of a batch table: its columns, and its relations resolved on first access.

    ``_fields`` holds the columns only, as for any ``Record``; a relation name reads as a
    list of ``BatchRecord`` (empty when nothing matches), looked up once and then kept.
    """

    __slots__ = ("_related", "_resolver", "_table")

    def __init__(self, fields: dict[str, Any], line: int | None, resolver: _Resolver, table: str) -> None:
        super().__init__(fields, line)
        self._resolver = resolver
        self._table = table
        self._related: dict[str, list[BatchRecord]] | None = None

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
        related = self._related
        if related is not None and name in related:
            return related[name]
        join = self._resolver.relation(self._table, name)
        if join is None:
            return MISSING
        rows = self._resolver.resolve(join, self._fields)
        if related is None:
            related = self._related = {}
        related[name] = rows
        return rows


class BatchDatabase:
    """The database of one pass over a batch, kept open for the next pass over the same batch.

    The caller owns it and closes it when the input is done; the folder it lives in (inside
    the first pass's ``work_dir``) must stay until then.
    """

    def __init__(self) -> None:
        self._kept: tuple[Path, _Plan, _Store, Path, str] | None = None

    def _find(self, path: Path, plan: _Plan) -> tuple[_Store, Path, str] | None:
        if self._kept is None:
            return None
        kept_path, kept_plan, store, primary, shown = self._kept
        return (store, primary, shown) if kept_path == path and kept_plan == plan else None

    def _hold(self, path: Path, plan: _Plan, store: _Store, primary: Path, shown: str) -> bool:
        if self._kept is not None:
            return False  # one database is kept: the first pass's
        self._kept = (path, plan, store, primary, shown)
        return True

    def close(self) -> None:
        if self._kept is not None:
            self._kept[2].close()
            self._kept = None


def read_batch_records(
    path: Path,
    shown_as: str,
    *,
    tables: Mapping[str, TableSpec],
    records: str,
    relations: Mapping[str, Mapping[str, Relation]],
    work_dir: Path,
    limits: BatchLimits = BatchLimits(),
    keep: BatchDatabase | None = None,
    group_by: Sequence[str] = (),
) -> Iterator[Record]:
    """Yield one ``BatchRecord`` per row of the table ``records`` of the batch at ``path``.

    ``path`` is a ZIP archive or a folder. ``tables`` names each table and its file,
    ``relations`` gives per table the fields that lead to related rows. Temporary files
    (unpacked members, the database) go into a new folder inside ``work_dir``, which the
    caller deletes. Problems with the batch raise ``ReadError`` naming ``shown_as`` and the
    member (``shown_as/member``); mistakes in the arguments raise ``ValueError`` at once.
    """
    plan = _Plan.of(tables, records, relations, tuple(group_by))
    if keep is not None:
        kept = keep._find(path, plan)
        if kept is not None:
            if plan.group_by:
                return _groups(kept[0], kept[2], plan, _Resolver(kept[0], plan))
            return _records(kept[1], kept[2], plan, _Resolver(kept[0], plan))
    return _read(path, shown_as, plan, work_dir, limits, keep)


def batch_files(path: Path, shown_as: str, limits: BatchLimits = BatchLimits()) -> list[str]:
    """The names of the files in the batch (``/``-separated, folders left out), after the same checks."""
    with _open_batch(path, shown_as, limits) as batch:
        return [member.name for member in batch.files]


# --- the plan: which tables are read, and how they join ------------------------------------------


@dataclass(frozen=True)
class _Plan:
    tables: Mapping[str, TableSpec]
    primary: str
    relations: dict[str, dict[str, Relation]]
    loaded: tuple[str, ...]  # tables that go into the database: the targets of relations
    columns: dict[str, tuple[str, ...]]  # per table: the columns its header must have
    group_by: tuple[str, ...] = ()  # columns of the primary table whose equal values make one record

    @classmethod
    def of(
        cls, tables: Mapping[str, TableSpec], primary: str, relations: Mapping[str, Mapping[str, Relation]],
        group_by: tuple[str, ...] = (),
    ) -> _Plan:
        if primary not in tables:
            raise ValueError(f"the primary table {primary!r} is not among the tables ({', '.join(tables) or 'none'})")
        for spec in tables.values():
            _check_arguments(spec.encoding, spec.delimiter)
            if not spec.file.strip("/"):
                raise ValueError("a table's file name must not be empty")
        plain: dict[str, dict[str, Relation]] = {}
        needed: dict[str, list[str]] = {name: list(spec.required) for name, spec in tables.items()}
        loaded: list[str] = []
        for source, fields in relations.items():
            if source not in tables:
                raise ValueError(f"relations are given for the table {source!r}, which is not among the tables")
            for name, relation in fields.items():
                if not name or name.startswith("_"):
                    raise ValueError(
                        f"the relation name {name!r} of table {source!r} must not be empty or start with '_'"
                    )
                if relation.table not in tables:
                    raise ValueError(f"the relation {source}.{name} leads to the table {relation.table!r}, "
                                     "which is not among the tables")
                if not relation.on or any(len(pair) != 2 or not all(pair) for pair in relation.on):
                    raise ValueError(f"the relation {source}.{name} needs one or more pairs of column names")
                for here, there in relation.on:
                    needed[source].append(here)
                    needed[relation.table].append(there)
                if relation.table not in loaded:
                    loaded.append(relation.table)
                pairs = tuple((here, there) for here, there in relation.on)
                plain.setdefault(source, {})[name] = Relation(relation.table, pairs)
        if group_by:
            if not all(group_by):
                raise ValueError("group_by needs column names")
            needed[primary].extend(group_by)
            if primary not in loaded:
                loaded.append(primary)  # sorted by SQLite, so the rows of a group need not stand together
        columns = {name: tuple(dict.fromkeys(cols)) for name, cols in needed.items()}
        return cls(tables, primary, plain, tuple(loaded), columns, group_by)


# --- reading --------------------------------------------------------------------------------------


def _read(path: Path, shown_as: str, plan: _Plan, work_dir: Path, limits: BatchLimits,
          keep: BatchDatabase | None) -> Iterator[Record]:
    work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="batch-", dir=work_dir))
    local: dict[str, tuple[Path, str]] = {}  # table -> (file to read, name to show)
    with _open_batch(path, shown_as, limits) as batch:
        found = {name: batch.find(spec.file) for name, spec in plan.tables.items()}
        for name, spec in plan.tables.items():
            if found[name] is None and not spec.optional:
                raise ReadError(
                    f"the batch has no file {spec.file} (table '{name}', required); {_listing(batch.files)}",
                    file=shown_as,
                )
        for index, name in enumerate(dict.fromkeys((plan.primary, *plan.loaded))):
            member = found[name]
            if member is not None:
                local[name] = (batch.local_path(member, work / f"table-{index:03d}.csv"), f"{shown_as}/{member.name}")
    store = _Store(work / "batch.sqlite")
    resolver = _Resolver(store, plan)
    kept = False
    try:
        for name in plan.loaded:
            spec = plan.tables[name]
            rows: Iterable[Record] = ()
            where = local.get(name)
            if where is not None:
                rows = read_csv_records(where[0], where[1], encoding=spec.encoding, delimiter=spec.delimiter,
                                        required=plan.columns[name])
            store.load(name, rows, plan.columns[name], where[1] if where else shown_as, plan.relations.get(name, {}))
        for name in plan.loaded:
            keys = [tuple(there for _, there in r.on)
                    for fields in plan.relations.values() for r in fields.values() if r.table == name]
            store.index(name, [*keys, plan.group_by] if name == plan.primary and plan.group_by else keys)
        where = local.get(plan.primary)
        if where is None:
            return
        kept = keep is not None and keep._hold(path, plan, store, *where)
        if plan.group_by:
            yield from _groups(store, where[1], plan, resolver)
        else:
            yield from _records(where[0], where[1], plan, resolver)
    finally:
        if not kept:
            store.close()


def _records(primary: Path, shown: str, plan: _Plan, resolver: _Resolver) -> Iterator[Record]:
    """The rows of the primary table as records; their relations can be read until the iteration ends."""
    spec = plan.tables[plan.primary]
    joins = plan.relations.get(plan.primary, {})
    first = True
    try:
        for record in read_csv_records(primary, shown, encoding=spec.encoding, delimiter=spec.delimiter,
                                       required=plan.columns[plan.primary]):
            fields = record._fields
            if first:
                _check_clash(fields, joins, plan.primary, shown, record.line)
                first = False
            yield BatchRecord(fields, record.line, resolver, plan.primary)
    finally:
        resolver.closed = True


def _groups(store: _Store, shown: str, plan: _Plan, resolver: _Resolver) -> Iterator[Record]:
    """The primary table's rows grouped by ``plan.group_by``, in the order of each group's first row."""
    table = store.tables[plan.primary]
    if "rows" in table.position:
        raise ReadError("the file has a column 'rows', and group_by gives each record a field 'rows' (the "
                        "grouped rows); one would hide the other, so rename the column", file=shown)
    _check_clash(table.columns, plan.relations.get(plan.primary, {}), plan.primary, shown, None)
    keys = ", ".join(f"c{table.position[c]}" for c in plan.group_by)
    columns = ", ".join(f"c{i}" for i in range(len(table.columns)))
    sql = (f"SELECT MIN(rowid) OVER (PARTITION BY {keys}) AS grp, line, {columns} "  # noqa: S608 - names made here
           f"FROM {table.sql} ORDER BY grp, rowid")
    cursor = store.conn.cursor()  # its own: relation lookups use the store's cursor meanwhile
    group: list[BatchRecord] = []
    current = None
    try:
        for row in cursor.execute(sql):
            if row[0] != current and group:
                yield _group_record(group, resolver, plan.primary)
                group = []
            current = row[0]
            fields = {name: (MISSING if value is None else value) for name, value in zip(table.columns, row[2:],
                                                                                          strict=True)}
            group.append(BatchRecord(fields, row[1], resolver, plan.primary))
        if group:
            yield _group_record(group, resolver, plan.primary)
    finally:
        cursor.close()
        resolver.closed = True


def _group_record(rows: list[BatchRecord], resolver: _Resolver, table: str) -> BatchRecord:
    first = rows[0]
    return BatchRecord({**first._fields, "rows": rows}, first.line, resolver, table)


def _check_clash(
    columns: Iterable[str], joins: Mapping[str, Relation], table: str, shown: str, line: int | None
) -> None:
    """A relation named like a column would hide it (or be hidden): refused."""
    clash = [name for name in columns if name in joins]
    if clash:
        raise ReadError(
            f"the file has a column '{clash[0]}', and the mapping names a relation of table '{table}' "
            "the same; one would hide the other, so rename the relation in the mapping",
            file=shown, line=line,
        )


def _listing(files: Sequence[_Member]) -> str:
    if not files:
        return "the batch holds no files at all"
    names = [m.name for m in files[:_FILES_LISTED]]
    more = f" and {len(files) - _FILES_LISTED} more" if len(files) > _FILES_LISTED else ""
    return f"the batch has: {', '.join(names)}{more}"


# --- the database ---------------------------------------------------------------------------------


@dataclass
class _Table:
    sql: str  # the SQLite table's name: t0, t1, ...
    columns: tuple[str, ...]  # the CSV's column names; the SQLite columns are c0, c1, ... in this order
    position: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.position = {name: i for i, name in enumerate(self.columns)}


class _Store:
    """The temporary database: one table per loaded CSV, every column TEXT, a ``line`` column."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # A throw-away database: no journal, no syncing; a bounded cache, and sorting spills to files.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                       f"cache_size = -{_CACHE_KIB}", "locking_mode = EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.cursor = self.conn.cursor()  # one cursor for every lookup: no new object per query
        self.tables: dict[str, _Table] = {}
        self.closed = False

    def load(self, name: str, rows: Iterable[Record], needed: tuple[str, ...], shown: str,
             joins: Mapping[str, Relation]) -> None:
        iterator = iter(rows)
        first = next(iterator, None)
        columns = tuple(first._fields) if first is not None else needed
        if first is not None:
            _check_clash(columns, joins, name, shown, first.line)
        table = _Table(f"t{len(self.tables)}", columns)
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


@dataclass(frozen=True)
class _Join:
    table: str  # the related table's name
    source: tuple[str, ...]  # columns of this table's row
    sql: str
    columns: tuple[str, ...]  # the related table's columns, in the order the query returns them


class _Resolver:
    """Turns a relation of a record into the list of related records, one indexed query each."""

    def __init__(self, store: _Store, plan: _Plan) -> None:
        self._store = store
        self._plan = plan
        self._joins: dict[str, dict[str, _Join]] = {}
        self.closed = False  # the pass is over: its records' relations are no longer read

    def relation(self, table: str, name: str) -> _Join | None:
        relation = self._plan.relations.get(table, {}).get(name)
        if relation is None:
            return None
        joins = self._joins.setdefault(table, {})
        join = joins.get(name)
        if join is None:
            target = self._store.tables[relation.table]
            select = ", ".join(["line", *(f"c{i}" for i in range(len(target.columns)))])
            where = " AND ".join(f"c{target.position[there]} = ?" for _, there in relation.on)
            sql = f"SELECT {select} FROM {target.sql} WHERE {where} ORDER BY rowid"  # noqa: S608 - names made here
            join = joins[name] = _Join(relation.table, tuple(here for here, _ in relation.on), sql, target.columns)
        return join

    def resolve(self, join: _Join, fields: Mapping[str, Any]) -> list[BatchRecord]:
        key: list[str] = []
        for column in join.source:
            value = fields.get(column, MISSING)
            if value is MISSING or value == "":
                return []  # an empty key matches nothing
            key.append(str(value))
        if self.closed or self._store.closed:
            raise RuntimeError(
                "the batch has been read to the end and its database is closed: relations of its records "
                "can only be read while the records are being read"
            )
        columns, table = join.columns, join.table
        found = []
        for row in self._store.cursor.execute(join.sql, key):  # read whole before the next query
            fields = dict(zip(columns, row[1:], strict=True))
            if None in row:
                for column, value in fields.items():
                    if value is None:
                        fields[column] = MISSING
            found.append(BatchRecord(fields, row[0], self, table))
        return found


# --- batches: ZIP archives and folders ------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    name: str  # relative, '/'-separated
    size: int  # unpacked bytes (declared, for a ZIP)
    info: zipfile.ZipInfo | None = None


class _Batch:
    """The members of a batch, checked; a member's content as a local file."""

    def __init__(self, shown_as: str, limits: BatchLimits, members: list[_Member]) -> None:
        self.shown_as = shown_as
        self.limits = limits
        self.files = [m for m in members if not m.name.endswith("/")]
        self.unpacked = 0
        _check_members(members, shown_as, limits)

    def find(self, file: str) -> _Member | None:
        wanted = file.strip("/").casefold()
        matches = [m for m in self.files
                   if m.name.casefold() == wanted or m.name.casefold().endswith("/" + wanted)]
        if len(matches) > 1:
            listed = ", ".join(f"'{m.name}'" for m in matches)
            raise ReadError(
                f"the batch holds {len(matches)} files named {file} ({listed}); which one is the table is unclear",
                file=self.shown_as,
            )
        return matches[0] if matches else None

    def local_path(self, member: _Member, target: Path) -> Path:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _FolderBatch(_Batch):
    def __init__(self, root: Path, shown_as: str, limits: BatchLimits) -> None:
        self.root = root
        super().__init__(shown_as, limits, _walk(root, shown_as, limits))

    def local_path(self, member: _Member, target: Path) -> Path:
        return self.root.joinpath(*member.name.split("/"))


class _ZipBatch(_Batch):
    def __init__(self, path: Path, shown_as: str, limits: BatchLimits) -> None:
        _check_directory(path, shown_as, limits)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, struct.error, UnicodeDecodeError):
            raise ReadError("the file is not a ZIP archive (or a damaged one)", file=shown_as) from None
        try:
            infos = self.zip.infolist()
            if len(infos) > limits.max_members:
                raise ReadError(_too_many(len(infos), limits), file=shown_as)
            super().__init__(shown_as, limits, [_Member(i.filename, i.file_size, i) for i in infos])
            for info in infos:
                _check_info(info, shown_as, limits)
        except BaseException:
            self.zip.close()
            raise

    def local_path(self, member: _Member, target: Path) -> Path:
        info = member.info
        assert info is not None  # noqa: S101 - every member of a ZIP batch has its entry
        shown = f"{self.shown_as}/{member.name}"
        limits = self.limits
        if info.compress_type not in _UNPACKABLE:
            raise ReadError(f"the member is packed with the compression method {info.compress_type}, "
                            "which cannot be unpacked; pack it with Deflate", file=shown)
        written = 0
        with target.open("wb") as out:
            with _damaged(shown):
                source = self.zip.open(info)
            with source:
                while True:
                    with _damaged(shown):
                        chunk = source.read(_CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    self.unpacked += len(chunk)
                    if written > limits.max_member_bytes:
                        raise ReadError(f"the member unpacks to more than {_size(limits.max_member_bytes)} "
                                        "(the most one member may have)", file=shown)
                    if self.unpacked > limits.max_total_bytes:
                        raise ReadError(f"the members unpack to more than {_size(limits.max_total_bytes)} "
                                        "together (the most a batch may have)", file=shown)
                    if written > RATIO_FROM_BYTES and written > limits.max_ratio * max(info.compress_size, 1):
                        raise ReadError(_bomb(info.compress_size, written, limits), file=shown)
                    out.write(chunk)
        return target

    def close(self) -> None:
        self.zip.close()


@contextlib.contextmanager
def _open_batch(path: Path, shown_as: str, limits: BatchLimits) -> Iterator[_Batch]:
    try:
        is_folder = path.is_dir()
        exists = is_folder or path.is_file()
    except OSError as exc:
        raise ReadError(f"the batch cannot be read: {exc}", file=shown_as) from None
    if not exists:
        raise ReadError("the batch is neither a ZIP file nor a folder (it does not exist)", file=shown_as)
    batch: _Batch = _FolderBatch(path, shown_as, limits) if is_folder else _ZipBatch(path, shown_as, limits)
    try:
        yield batch
    finally:
        batch.close()


@contextlib.contextmanager
def _damaged(shown: str) -> Iterator[None]:
    """Errors of unpacking a member become a ``ReadError``: the archive is broken, not the disk."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as exc:
        raise ReadError(f"the member cannot be unpacked, the archive is damaged: {exc}", file=shown) from None


def _walk(root: Path, shown_as: str, limits: BatchLimits) -> list[_Member]:
    """Every file and folder below ``root``, refusing links; no more than the limit allows."""
    members: list[_Member] = []
    pending = [("", root)]
    try:
        while pending:
            prefix, folder = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = prefix + entry.name
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_symlink() or getattr(info, "st_file_attributes", 0) & _WINDOWS_REPARSE_POINT:
                        raise ReadError(f"'{name}' is a symbolic link (or junction); links are refused in a batch "
                                        "folder, since they can point outside it", file=shown_as)
                    if stat.S_ISDIR(info.st_mode):
                        members.append(_Member(name + "/", 0))
                        pending.append((name + "/", Path(entry.path)))
                    elif stat.S_ISREG(info.st_mode):
                        members.append(_Member(name, info.st_size))
                    else:
                        raise ReadError(f"'{name}' is not a regular file", file=shown_as)
                    if len(members) > limits.max_members:
                        raise ReadError(_too_many(len(members), limits, at_least=True), file=shown_as)
    except OSError as exc:
        raise ReadError(f"the batch folder cannot be read: {exc}", file=shown_as) from None
    members.sort(key=lambda m: m.name)
    return members


def _check_directory(path: Path, shown_as: str, limits: BatchLimits) -> None:
    """Read the member count and directory size from the archive's end record, before ``zipfile`` loads it all."""
    try:
        with path.open("rb") as raw:
            size = raw.seek(0, os.SEEK_END)
            start = max(0, size - _EOCD.size - 0xFFFF)
            raw.seek(start)
            tail = raw.read()
            at = tail.rfind(_EOCD_SIGNATURE)
            if at < 0 or len(tail) - at < _EOCD.size:
                raise ReadError("the file is not a ZIP archive", file=shown_as)
            _, _, _, _, entries, directory_size, _, _ = _EOCD.unpack_from(tail, at)
            if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and at >= _ZIP64_LOCATOR.size:
                signature, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
                if signature == _ZIP64_LOCATOR_SIGNATURE and offset + _ZIP64_EOCD.size <= size:
                    raw.seek(offset)
                    record = raw.read(_ZIP64_EOCD.size)
                    fields = _ZIP64_EOCD.unpack(record)
                    if fields[0] == _ZIP64_EOCD_SIGNATURE:
                        entries, directory_size = fields[7], fields[8]
    except OSError as exc:
        raise ReadError(f"the file cannot be read: {exc}", file=shown_as) from None
    if entries > limits.max_members:
        raise ReadError(_too_many(entries, limits), file=shown_as)
    if directory_size > limits.max_members * _DIRECTORY_BYTES_PER_MEMBER + 64 * KiB:
        raise ReadError(
            f"the archive's table of contents is {_size(directory_size)}, far more than {entries} members need; "
            "the archive is refused as unsafe", file=shown_as,
        )


def _check_members(members: list[_Member], shown_as: str, limits: BatchLimits) -> None:
    seen: dict[str, str] = {}
    total = 0
    for member in members:
        problem = _unsafe_name(member.name)
        if problem:
            raise ReadError(f"the batch holds a member with an unsafe name, {member.name!r}: {problem}",
                            file=shown_as)
        folded = member.name.rstrip("/").casefold()
        if folded in seen:
            same = "the same name" if seen[folded] == member.name else "names that differ only in case"
            raise ReadError(f"the batch holds two members with {same}: {seen[folded]!r} and {member.name!r}",
                            file=shown_as)
        seen[folded] = member.name
        shown = f"{shown_as}/{member.name}"
        if member.size > limits.max_member_bytes:
            raise ReadError(f"the member is {_size(member.size)} unpacked, more than the "
                            f"{_size(limits.max_member_bytes)} one member may have", file=shown)
        total += member.size
        if total > limits.max_total_bytes:
            raise ReadError(f"the members are more than {_size(limits.max_total_bytes)} unpacked together, "
                            "more than a batch may have", file=shown_as)


def _check_info(info: zipfile.ZipInfo, shown_as: str, limits: BatchLimits) -> None:
    shown = f"{shown_as}/{info.filename}"
    if info.flag_bits & 0x1:
        raise ReadError("the member is encrypted (password-protected); the gateway reads only unencrypted "
                        "archives", file=shown)
    if info.file_size > RATIO_FROM_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise ReadError(_bomb(info.compress_size, info.file_size, limits), file=shown)


def _unsafe_name(name: str) -> str | None:
    if not name or name == "/":
        return "the name is empty"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "it contains control characters"
    if "\\" in name:
        return "it contains a backslash"
    if name.startswith("/"):
        return "it is an absolute path"
    if ":" in name:
        return "it contains ':' (a drive letter or a Windows stream name)"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "it contains '..' (a way out of the folder it is unpacked into)"
    if "" in parts or "." in parts:
        return "it has an empty or '.' folder part"
    return None


def _too_many(count: int, limits: BatchLimits, at_least: bool = False) -> str:
    amount = f"more than {limits.max_members}" if at_least else f"{count}"
    return (f"the batch has {amount} members (files and folders), and at most {limits.max_members} are allowed; "
            "is it really a catalog export?")


def _bomb(packed: int, unpacked: int, limits: BatchLimits) -> str:
    return (f"the member unpacks from {_size(packed)} to {_size(unpacked)} or more, a ratio over "
            f"{limits.max_ratio:g} to 1; no real export packs that well, so the archive is refused as a zip bomb")


def _size(count: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{count} bytes"


def copy_batch_file(path: Path, shown_as: str, name: str, target: Path,
                    limits: BatchLimits = BatchLimits()) -> None:
    """Copy the batch's file ``name`` (found like a table: by its name, case does not matter) to ``target``.

    For outputs that pass files of a batch on (PDF data sheets, invoices): the same member
    checks and unpacking limits as for tables apply.
    """
    with _open_batch(path, shown_as, limits) as batch:
        member = batch.find(name)
        if member is None:
            raise ReadError(f"the batch has no file named {name!r}; it has: {_listing(batch.files)}",
                            file=shown_as)
        if isinstance(batch, _FolderBatch):
            shutil.copyfile(batch.local_path(member, target), target)
        else:
            batch.local_path(member, target)
    with open(target, "rb+") as fh:  # staged outputs are on disk before the journal commits them
        os.fsync(fh.fileno())

