"""A database named in gateway.yaml: its settings, the connection, and its errors in plain words.

gateway.yaml names each database once and the environment variable that holds its URL::

    databases:
      sol:
        url_env: SOL_DATABASE_URL       # mssql+pyodbc://gateway:…@sqlserver/OLReweAbfD?driver=…

The URL (with its password) lives only in the environment: it is read when the gateway first
connects, and never written to a log, the journal, a reason file or a message. Messages name
the host, port, database and user instead, and what to check.

Errors come from drivers in their own words and with their own codes. :meth:`Database.plain`
sorts them into the cases an admin can act on (server not reachable, login refused, no such
database, a table locked by another session, a table or column missing, a right missing) and
says each in words; every one is a :class:`~gateway.errors.DeliveryError`, so that the flow
waits and tries again, and nothing is taken or lost meanwhile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import DeliveryError
from ..i18n import _
from .dialects import DialectSettings, settings_for

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from ..kinds import Parts

#: The staging table the shipped scripts (sql/staging-*.sql) create.
STAGING_TABLE = "GatewayAuftragImport"
#: The gateway's own table of delivered keys, beside the staging table.
KEY_TABLE = "GatewayDelivered"


class DatabaseConfig(BaseModel):
    """A database under ``databases:`` in gateway.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the environment variable holding the URL
    isolation: str | None = None  # the isolation level a run reads at (default: one snapshot, see dialects.py)
    chunk_rows: int = Field(default=5000, ge=1)  # rows fetched from the server at a time
    connect_timeout_seconds: float = Field(default=15, gt=0)
    lock_timeout_seconds: float = Field(default=30, gt=0)  # how long to wait for a table another session locks
    # The only tables the gateway may write into; SOL's own tables (KHK…) never are.
    staging_tables: list[str] = Field(default_factory=lambda: [STAGING_TABLE])
    key_table: str = KEY_TABLE  # the gateway's table of delivered keys


# SQLSTATEs and driver words for the cases an admin can act on; the first that matches wins.
_CASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("login", ("28P01", "28000"), ("password authentication failed", "login failed", "authentication failed",
                                   "no password supplied", "role \"", "18456")),
    ("no database", ("3D000",), ('database "', "cannot open database", "unknown database", "4060")),
    ("unreachable", ("08001", "08006", "08004", "HYT00"), (
        "connection refused", "could not connect", "timeout expired", "could not translate host name",
        "name or service not known", "no route to host", "server closed the connection", "connection timed out",
        "unable to connect", "adaptive server is unavailable", "tcp provider", "connection is closed",
        "consuming input failed", "terminating connection", "connection failed", "unable to open database file")),
    ("locked", ("55P03", "40P01"), ("lock timeout", "lock request time out", "database is locked",
                                    "database table is locked", "1222")),
    ("snapshot", (), ("snapshot isolation", "3952")),
    ("missing", ("42P01", "42703", "42S02", "42S22"), (
        "does not exist", "no such table", "no such column", "invalid object name", "invalid column name",
        "unknown column")),
    ("rights", ("42501",), ("permission denied", "permission was denied", "attempt to write a readonly database")),
)


