"""The journal in SQLite: embedded, nothing to install, one file in the state folder.

WAL mode with ``synchronous=FULL``: a commit that returned is on disk, because an output
published without its journal row surviving a power cut would be delivered a second time
after the restart. Checks that must hold while something is written (no other input took
the same order number meanwhile) run inside ``BEGIN IMMEDIATE`` transactions, which take
SQLite's write lock at the start; this is this implementation's business, not the engine's.

Every ``sqlite3.Error`` leaves this module as a :class:`~gateway.journal.JournalError`
whose subclass says what the admin can do.
"""

from __future__ import annotations

import functools
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ..clock import SYSTEM_CLOCK, Clock, stamp
from ..i18n import _
from . import (
    CallRow,
    CallState,
    InputRow,
    InputState,
    Journal,
    JournalBusy,
    JournalCorrupt,
    JournalError,
    JournalFull,
    JournalPage,
    JournalQuery,
    JournalReadOnly,
    JournalUnavailable,
    NoteRow,
    OutputRow,
    OutputState,
    StagedRecord,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    flow        TEXT NOT NULL,
    source      TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER,
    sha256      TEXT,
    state       TEXT NOT NULL,
    work_path   TEXT UNIQUE,
    stored_path TEXT,
    error       TEXT,
    skipped     TEXT NOT NULL DEFAULT '[]',
    note        TEXT,
    warning     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0,
    force       INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS inputs_by_content ON inputs (flow, sha256, state);
CREATE INDEX IF NOT EXISTS inputs_by_state ON inputs (state);
CREATE TABLE IF NOT EXISTS outputs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    input_id     INTEGER NOT NULL REFERENCES inputs (id),
    output       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    name         TEXT NOT NULL,
    staged_path  TEXT NOT NULL,
    state        TEXT NOT NULL,
    location     TEXT,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS outputs_by_input ON outputs (input_id);
CREATE TABLE IF NOT EXISTS health (
    place         TEXT PRIMARY KEY,
    flow          TEXT NOT NULL,
    last_ok       TEXT,
    last_error    TEXT,
    error         TEXT,
    failing_since TEXT,
    alerted       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS record_keys (
    scope    TEXT NOT NULL,
    key      TEXT NOT NULL,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calls (
    delivery TEXT NOT NULL,
    call     TEXT NOT NULL,
    state    TEXT NOT NULL,
    request  TEXT NOT NULL,
    answer   TEXT,
    at       TEXT NOT NULL,
    PRIMARY KEY (delivery, call)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    at    TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    input_id INTEGER NOT NULL REFERENCES inputs (id),
    author   TEXT NOT NULL,
    text     TEXT NOT NULL,
    at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_input ON notes (input_id);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

#: Columns added after the first release, with their definitions: added to an older journal on opening.
ADDED_COLUMNS = {"inputs": {"failures": "INTEGER NOT NULL DEFAULT 0", "warning": "TEXT", "error_where": "TEXT"}}

#: Indexes for the console's searches (created after ADDED_COLUMNS, so an older journal gets them too):
#: by order number, by file name (a covering index is scanned instead of the table for ``LIKE '%x%'``),
#: by flow and by day, each ending in ``id`` so that a page newest first is read in index order; and one
#: holding every column ``counts()`` reads, so that the overview, polled every few seconds, reads the index
#: alone in its order (155 → 55 ms on 100,000 inputs).
SEARCH_INDEXES = """
CREATE INDEX IF NOT EXISTS inputs_for_counts ON inputs (flow, state, warning, finished_at, started_at, received_at);
CREATE INDEX IF NOT EXISTS record_keys_by_key ON record_keys (key, input_id);
CREATE INDEX IF NOT EXISTS record_keys_by_input ON record_keys (input_id);
CREATE INDEX IF NOT EXISTS inputs_by_name ON inputs (name, id);
CREATE INDEX IF NOT EXISTS inputs_by_flow ON inputs (flow, id);
CREATE INDEX IF NOT EXISTS inputs_by_received ON inputs (received_at, id)
"""

P = ParamSpec("P")
R = TypeVar("R")


def _classify(exc: sqlite3.Error, path: str) -> JournalError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return JournalBusy(path, str(exc))
    if "readonly" in text or "read-only" in text:
        return JournalReadOnly(path, str(exc))
    if "full" in text or "disk i/o" in text:
        return JournalFull(path, str(exc))
    if "not a database" in text or "malformed" in text or "corrupt" in text or "no such table" in text:
        return JournalCorrupt(path, str(exc))
    if "unable to open" in text:
        return JournalUnavailable(path, str(exc))
    return JournalError(path, str(exc))


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite's errors into the journal's own, naming the file."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            journal = args[0]
            raise _classify(exc, str(getattr(journal, "path", "journal"))) from exc

    return wrapper


class SqliteJournal(Journal):
    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SYSTEM_CLOCK
        self._created = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalUnavailable(str(path), _("its folder cannot be created ({error})").format(
                error=exc.strerror or exc)) from None
        try:
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _classify(exc, str(path)) from exc
        self.db.row_factory = sqlite3.Row
        try:
            self._set_up()
        except sqlite3.Error as exc:
            self.db.close()
            raise _classify(exc, str(path)) from exc
        except BaseException:
            self.db.close()
            raise

    def _now(self) -> str:
        return stamp(self.clock)

    def _set_up(self, patience: float = 60.0) -> None:
        """WAL mode and the tables, also when another process opens the new journal at the same moment.

        Switching to WAL needs the database to itself, and SQLite answers "database is locked" at
        once rather than waiting, so two processes starting together must take turns here.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.execute("PRAGMA foreign_keys=ON")
                with self._transaction():
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    self._add_columns()
                    for statement in SEARCH_INDEXES.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                    if self.db.execute("SELECT value FROM meta WHERE name = 'installation'").fetchone() is None:
                        self.db.execute("INSERT INTO meta (name, value) VALUES ('installation', ?)",
                                        (secrets.token_hex(4),))
                        self._created = True
                row = self.db.execute("SELECT value FROM meta WHERE name = 'installation'").fetchone()
                self._installation_id = str(row["value"])
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _add_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for name, definition in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")

    @property
    def installation_id(self) -> str:
        return self._installation_id

    @property
    def created(self) -> bool:
        return self._created

    @_guarded
    def restore_keys(self, entries: Iterable[tuple[str, str]], note: str) -> int:
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO inputs (flow, source, name, state, received_at, finished_at, note) "
                "VALUES ('(restored)', 'key ledger', 'record keys', 'done', ?, ?, ?)",
                (self._now(), self._now(), note),
            )
            input_id = int(cur.lastrowid or 0)
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO record_keys (scope, key, input_id) VALUES (?, ?, ?)",
                           [(scope, key, input_id) for scope, key in entries])
            return db.total_changes - before

    def reopen(self) -> SqliteJournal:
        return SqliteJournal(self.path, self.clock)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken at the start, so checks inside hold."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- inputs ---------------------------------------------------------------------------

    @_guarded
    def register(self, flow: str, source: str, name: str, work_path: str, size: int) -> InputRow:
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO inputs (flow, source, name, size, state, work_path, received_at) "
                "VALUES (?, ?, ?, ?, 'waiting', ?, ?)",
                (flow, source, name, size, work_path, self._now()),
            )
            row_id = cur.lastrowid
        return self.get(int(row_id or 0))

    @_guarded
    def get(self, input_id: int) -> InputRow:
        row = self.db.execute("SELECT * FROM inputs WHERE id = ?", (input_id,)).fetchone()
        if row is None:
            raise KeyError(input_id)
        return _input(row)

    @_guarded
    def by_work_path(self, work_path: str) -> InputRow | None:
        row = self.db.execute("SELECT * FROM inputs WHERE work_path = ?", (work_path,)).fetchone()
        return _input(row) if row else None

    @_guarded
    def start(self, input_id: int, sha256: str, size: int) -> None:
        self.db.execute(
            "UPDATE inputs SET state = 'processing', sha256 = ?, size = ?, started_at = ?, "
            "attempts = attempts + 1, error = NULL WHERE id = ?",
            (sha256, size, self._now(), input_id),
        )

    def _same_content(self, flow: str, sha256: str, input_id: int) -> int | None:
        row = self.db.execute(
            "SELECT id FROM inputs WHERE flow = ? AND sha256 = ? AND id != ? "
            "AND state IN ('delivering', 'done') ORDER BY id LIMIT 1",
            (flow, sha256, input_id),
        ).fetchone()
        return int(row["id"]) if row else None

    @_guarded
    def same_content_delivered(self, flow: str, sha256: str, input_id: int) -> int | None:
        return self._same_content(flow, sha256, input_id)

    def _key_owner(self, scope: str, key: str) -> int | None:
        row = self.db.execute("SELECT input_id FROM record_keys WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return int(row["input_id"]) if row else None

    @_guarded
    def key_owner(self, scope: str, key: str) -> int | None:
        return self._key_owner(scope, key)

    @_guarded
    def commit(
        self,
        input_id: int,
        outputs: Iterable[StagedRecord],
        scope: str | None,
        keys: list[str],
        skipped: list[dict[str, str]],
        *,
        content: tuple[str, str] | None = None,
    ) -> bool:
        with self._transaction() as db:
            if scope is not None and any(self._key_owner(scope, k) is not None for k in keys):
                return False  # the transaction is committed empty; nothing was written
            if content is not None and self._same_content(content[0], content[1], input_id) is not None:
                return False
            db.executemany(
                "INSERT INTO outputs (input_id, output, destination, name, staged_path, state) "
                "VALUES (?, ?, ?, ?, ?, 'staged')",
                [(input_id, o.output, o.destination, o.name, o.staged_path) for o in outputs],
            )
            if scope is not None:
                db.executemany(
                    "INSERT INTO record_keys (scope, key, input_id) VALUES (?, ?, ?)",
                    [(scope, k, input_id) for k in keys],
                )
            db.execute(
                "UPDATE inputs SET state = 'delivering', skipped = ? WHERE id = ?",
                (json.dumps(skipped, ensure_ascii=False), input_id),
            )
        return True

    @_guarded
    def finish(
        self,
        input_id: int,
        state: InputState,
        stored_path: str | None,
        *,
        error: str | None = None,
        note: str | None = None,
        skipped: list[dict[str, str]] | None = None,
        warning: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> None:
        if not InputState(state).final:
            raise ValueError(f"not a final state: {state}")
        fields = ("state = ?, stored_path = ?, error = ?, error_where = ?, note = COALESCE(?, note), warning = ?, "
                  "finished_at = ?")
        params: list[Any] = [str(state), stored_path, error,
                             json.dumps(where, ensure_ascii=False) if where else None, note, warning, self._now()]
        if skipped is not None:
            fields += ", skipped = ?"
            params.append(json.dumps(skipped, ensure_ascii=False))
        self.db.execute(f"UPDATE inputs SET {fields} WHERE id = ?", (*params, input_id))  # noqa: S608 - fixed text

    @_guarded
    def note_skipped(self, input_id: int, skipped: list[dict[str, str]]) -> None:
        self.db.execute("UPDATE inputs SET skipped = ? WHERE id = ?",
                        (json.dumps(skipped, ensure_ascii=False), input_id))

    @_guarded
    def note_error(self, input_id: int, error: str) -> None:
        self.db.execute("UPDATE inputs SET error = ? WHERE id = ?", (error, input_id))

    @_guarded
    def count_failure(self, input_id: int, error: str) -> int:
        with self._transaction() as db:
            db.execute("UPDATE inputs SET failures = failures + 1, error = ? WHERE id = ?", (error, input_id))
            row = db.execute("SELECT failures FROM inputs WHERE id = ?", (input_id,)).fetchone()
        return int(row["failures"]) if row else 0

    @_guarded
    def requeue(self, input_id: int, work_path: str, force: bool) -> None:
        self.db.execute(
            "UPDATE inputs SET state = 'waiting', work_path = ?, error = NULL, error_where = NULL, note = NULL, "
            "skipped = '[]', force = ?, failures = 0, warning = NULL, finished_at = NULL WHERE id = ?",
            (work_path, int(force), input_id),
        )

    @_guarded
    def unfinished(self, flow: str) -> list[InputRow]:
        rows = self.db.execute(
            "SELECT * FROM inputs WHERE flow = ? AND state NOT IN ('done', 'duplicate', 'failed') ORDER BY id",
            (flow,),
        ).fetchall()
        return [_input(r) for r in rows]

    @_guarded
    def entries(self, flow: str | None = None, limit: int | None = None) -> list[InputRow]:
        sql = "SELECT * FROM inputs"
        params: list[Any] = []
        if flow:
            sql += " WHERE flow = ?"
            params.append(flow)
        sql += " ORDER BY id"
        if limit:
            sql = f"SELECT * FROM ({sql} DESC LIMIT ?) ORDER BY id"  # noqa: S608 - fixed text
            params.append(limit)
        return [_input(r) for r in self.db.execute(sql, params).fetchall()]

    @_guarded
    def counts(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for row in self.db.execute(
            "SELECT flow, state, COUNT(*) AS n, COUNT(warning) AS warned, "
            "MAX(COALESCE(finished_at, started_at, received_at)) AS last FROM inputs GROUP BY flow, state"
        ):
            entry = result.setdefault(row["flow"], {"states": {}, "warnings": 0, "last_run": None})
            entry["states"][row["state"]] = row["n"]
            entry["warnings"] += row["warned"]
            if row["last"] and (entry["last_run"] is None or row["last"] > entry["last_run"]):
                entry["last_run"] = row["last"]
        return result

    @_guarded
    def search(self, query: JournalQuery) -> JournalPage:
        where: list[str] = []
        params: list[Any] = []
        if query.key:
            where.append("id IN (SELECT input_id FROM record_keys WHERE key = ?)")
            params.append(query.key)
        if query.name:
            escaped = query.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("id IN (SELECT id FROM inputs INDEXED BY inputs_by_name WHERE name LIKE ? ESCAPE '\\')")
            params.append(f"%{escaped}%")
        if query.flow:
            where.append("flow = ?")
            params.append(query.flow)
        if query.state:
            where.append("state = ?")
            params.append(str(query.state))
        if query.since:
            where.append("received_at >= ?")
            params.append(query.since)
        if query.until:
            where.append("received_at < ?")
            params.append(query.until)
        condition = " AND ".join(where) or "1"
        total = int(self.db.execute(f"SELECT COUNT(*) FROM inputs WHERE {condition}",  # noqa: S608 - fixed parts
                                    params).fetchone()[0])
        page_condition = condition + (" AND id < ?" if query.before is not None else "")
        page_params = [*params, *([query.before] if query.before is not None else []), query.limit + 1]
        rows = [_input(r) for r in self.db.execute(
            f"SELECT * FROM inputs WHERE {page_condition} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed parts
            page_params).fetchall()]
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        return JournalPage(rows, total, rows[-1].id if more and rows else None)

    @_guarded
    def record_keys(self, input_id: int) -> list[tuple[str, str]]:
        rows = self.db.execute("SELECT scope, key FROM record_keys WHERE input_id = ? ORDER BY scope, key",
                               (input_id,)).fetchall()
        return [(str(r["scope"]), str(r["key"])) for r in rows]

    # -- operators' notes ---------------------------------------------------------------------

    @_guarded
    def add_note(self, input_id: int, author: str, text: str) -> NoteRow:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM inputs WHERE id = ?", (input_id,)).fetchone() is None:
                raise KeyError(input_id)
            cur = db.execute("INSERT INTO notes (input_id, author, text, at) VALUES (?, ?, ?, ?)",
                             (input_id, author, text, self._now()))
            note_id = int(cur.lastrowid or 0)
        row = self.db.execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
        return NoteRow(**dict(row))

    @_guarded
    def notes(self, input_id: int) -> list[NoteRow]:
        rows = self.db.execute("SELECT * FROM notes WHERE input_id = ? ORDER BY id", (input_id,)).fetchall()
        return [NoteRow(**dict(r)) for r in rows]

    # -- outputs --------------------------------------------------------------------------

    @_guarded
    def outputs(self, input_id: int) -> list[OutputRow]:
        rows = self.db.execute("SELECT * FROM outputs WHERE input_id = ? ORDER BY id", (input_id,)).fetchall()
        return [OutputRow(**{**dict(r), "state": OutputState(r["state"])}) for r in rows]

    @_guarded
    def output(self, output_id: int) -> OutputRow:
        row = self.db.execute("SELECT * FROM outputs WHERE id = ?", (output_id,)).fetchone()
        if row is None:
            raise KeyError(output_id)
        return OutputRow(**{**dict(row), "state": OutputState(row["state"])})

    @_guarded
    def output_uploaded(self, output_id: int) -> None:
        self.db.execute("UPDATE outputs SET state = 'uploaded' WHERE id = ?", (output_id,))

    @_guarded
    def output_delivered(self, output_id: int, location: str) -> None:
        self.db.execute(
            "UPDATE outputs SET state = 'delivered', location = ?, delivered_at = ? WHERE id = ?",
            (location, self._now(), output_id),
        )

    @_guarded
    def output_marked(self, output_id: int) -> None:
        self.db.execute("UPDATE outputs SET state = 'marked' WHERE id = ?", (output_id,))

    # -- calls ----------------------------------------------------------------------------

    @_guarded
    def call_started(self, delivery: str, call: str, request: str) -> None:
        self.db.execute(
            "INSERT INTO calls (delivery, call, state, request, at) VALUES (?, ?, 'started', ?, ?) "
            "ON CONFLICT (delivery, call) DO UPDATE SET state = 'started', request = excluded.request, "
            "answer = NULL, at = excluded.at",
            (delivery, call, request, self._now()),
        )

    @_guarded
    def call_answered(self, delivery: str, call: str, answer: str) -> None:
        self.db.execute(
            "INSERT INTO calls (delivery, call, state, request, answer, at) VALUES (?, ?, 'answered', '', ?, ?) "
            "ON CONFLICT (delivery, call) DO UPDATE SET state = 'answered', answer = excluded.answer, "
            "at = excluded.at",
            (delivery, call, answer, self._now()),
        )

    @_guarded
    def call_failed(self, delivery: str, call: str, answer: str) -> None:
        self.db.execute(
            "INSERT INTO calls (delivery, call, state, request, answer, at) VALUES (?, ?, 'failed', '', ?, ?) "
            "ON CONFLICT (delivery, call) DO UPDATE SET state = 'failed', answer = excluded.answer, "
            "at = excluded.at",
            (delivery, call, answer, self._now()),
        )

    @_guarded
    def record_calls(self, delivery: str, entries: list[tuple[str, CallState, str]]) -> None:
        now = self._now()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO calls (delivery, call, state, request, answer, at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (delivery, call) DO UPDATE SET state = excluded.state, at = excluded.at, "
                "request = CASE WHEN excluded.state = 'started' THEN excluded.request ELSE calls.request END, "
                "answer = CASE WHEN excluded.state = 'started' THEN NULL ELSE excluded.answer END",
                [(delivery, call, str(state), text if state is CallState.STARTED else "",
                  None if state is CallState.STARTED else text, now) for call, state, text in entries],
            )

    @_guarded
    def calls(self, delivery: str) -> dict[str, CallRow]:
        rows = self.db.execute("SELECT * FROM calls WHERE delivery = ?", (delivery,)).fetchall()
        return {r["call"]: _call(r) for r in rows}

    @_guarded
    def call(self, delivery: str, call: str) -> CallRow | None:
        row = self.db.execute("SELECT * FROM calls WHERE delivery = ? AND call = ?", (delivery, call)).fetchone()
        return _call(row) if row else None

    # -- memory ---------------------------------------------------------------------------

    @_guarded
    def remember(self, scope: str, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO memory (scope, key, value, at) VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) "
            "DO UPDATE SET value = excluded.value, at = excluded.at",
            (scope, key, value, self._now()),
        )

    @_guarded
    def recall(self, scope: str, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM memory WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return str(row["value"]) if row else None

    # -- health of sources and destinations -------------------------------------------------

    @_guarded
    def place_ok(self, place: str, flow: str) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT failing_since FROM health WHERE place = ?", (place,)).fetchone()
            db.execute(
                "INSERT INTO health (place, flow, last_ok) VALUES (?, ?, ?) ON CONFLICT (place) DO UPDATE SET "
                "last_ok = excluded.last_ok, error = NULL, failing_since = NULL, alerted = 0",
                (place, flow, self._now()),
            )
        return bool(row and row["failing_since"])

    @_guarded
    def place_failed(self, place: str, flow: str, error: str) -> bool:
        now = self._now()
        with self._transaction() as db:
            row = db.execute("SELECT failing_since FROM health WHERE place = ?", (place,)).fetchone()
            db.execute(
                "INSERT INTO health (place, flow, last_error, error, failing_since) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (place) DO UPDATE SET last_error = excluded.last_error, error = excluded.error, "
                "failing_since = COALESCE(health.failing_since, excluded.failing_since)",
                (place, flow, now, error, now),
            )
        return not (row and row["failing_since"])

    @_guarded
    def health(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM health ORDER BY place")]

    @_guarded
    def due_alerts(self, older_than: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM health WHERE failing_since IS NOT NULL AND failing_since <= ? AND alerted = 0",
            (older_than,),
        ).fetchall()
        return [dict(r) for r in rows]

    @_guarded
    def alerted(self, place: str) -> None:
        self.db.execute("UPDATE health SET alerted = 1 WHERE place = ?", (place,))


def _call(row: sqlite3.Row) -> CallRow:
    return CallRow(call=row["call"], state=CallState(row["state"]), request=row["request"], answer=row["answer"],
                   at=row["at"])


def _input(row: sqlite3.Row) -> InputRow:
    data = dict(row)
    data["skipped"] = json.loads(data["skipped"] or "[]")
    data["force"] = bool(data["force"])
    data["state"] = InputState(data["state"])
    data["error_where"] = json.loads(data["error_where"]) if data.get("error_where") else None
    return InputRow(**data)
