"""The records of a batch: one per row of its primary table (or per group of rows), with relations.

The primary table is not loaded into the database: it is streamed straight from its CSV,
one row at a time, as a plain CSV input would be. With ``group_by`` it is loaded as well,
and its rows with equal values in those columns become one record, wherever they stand in
the file: the first row's columns and relations, plus ``rows`` (all of them, in file
order); the records come in the order of their first rows. A stock export lists an
article's bins in any order, so grouping by neighbourhood (as for a plain CSV file) would
not do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ReadError
from ...i18n import _
from ...mapping.values import MISSING, Record
from ..csv import read_csv_records
from .archive import LIMITS, BatchLimits, listing, open_batch
from .plan import Plan, Relation, TableSpec
from .relations import CHUNK_RECORDS, BatchRecord, Cohort, Resolver
from .store import BatchDatabase, Store, check_clash

if TYPE_CHECKING:
    from ...mapping.model import BatchInput
    from ..registry import ReadRoom


def read(source: Path, shown_as: str, spec: BatchInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: batch`` (see ``registry.Reader``)."""
    if room.folder is None:
        raise ValueError("the batch reader needs a folder of its own (ReadRoom.folder)")
    tables = {name: TableSpec(file=spec.file_of(name), encoding=t.encoding, delimiter=t.delimiter,
                              required=tuple(t.required), optional=t.optional)
              for name, t in spec.tables.items()}
    relations = {table: {field: Relation(r.table, tuple(r.on.items())) for field, r in fields.items()}
                 for table, fields in spec.relations.items()}
    return read_batch_records(source, shown_as, tables=tables, records=spec.records, relations=relations,
                              work_dir=room.folder, keep=room.database, group_by=spec.group_by)


def read_batch_records(
    path: Path,
    shown_as: str,
    *,
    tables: Mapping[str, TableSpec],
    records: str,
    relations: Mapping[str, Mapping[str, Relation]],
    work_dir: Path,
    limits: BatchLimits = LIMITS,
    keep: BatchDatabase | None = None,
    group_by: Sequence[str] = (),
) -> Iterator[Record]:
    """Yield one ``BatchRecord`` per row of the table ``records`` of the batch at ``path``.

    ``path`` is a ZIP archive or a folder. ``tables`` names each table and its file,
    ``relations`` gives per table the fields that lead to related rows. Temporary files
    (unpacked members, the database) go into a new folder inside ``work_dir``, which the
    caller deletes. Problems with the batch raise ``ReadError`` naming ``shown_as`` and the
    member (``shown_as/member``); mistakes in the arguments raise ``ValueError`` at once.

    Every call builds its own database, unless ``keep`` holds the database of an earlier
    pass over the same batch with the same tables and relations: then that one is read
    again. The relations of a record can be read while the records are being read; once
    the iterator is finished or closed, reading a relation that was not read before raises
    ``RuntimeError``. Only the tables that are the primary one or the target of a relation
    are read; the others are only checked to be present when required. A relation named
    like a column of its table is refused (``ReadError``), as one would hide the other. For
    a record, ``_fields``, ``to_plain()`` and ``repr()`` hold the columns only.
    """
    plan = Plan.of(tables, records, relations, tuple(group_by))
    if keep is not None:
        kept = keep.find(path, plan)
        if kept is not None:
            if plan.group_by:
                return _groups(kept[0], kept[2], plan, Resolver(kept[0], plan))
            return _records(kept[1], kept[2], plan, Resolver(kept[0], plan))
    return _read(path, shown_as, plan, work_dir, limits, keep)


def _read(path: Path, shown_as: str, plan: Plan, work_dir: Path, limits: BatchLimits,
          keep: BatchDatabase | None) -> Iterator[Record]:
    work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="batch-", dir=work_dir))
    local: dict[str, tuple[Path, str]] = {}  # table -> (file to read, name to show)
    with open_batch(path, shown_as, limits) as batch:
        found = {name: batch.find(spec.file) for name, spec in plan.tables.items()}
        for name, spec in plan.tables.items():
            if found[name] is None and not spec.optional:
                raise ReadError(_("the batch has no file {file} (table '{table}', required); {files}").format(
                    file=spec.file, table=name, files=listing(batch.files)), file=shown_as)
        for index, name in enumerate(dict.fromkeys((plan.primary, *plan.loaded))):
            member = found[name]
            if member is not None:
                local[name] = (batch.local_path(member, work / f"table-{index:03d}.csv"), f"{shown_as}/{member.name}")
    store = Store(work / "batch.sqlite")
    resolver = Resolver(store, plan)
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
            store.index(name, plan.index_keys(name))
        where = local.get(plan.primary)
        if where is None:
            return
        kept = keep is not None and keep.hold(path, plan, store, *where)
        if plan.group_by:
            yield from _groups(store, where[1], plan, resolver)
        else:
            yield from _records(where[0], where[1], plan, resolver)
    finally:
        if not kept:
            store.close()