class Database:
    """One database of gateway.yaml; connects on first use."""

    def __init__(self, name: str, config: DatabaseConfig) -> None:
        self.name = name
        self.config = config
        self._engine: Engine | None = None
        self._settings: DialectSettings | None = None

    # -- where it is, in words --------------------------------------------------------------

    def url(self) -> URL:
        """The URL from the environment; ``DeliveryError`` when it is missing or not a URL."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        env = self.config.url_env
        text = os.environ.get(env, "").strip()
        if not text:
            raise DeliveryError(_("the environment variable {variable} is not set: it holds the URL of the database "
                                  "'{name}' (such as mssql+pyodbc://user:password@server/database?driver=…)").format(
                                      variable=env, name=self.name))
        try:
            return make_url(text)
        except ArgumentError:
            raise DeliveryError(_("the environment variable {variable} does not hold a database URL (it should look "
                                  "like dialect+driver://user:password@host:port/database)").format(
                                      variable=env)) from None

    def where(self) -> str:
        """Server, database and user, never the password."""
        try:
            url = self.url()
        except DeliveryError:
            return _("database '{name}' (URL in ${variable}, not set or not readable)").format(
                name=self.name, variable=self.config.url_env)
        if url.get_backend_name() == "sqlite":
            return _("database '{name}' (SQLite file {file})").format(name=self.name,
                                                                      file=url.database or _("in memory"))
        server = url.host or "localhost"
        if url.port:
            server += f":{url.port}"
        if url.username:
            return _("database '{name}' ({kind} at {server}, database {database}, user {user})").format(
                name=self.name, kind=url.get_backend_name(), server=server, database=url.database, user=url.username)
        return _("database '{name}' ({kind} at {server}, database {database})").format(
            name=self.name, kind=url.get_backend_name(), server=server, database=url.database)

    def describe(self) -> str:
        return self.where()

    def scrub(self, text: str) -> str:
        """``text`` without the URL's password (a driver may quote its connection string)."""
        with contextlib.suppress(DeliveryError):
            password = self.url().password
            if password:
                text = text.replace(str(password), "***")
        return text

    # -- connecting ---------------------------------------------------------------------------

    @property
    def settings(self) -> DialectSettings:
        if self._settings is None:
            url = self.url()
            self._settings = settings_for(url.get_backend_name(), url.get_driver_name(),
                                          connect_seconds=self.config.connect_timeout_seconds,
                                          lock_seconds=self.config.lock_timeout_seconds)
        return self._settings

    @property
    def dialect(self) -> str:
        return self.url().get_backend_name()

    def engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import create_engine, event
            from sqlalchemy.exc import NoSuchModuleError

            url = self.url()
            settings = self.settings
            try:
                engine = create_engine(url, pool_pre_ping=True, connect_args=dict(settings.connect_args))
            except (NoSuchModuleError, ImportError) as exc:
                words = _("{database}: the database driver for {driver} is not installed (pip install "
                          "'gateway[mssql]'): {error}") if url.get_backend_name() == "mssql" else _(
                          "{database}: the database driver for {driver} is not installed: {error}")
                raise DeliveryError(words.format(database=self.where(), driver=url.drivername,
                                                 error=self.scrub(str(exc)))) from None
            if settings.on_connect:
                statements = settings.on_connect

                def prepare(dbapi_connection: Any, record: Any) -> None:
                    cursor = dbapi_connection.cursor()
                    try:
                        for statement in statements:
                            cursor.execute(statement)
                    finally:
                        cursor.close()

                event.listen(engine, "connect", prepare)
            self._engine = engine
        return self._engine

    @contextlib.contextmanager
    def connect(self, doing: str) -> Iterator[Connection]:
        """A connection; any database error inside becomes a ``DeliveryError`` in words."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine().connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self.plain(exc, doing) from None

    @contextlib.contextmanager
    def reading(self, doing: str) -> Iterator[Connection]:
        """One read-only transaction that sees every table as of one moment (see dialects.py)."""
        with self.connect(doing) as conn:
            options: dict[str, Any] = dict(self.settings.read_only)
            isolation = self.config.isolation or self.settings.isolation
            if isolation:
                options["isolation_level"] = isolation
            conn.execution_options(**options)
            with conn.begin():
                yield conn

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- errors in words ----------------------------------------------------------------------

    def case_of(self, exc: BaseException) -> tuple[str, str]:
        """(case, the driver's reason in one line) for a database error."""
        orig = getattr(exc, "orig", None) or exc
        reason = " ".join(str(orig).strip().splitlines()[:1]).strip() or type(orig).__name__
        codes = {str(c) for c in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)) if c}
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], (str, int)):
            codes.add(str(args[0]))
        full = (str(orig) + "\n").lower()
        for case, states, words in _CASES:
            if codes & set(states) or any(w.lower() in full for w in words):
                return case, self.scrub(reason)
        return "other", self.scrub(reason)

    def plain(self, exc: BaseException, doing: str) -> DeliveryError:
        """A database error as a ``DeliveryError`` an admin can act on; never with the password."""
        case, reason = self.case_of(exc)
        env = self.config.url_env
        try:
            url = self.url()
            user, database = url.username or _("(none)"), url.database or _("(none)")
            server = f"{url.host or 'localhost'}" + (f":{url.port}" if url.port else "")
        except DeliveryError as missing:
            return missing
        where = self.where()
        if case == "unreachable":
            text = _("cannot reach {database}: {reason}. Check that the database server runs and accepts "
                     "connections from this machine (a firewall?), and the host and port in ${variable}").format(
                         database=where, reason=reason, variable=env)
        elif case == "login":
            text = _("the database server {server} refused the login of user '{user}': {reason}. Check the user "
                     "name and password in ${variable}").format(server=server, user=user, reason=reason, variable=env)
        elif case == "no database":
            text = _("the database server {server} has no database '{database}' (or user '{user}' may not open "
                     "it): {reason}. Check the database name in ${variable}").format(
                         server=server, database=database, user=user, reason=reason, variable=env)
        elif case == "locked":
            text = _("{action} in {database}: a table is locked by another session and stayed locked for more than "
                     "{seconds} s ({reason}). Nothing was changed; it is tried again on the next run. If this keeps "
                     "happening, look for a long-running transaction in SOL").format(
                         action=doing, database=where, seconds=f"{self.config.lock_timeout_seconds:g}", reason=reason)
        elif case == "snapshot":
            text = _("{action} in {database}: {reason}. Switch on snapshot isolation in SOL's database "
                     "(ALTER DATABASE … SET ALLOW_SNAPSHOT_ISOLATION ON) or set 'isolation: READ COMMITTED' for "
                     "the database '{name}' in gateway.yaml (docs/sol-database.md)").format(
                         action=doing, database=where, reason=reason, name=self.name)
        elif case == "missing":
            text = _("{action} in {database}: {reason}. The database lacks a table or column that the mapping names; "
                     "'gateway check --online' lists them").format(action=doing, database=where, reason=reason)
        elif case == "rights":
            text = _("{action} in {database}: user '{user}' lacks a right: {reason}. docs/sol-database.md lists the "
                     "rights the gateway's database user needs").format(
                         action=doing, database=where, user=user, reason=reason)
        else:
            text = _("{action} in {database}: the database answered: {reason}").format(
                action=doing, database=where, reason=reason)
        return DeliveryError(text)


def database_of(parts: Parts, name: str) -> Database:
    """The installation's database ``name``: one object per engine, so its connections are shared."""
    config: DatabaseConfig = parts.installation.databases[name]
    database: Database = parts.share(f"sql:{name}", lambda: Database(name, config))
    return database
