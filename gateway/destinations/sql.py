"""A staging table of the SOL database as a destination (the ``sql`` kind): an output's rows, once.

``outbox: {sql: sol, table: GatewayAuftragImport}`` inserts the rows of each CSV output into the
staging table, each header column into the table's column of that name, from where an SOL-side job
turns them into documents (docs/sol-database.md). The order import the flows write as a file is
the same rows, so a flow switches from file to table in gateway.yaml alone.

Once per output, through crashes and lost answers (DESIGN.md, guarantee 7): the rows and the
output's delivery key go in *one* transaction, the key into the gateway's key table (whose
primary key it is). So

* a crash before the commit leaves nothing: the database rolls the transaction back;
* a commit whose answer was lost is found by its key (``status``) and not inserted again;
* two gateways delivering the same key at once: the second key insert fails on the primary key,
  its transaction rolls back, and it finds the key there.

Values are converted to each column's type before the outputs are committed (``validate``):
a value the table cannot hold (a text too long, ``abc`` for a number) quarantines the input with
the row and column named, rather than leaving an output that could never be delivered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..crashpoints import crashpoint
from ..errors import DeliveryError, InputError
from ..i18n import _
from ..kinds import CheckContext, Kind, KindConfig, Parts, Problem
from .base import CallLog, Delivered, Delivery, Destination, Status

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..config import Installation
    from ..sql.database import Database
    from ..sql.staging import StagingTables

INSERT_ROWS = 1000  # rows per executemany


class SqlDestinationConfig(KindConfig):
    """A staging table of a database under ``databases``."""

    kind = "sql"

    sql: str  # the database's name under ``databases``
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # one of the database's staging_tables
    key_column: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # gets each row's key
    delimiter: str = Field(default=";", min_length=1, max_length=1)  # of the CSV outputs sent here


class SqlDestination(Destination):
    kind = "sql"

    def __init__(self, database: Database, table: str, *, key_column: str | None = None,
                 delimiter: str = ";", key_table: str | None = None) -> None:
        self.database = database
        self.table = table
        self.key_column = key_column
        self.delimiter = delimiter
        self.key_table = key_table or database.config.key_table
        self._tables: StagingTables | None = None

    def describe(self) -> str:
        return _("table {table} of {database}").format(table=self.table, database=self.database.describe())

    # -- the tables --------------------------------------------------------------------------

    def _find(self, conn: Connection) -> StagingTables:
        if self._tables is None:
            from ..sql.staging import find_tables

            tables = find_tables(conn, self.table, self.key_table, self.database.describe())
            if self.key_column is not None and tables.column(self.key_column) is None:
                raise DeliveryError(_("{table} has no column {column} (key_column in gateway.yaml)").format(
                    table=self.describe(), column=self.key_column))
            self._tables = tables
        return self._tables

    def _rows(self, item: Delivery, tables: StagingTables) -> Iterator[tuple[int, dict[str, Any]]]:
        """The output's rows as column values of the staging table; ``InputError`` naming row and column."""
        from ..readers.csv import read_csv_records
        from ..sql.values import Unfit, converter

        if not item.name.lower().endswith(".csv"):
            raise InputError(_("the output {name} is not a CSV file: only CSV outputs (format: csv) can go into the "
                               "table {table}").format(name=item.name, table=self.table), file=item.name)
        columns = {c.name: c for c in tables.staging.columns}
        spelled: dict[str, tuple[str, Any]] = {}  # output column → (table column, its conversion)
        for record in read_csv_records(item.staged, item.name, delimiter=self.delimiter):
            values: dict[str, Any] = {}
            for name, text in record._fields.items():
                known = spelled.get(name)
                if known is None:
                    column = tables.column(name)
                    if column is None:
                        listed = ", ".join(str(c) for c in columns)
                        raise InputError(
                            _("the table {table} has no column '{column}' (its columns: {columns})").format(
                                table=self.table, column=name, columns=listed),
                            file=item.name, line=record.line, field=name)
                    known = spelled[name] = (column, converter(columns[column]))
                try:
                    values[known[0]] = known[1](text if isinstance(text, str) else "")
                except Unfit as exc:
                    raise InputError(_("{problem} (column {column} of the table {table})").format(
                        problem=exc, column=known[0], table=self.table), file=item.name, line=record.line,
                        field=name) from None
            if len(values) < len(spelled):  # a short row: its missing values are empty
                for column, convert in spelled.values():
                    if column not in values:
                        values[column] = convert("")
            yield record.line or 0, values

    # -- the contract --------------------------------------------------------------------------

    def validate(self, item: Delivery) -> None:
        """Every value converted to its column's type before the commit (see the module docstring)."""
        doing = _("checking {name} against {table}").format(name=item.name, table=self.table)
        with self.database.connect(doing) as conn:
            tables = self._find(conn)
        for _row in self._rows(item, tables):
            pass

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        with self.database.connect(_("writing {name} into {table}").format(name=item.name, table=self.table)) as conn:
            tables = self._find(conn)
            keys = tables.keys
            key_col = keys.c[tables.key_column("DeliveryKey")]
            found = conn.execute(select(key_col).where(key_col == item.key)).first()
            conn.rollback()
            if found is not None:
                return self._location(conn, item)
            try:
                with conn.begin():
                    rows = self._insert(conn, item, tables)
                    crashpoint("sql-inserted")  # rows in, key not yet: a crash here must leave nothing
                    conn.execute(insert(keys).values({
                        tables.key_column("DeliveryKey"): item.key,
                        tables.key_column("StagingTable"): tables.staging.name,
                        tables.key_column("RowsInserted"): rows,
                        tables.key_column("Flow"): item.flow,
                        tables.key_column("InputId"): item.input_id,
                        tables.key_column("OutputName"): item.output,
                        tables.key_column("DeliveredAt"): dt.datetime.now(),
                    }))
            except IntegrityError:
                # Another process committed the same key first (its transaction won the primary key).
                conn.rollback()
                if conn.execute(select(key_col).where(key_col == item.key)).first() is None:
                    raise
            crashpoint("sql-committed")  # committed, the answer not yet recorded in the journal
            return self._location(conn, item)

    def _insert(self, conn: Connection, item: Delivery, tables: StagingTables) -> int:
        from sqlalchemy import insert

        key = tables.column(self.key_column) if self.key_column else None
        statement = insert(tables.staging)
        count = 0
        chunk: list[dict[str, Any]] = []
        for _line, values in self._rows(item, tables):
            if key is not None:
                values[key] = item.key
            chunk.append(values)
            if len(chunk) >= INSERT_ROWS:
                conn.execute(statement, _uniform(chunk))
                count += len(chunk)
                chunk = []
        if chunk:
            conn.execute(statement, _uniform(chunk))
            count += len(chunk)
        return count

    def _location(self, conn: Connection, item: Delivery) -> str:
        from sqlalchemy import select

        tables = self._find(conn)
        keys = tables.keys
        key_col = keys.c[tables.key_column("DeliveryKey")]
        count = conn.execute(select(keys.c[tables.key_column("RowsInserted")]).where(key_col == item.key)).scalar()
        conn.rollback()
        return _("{database}:{table} ({count} rows, {key})").format(
            database=self.database.name, table=tables.staging.name, count=count if count is not None else "?",
            key=item.key)

    def status(self, item: Delivery, calls: CallLog) -> Status:
        from sqlalchemy import select

        try:
            with self.database.connect(_("asking whether {name} is in {table}").format(
                    name=item.name, table=self.table)) as conn:
                tables = self._find(conn)
                key_col = tables.keys.c[tables.key_column("DeliveryKey")]
                found = conn.execute(select(key_col).where(key_col == item.key)).first()
                conn.rollback()
                if found is None:
                    return Status(Delivered.NO)
                return Status(Delivered.YES, self._location(conn, item))
        except DeliveryError as exc:
            return Status(Delivered.UNKNOWN, detail=str(exc))

    def close(self) -> None:
        self._tables = None