def _records(primary: Path, shown: str, plan: Plan, resolver: Resolver) -> Iterator[Record]:
    """The rows of the primary table as records; their relations can be read until the iteration ends."""
    spec = plan.tables[plan.primary]
    joins = plan.relations.get(plan.primary, {})
    first = True

    def rows() -> Iterator[tuple[Mapping[str, object], int | None]]:
        nonlocal first
        for record in read_csv_records(primary, shown, encoding=spec.encoding, delimiter=spec.delimiter,
                                       required=plan.columns[plan.primary]):
            fields = record._fields
            if first:
                check_clash(fields, joins, plan.primary, shown, record.line)
                first = False
            yield fields, record.line

    try:
        yield from _in_cohorts(rows(), resolver, plan.primary)
    finally:
        resolver.closed = True


def _in_cohorts(rows: Iterator[tuple[Mapping[str, object], int | None]], resolver: Resolver,
                table: str) -> Iterator[BatchRecord]:
    """Records made ``CHUNK_RECORDS`` at a time, each chunk a cohort whose relations are read together.

    A chunk is read ahead of its records; when reading fails inside it (a broken line), the
    records before the failure are still given first, so that errors come in file order.
    """
    while True:
        cohort = Cohort()
        chunk: list[BatchRecord] = []
        failure: BaseException | None = None
        try:
            for fields, line in rows:
                chunk.append(BatchRecord(fields, line, resolver, table, cohort))
                cohort.members.append(fields)
                if len(chunk) >= CHUNK_RECORDS:
                    break
        except Exception as exc:  # raised again after the records read before it
            failure = exc
        yield from chunk
        if failure is not None:
            raise failure
        if len(chunk) < CHUNK_RECORDS:
            return


def _groups(store: Store, shown: str, plan: Plan, resolver: Resolver) -> Iterator[Record]:
    """The primary table's rows grouped by ``plan.group_by``, in the order of each group's first row."""
    table = store.tables[plan.primary]
    if "rows" in table.position:
        raise ReadError(_("the file has a column 'rows', and group_by gives each record a field 'rows' (the "
                          "grouped rows); one would hide the other, so rename the column"), file=shown)
    check_clash(table.columns, plan.relations.get(plan.primary, {}), plan.primary, shown, None)
    keys = ", ".join(f"c{table.position[c]}" for c in plan.group_by)
    columns = ", ".join(f"c{i}" for i in range(len(table.columns)))
    sql = (f"SELECT MIN(rowid) OVER (PARTITION BY {keys}) AS grp, line, {columns} "  # noqa: S608 - names made here
           f"FROM {table.sql} ORDER BY grp, rowid")
    cursor = store.conn.cursor()  # its own: relation lookups use other cursors meanwhile
    group: list[BatchRecord] = []
    current = None
    cohort = Cohort()
    made = 0
    try:
        for row in cursor.execute(sql):
            if row[0] != current and group:
                yield _group_record(group, resolver, plan.primary, cohort)
                group = []
                made += 1
                if made % CHUNK_RECORDS == 0:
                    cohort = Cohort()
            current = row[0]
            fields = {name: (MISSING if value is None else value) for name, value in zip(table.columns, row[2:],
                                                                                          strict=True)}
            group.append(BatchRecord(fields, row[1], resolver, plan.primary, cohort))
            cohort.members.append(fields)
        if group:
            yield _group_record(group, resolver, plan.primary, cohort)
    finally:
        cursor.close()
        resolver.closed = True


def _group_record(rows: list[BatchRecord], resolver: Resolver, table: str, cohort: Cohort) -> BatchRecord:
    first = rows[0]
    return BatchRecord({**first._fields, "rows": rows}, first.line, resolver, table, cohort)
