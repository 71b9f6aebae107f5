"""The staging table an output's rows go into, and the gateway's key table beside it.

Names are looked up in the database's own catalog without regard to case, then used exactly as
the database spells them (SQLAlchemy quotes them): the staging script for SQL Server creates
``GatewayAuftragImport``, the one for PostgreSQL creates it unquoted (PostgreSQL keeps it as
``gatewayauftragimport``), and gateway.yaml says ``GatewayAuftragImport`` for both.

The key table (``GatewayDelivered``) holds one row per delivered output: its delivery key (the
primary key), the staging table, how many rows, and when. It is written in the same transaction
as the rows, so the rows and the key are there together or not at all, and a second transaction
with the same key fails on the primary key even when two gateways race.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DeliveryError
from ..i18n import _, ngettext

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

#: The key table's columns, as the staging scripts create them.
KEY_COLUMNS = ("DeliveryKey", "StagingTable", "RowsInserted", "Flow", "InputId", "OutputName", "DeliveredAt")


@dataclass(frozen=True)
class StagingTables:
    staging: Table
    keys: Table

    def column(self, name: str) -> str | None:
        """The staging table's spelling of column ``name`` (case does not matter), or ``None``."""
        return _spelled(self.staging, name)

    def key_column(self, name: str) -> str:
        found = _spelled(self.keys, name)
        if found is None:  # checked when the tables are found
            raise DeliveryError(_("the key table {table} has no column {column}").format(
                table=self.keys.name, column=name))
        return found


def _spelled(table: Table, name: str) -> str | None:
    folded = name.casefold()
    return next((str(c.name) for c in table.columns if str(c.name).casefold() == folded), None)


def actual_name(conn: Connection, name: str) -> str | None:
    """How the database spells table ``name`` (in the connection's default schema), or ``None``."""
    from sqlalchemy import inspect

    folded = name.casefold()
    names = inspect(conn).get_table_names()
    exact = [n for n in names if n == name]
    if exact:
        return exact[0]
    matches = [n for n in names if n.casefold() == folded]
    return matches[0] if matches else None


def reflect(conn: Connection, name: str) -> Table | None:
    from sqlalchemy import MetaData, Table

    actual = actual_name(conn, name)
    if actual is None:
        return None
    return Table(actual, MetaData(), autoload_with=conn)


def find_tables(conn: Connection, staging: str, keys: str, where: str) -> StagingTables:
    """Both tables, or a ``DeliveryError`` saying which script creates them."""
    staging_table = reflect(conn, staging)
    key_table = reflect(conn, keys)
    missing = [n for n, t in ((staging, staging_table), (keys, key_table)) if t is None]
    if missing:
        words = _("{database} has no table {table}: create the staging tables with the script for this database in "
                  "sql/ (docs/sol-database.md)") if len(missing) == 1 else _(
                  "{database} has no table {table} and no table {other}: create the staging tables with the script "
                  "for this database in sql/ (docs/sol-database.md)")
        raise DeliveryError(words.format(database=where, table=missing[0], other=missing[-1]))
    assert staging_table is not None and key_table is not None  # noqa: S101 - both found
    lacking = [c for c in KEY_COLUMNS if _spelled(key_table, c) is None]
    if lacking:
        raise DeliveryError(ngettext(
            "{database}: the key table {table} lacks the column(s) {columns}; create it with the script in sql/ "
            "(docs/sol-database.md)",
            "{database}: the key table {table} lacks the column(s) {columns}; create it with the script in sql/ "
            "(docs/sol-database.md)", len(lacking)).format(
                database=where, table=key_table.name, columns=", ".join(lacking)))
    return StagingTables(staging_table, key_table)