def _uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """executemany needs the same keys in every row: a row without a value for a column gets NULL."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return [{n: row.get(n) for n in names} for row in rows]


def _build(config: SqlDestinationConfig, parts: Parts) -> SqlDestination:
    from ..sql.database import database_of

    return SqlDestination(database_of(parts, config.sql), config.table, key_column=config.key_column,
                          delimiter=config.delimiter)


def _check(config: SqlDestinationConfig, ctx: CheckContext) -> list[Problem]:
    from ..sources.sql import check_database

    problems = check_database(config.sql, ctx)
    if problems:
        return problems
    assert ctx.gateway is not None  # noqa: S101 - check_database found the database there
    database = ctx.gateway.databases[config.sql]
    if config.table.casefold().startswith("khk"):
        return [(("table",), _("the table {table} is one of SOL's own tables (KHK…): the gateway never writes into "
                               "them, only into staging tables that SOL's import job reads").format(
                                   table=config.table))]
    if config.table.casefold() not in {t.casefold() for t in database.staging_tables}:
        known = ", ".join(database.staging_tables) or _("none")
        return [(("table",), _("the table {table} is not a staging table of the database '{name}' (staging_tables: "
                               "{tables}); the gateway writes only into the tables listed there").format(
                                   table=config.table, name=config.sql, tables=known))]
    return []


def _needs(config: Any, installation: Installation) -> list[str]:
    from ..sources.sql import needs_url

    return needs_url(config, installation)


KIND = Kind(
    name="sql",
    role="destination",
    config=SqlDestinationConfig,
    build=_build,
    summary="a staging table of the SOL database; each CSV output's rows and its key in one transaction "
            "(docs/sol-database.md)",
    example="{sql: sol, table: GatewayAuftragImport}",
    check=_check,
    needs=_needs,
)

