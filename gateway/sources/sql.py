"""The SOL database as a source (the ``sql`` kind): each run reads the mapping's queries into a batch.

A flow ``{sql: sol}`` reads the tables its mapping gives a ``query`` (``input.tables``) from the
database ``sol`` of gateway.yaml, on the flow's schedule (or at each rescan without one, and once
per ``gateway run --once``). One run is one input:

* ``scan`` costs nothing: there is always one candidate, "read now", named after the flow and the
  time (``sol-catalog-db_20261127T060000``);
* ``fetch`` is the read: every table inside one read-only transaction that sees the database as
  of one moment (:mod:`gateway.sql.snapshot`), streamed into a hidden folder in the work folder,
  flushed, then renamed into place. From then on the engine treats it as a batch an export
  delivered: content hash (an unchanged catalog is a duplicate), journal, conversion with the
  mapping, archive, recovery after a crash;
* with a watermark (``input.watermark``), a run that finds nothing changed makes no input; the
  highest change read is remembered by ``acknowledge``, once the input is done
  (:mod:`gateway.sql.watermark`). A quarantined input does not advance it: the next run reads the
  same changes again, and once the cause is fixed they go out, none skipped.

A database that cannot be reached, refuses the login or lacks a column raises ``DeliveryError``
in plain words (:mod:`gateway.sql.database`): the flow waits, nothing is taken or lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..errors import DeliveryError
from ..files import fsync_dir, new_work_path, try_lock
from ..i18n import _, ngettext
from ..kinds import CheckContext, Kind, KindConfig, Parts, Problem
from .base import Candidate, Source

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..clock import Clock
    from ..config import Installation
    from ..journal import Journal
    from ..mapping.model import BatchInput
    from ..sql.database import Database
    from ..sql.watermark import Watermarks

log = logging.getLogger("gateway")

PART_SUFFIX = ".sql-part"  # a snapshot being written: hidden, and removed by ``recover`` if its writer died


class SqlSourceConfig(KindConfig):
    """A database of gateway.yaml's ``databases`` that the flow's mapping reads with queries."""

    kind = "sql"

    sql: str  # the database's name under ``databases``
    # The name of each run's input, before the time: "katalog" gives katalog_20261127T060000
    # (input.stem in the mapping's file names); the flow's name by default.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")


class SqlSource(Source):
    kind = "sql"
    polled = True

    def __init__(self, database: Database, flow: str, spec: BatchInput | Callable[[], BatchInput],
                 settings: dict[str, str] | Callable[[], dict[str, str]], *,
                 journal: Journal | None, clock: Clock, prefix: str | None = None) -> None:
        self.database = database
        self.flow = flow
        self._spec = spec  # or how to get it: the flow's mapping is compiled when the source is first read
        self._settings = settings
        self.journal = journal
        self.clock = clock
        self.prefix = prefix or flow
        self._watermarks: Watermarks | None = None
        self._pending: dict[str, tuple[str, Any]] = {}  # candidate → (work path, highest change read)

    @property
    def spec(self) -> BatchInput:
        if callable(self._spec):
            self._spec = self._spec()
        return self._spec

    @property
    def settings(self) -> dict[str, str]:
        if callable(self._settings):
            self._settings = self._settings()
        return self._settings

    @property
    def watermarks(self) -> Watermarks | None:
        mark = self.spec.watermark
        if mark is not None and self._watermarks is None:
            from ..sql.watermark import Watermarks

            self._watermarks = Watermarks(self.journal, self.flow, mark.type)
        return self._watermarks

    def describe(self) -> str:
        return self.database.describe()

    def origin(self, candidate: Candidate) -> str:
        return _("{database}, tables {tables}").format(database=self.database.describe(),
                                                        tables=", ".join(self._queried()))

    def _queried(self) -> list[str]:
        return [name for name, table in self.spec.tables.items() if table.query]

    def scan(self) -> list[Candidate]:
        stamp = self.clock.local_now().strftime("%Y%m%dT%H%M%S")
        return [Candidate(identity=f"sql:{self.database.name}:{self.flow}", name=f"{self.prefix}_{stamp}",
                          size=0, changed=self.clock.time(), ready=True)]

    def fetch(self, candidate: Candidate, work_dir: Path) -> Path | None:
        """Read every query into a new batch folder in ``work_dir``; ``None`` when a watermark finds nothing new."""
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
            target = new_work_path(work_dir, candidate.name)
            part = work_dir / f".{target.name}{PART_SUFFIX}"
            part.mkdir()
        except OSError as exc:
            raise DeliveryError(_("cannot write the snapshot into {folder}: {error}").format(
                folder=work_dir, error=exc.strerror or exc)) from None
        fd = try_lock(part)
        try:
            rows, high = self._read_into(part)
            if self.watermarks is not None and rows == 0:
                log.debug("%s: nothing changed since the last run", self.flow)
                return None
            fsync_dir(part)
            os.rename(part, target)
            fsync_dir(work_dir)
        except OSError as exc:
            raise DeliveryError(_("cannot write the snapshot into {folder}: {error}").format(
                folder=work_dir, error=exc.strerror or exc)) from None
        finally:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(part, ignore_errors=True)
        self._pending[candidate.identity] = (str(target), high)
        return target

    def _read_into(self, folder: Path) -> tuple[int, Any]:
        """Write each queried table into ``folder``; (rows of the watermark's table, highest change read)."""
        from ..sql.querytext import shape
        from ..sql.snapshot import parameters, write_table

        mark = self.spec.watermark
        after = self.watermarks.current() if self.watermarks is not None else None
        values: dict[str, Any] = dict(self.settings)
        counted, high = 0, None
        with self.database.reading(_("reading the tables of flow {flow}").format(flow=self.flow)) as conn:
            for name, table in self.spec.tables.items():
                if table.query is None:
                    continue
                missing = [p for p in parameters(table.query) if p not in values and p != "watermark"]
                if missing:
                    raise DeliveryError(ngettext(
                        "flow {flow}, table {table}: the query needs the setting(s) {names}, which the mapping does "
                        "not have",
                        "flow {flow}, table {table}: the query needs the setting(s) {names}, which the mapping does "
                        "not have", len(missing)).format(flow=self.flow, table=name, names=", ".join(missing)))
                tracked = mark is not None and mark.table == name
                read = write_table(conn, table.query, values, folder / self.spec.file_of(name),
                                   shape(table.query).columns, chunk_rows=self.database.config.chunk_rows,
                                   watermark=(mark.type, after) if mark is not None else None,
                                   track=mark.column if mark is not None and tracked else None)
                if tracked:
                    counted, high = read.rows, read.high
        return counted, high

    def acknowledge(self, candidate: Candidate) -> None:
        """The input is final in the journal: remember the highest change it carried (not for a quarantined one)."""
        from ..journal import InputState, JournalError

        pending = self._pending.pop(candidate.identity, None)
        if pending is None or self.watermarks is None:
            return
        work_path, high = pending
        try:
            row = self.journal.by_work_path(work_path) if self.journal is not None else None
            if row is not None and row.state is InputState.FAILED:
                log.warning(_("{flow}: input {id} was quarantined; the changes it holds are read again on the next "
                              "run").format(flow=self.flow, id=row.id))
                return
            self.watermarks.advance(high)
        except JournalError as exc:
            log.warning(_("{flow}: the watermark cannot be remembered ({error}); the same changes are read again "
                          "next time").format(flow=self.flow, error=exc))

    def recover(self, work_dir: Path) -> None:
        """Remove snapshots whose writer died half-way (its lock is gone with it)."""
        with contextlib.suppress(OSError):
            for part in work_dir.glob(f".*{PART_SUFFIX}"):
                fd = try_lock(part)
                if fd is None:
                    continue  # another process is writing it now
                try:
                    shutil.rmtree(part, ignore_errors=True)
                finally:
                    os.close(fd)


def _build(config: SqlSourceConfig, parts: Parts) -> SqlSource:
    from ..sql.database import database_of

    flow = parts.flow

    def spec() -> BatchInput:  # compiled when the source is first read, not for a flow that waits
        from ..mapping.model import BatchInput

        found = flow.mapping.spec.input
        if not isinstance(found, BatchInput):  # gateway check refuses this before anything runs
            raise DeliveryError(_("flow {flow}: a database source needs a mapping with 'format: batch'").format(
                flow=flow.name))
        return found

    return SqlSource(database_of(parts, config.sql), flow.name, spec, lambda: flow.settings,
                     journal=parts.journal, clock=parts.clock, prefix=config.name)


def check_database(name: str, ctx: CheckContext) -> list[Problem]:
    databases = ctx.gateway.databases if ctx.gateway else {}
    if name in databases:
        return []
    known = ", ".join(databases) or _("none yet")
    return [(("sql",), _("no database named '{name}' under 'databases' (databases: {databases})").format(
        name=name, databases=known))]


def needs_url(config: Any, installation: Installation) -> list[str]:
    database = installation.databases.get(config.sql)
    return [database.url_env] if database is not None else []


def _check_mapping(config: SqlSourceConfig, flow: str, mapping: Any, ctx: CheckContext) -> list[Any]:
    from ..sql.checks import check_source_mapping

    return check_source_mapping(flow, mapping)


KIND = Kind(
    name="sql",
    role="source",
    config=SqlSourceConfig,
    build=_build,
    summary="the SOL database: each run reads the mapping's queries in one snapshot into a batch "
            "(docs/sol-database.md)",
    example="{sql: sol}",
    check=lambda config, ctx: check_database(config.sql, ctx),
    needs=needs_url,
    check_mapping=_check_mapping,
)
