"""The few things that each database is told in its own way, kept in one table.

Queries and statements go through SQLAlchemy Core and work on every database it knows. What is
left are connection settings that SQLAlchemy has no common word for: how long to wait for a
server that does not answer, how long to wait for a lock another session holds (without a limit,
one forgotten transaction in SOL would stop the gateway's service for good), which isolation
level gives one consistent picture of several tables, and how to say "this transaction only
reads". Each entry is a setting, not SQL of the gateway's own; a database that is not listed
works with its driver's defaults (no limits, its default isolation), which is said in the docs.

* PostgreSQL (psycopg): libpq's ``connect_timeout`` and ``options=-c lock_timeout=…``;
  REPEATABLE READ (one snapshot for all queries of a run) and read-only transactions.
* Microsoft SQL Server (pyodbc or pymssql): login timeout, ``SET LOCK_TIMEOUT`` on each new
  connection; SNAPSHOT isolation (needs ``ALLOW_SNAPSHOT_ISOLATION ON`` in SOL's database, see
  docs/sol-database.md; ``isolation: READ COMMITTED`` in gateway.yaml where it is off).
* SQLite: the busy timeout; SERIALIZABLE, which is what a SQLite transaction is anyway; dates
  typed by their declared column type, as the other drivers type them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DialectSettings:
    connect_args: dict[str, Any] = field(default_factory=dict)
    on_connect: tuple[str, ...] = ()  # statements run on each new connection (SQL Server's lock timeout)
    isolation: str | None = None  # for reading several tables as one consistent picture
    read_only: dict[str, Any] = field(default_factory=dict)  # execution options of a read-only transaction


def settings_for(dialect: str, driver: str, *, connect_seconds: float, lock_seconds: float) -> DialectSettings:
    """How to connect to a ``dialect`` database through ``driver`` with these limits."""
    lock_ms = max(1, int(lock_seconds * 1000))
    connect = max(1, round(connect_seconds))
    if dialect == "postgresql":
        args: dict[str, Any] = {"connect_timeout": connect, "options": f"-c lock_timeout={lock_ms}"}
        return DialectSettings(args, (), "REPEATABLE READ", {"postgresql_readonly": True})
    if dialect == "mssql":
        args = {"login_timeout": connect} if driver == "pymssql" else {"timeout": connect}
        return DialectSettings(args, (f"SET LOCK_TIMEOUT {lock_ms}",), "SNAPSHOT")
    if dialect == "sqlite":
        import sqlite3

        # SQLite keeps dates as text: the declared column type (TIMESTAMP, DATE, DATETIME) makes them
        # dates again, as the other databases' drivers give them, also for a query's columns. The
        # standard library knows TIMESTAMP and DATE; DATETIME (SQLAlchemy's and most tools' word) is added.
        sqlite3.register_converter("DATETIME", _sqlite_datetime)
        args = {"timeout": lock_seconds, "detect_types": sqlite3.PARSE_DECLTYPES}
        return DialectSettings(args, (), "SERIALIZABLE")
    return DialectSettings()


def _sqlite_datetime(value: bytes) -> Any:
    import datetime as dt

    text = value.decode()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return text  # not a date after all: the text as it is
