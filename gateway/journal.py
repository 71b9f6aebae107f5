"""The journal: one row per input, its outputs, and every record key ever delivered.

It is the gateway's memory of what happened, and the thing recovery trusts after a
crash. SQLite in WAL mode with ``synchronous=FULL``: a commit that returned is on disk,
because an output published without its journal row surviving a power cut would be
delivered a second time after the restart.

States of an input::

    waiting ──► processing ──► delivering ──► done
                    │  │
                    │  └──► duplicate   (same content as a delivered input, or only known keys)
                    └─────► failed      (quarantined; ``retry`` puts it back to waiting)

States of an output: ``staged`` (complete in the work folder) → ``uploaded`` (under its
temporary name at the destination) → ``delivered`` (renamed to its final name) →
``marked`` (its marker file written, when the flow wants one).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    attempts    INTEGER NOT NULL DEFAULT 0,
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
"""

FINAL_STATES = ("done", "duplicate", "failed")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class InputRow:
    id: int
    flow: str
    source: str
    name: str
    size: int | None
    sha256: str | None
    state: str
    work_path: str | None
    stored_path: str | None
    error: str | None
    skipped: list[dict[str, str]]
    note: str | None
    attempts: int
    force: bool
    received_at: str
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class OutputRow:
    id: int
    input_id: int
    output: str
    destination: str
    name: str
    staged_path: str
    state: str
    location: str | None
    delivered_at: str | None


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self._set_up()

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
                with self.transaction():
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
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

    def register(self, flow: str, source: str, name: str, work_path: str, size: int, received_at: str) -> InputRow:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO inputs (flow, source, name, size, state, work_path, received_at) "
                "VALUES (?, ?, ?, ?, 'waiting', ?, ?)",
                (flow, source, name, size, work_path, received_at),
            )
            row_id = cur.lastrowid
        return self.get(int(row_id or 0))

    def get(self, input_id: int) -> InputRow:
        row = self.db.execute("SELECT * FROM inputs WHERE id = ?", (input_id,)).fetchone()
        if row is None:
            raise KeyError(input_id)
        return _input(row)

    def find(self, input_id: int) -> InputRow | None:
        try:
            return self.get(input_id)
        except KeyError:
            return None

    def by_work_path(self, work_path: str) -> InputRow | None:
        row = self.db.execute("SELECT * FROM inputs WHERE work_path = ?", (work_path,)).fetchone()
        return _input(row) if row else None

    def start(self, input_id: int, sha256: str, size: int) -> None:
        self.db.execute(
            "UPDATE inputs SET state = 'processing', sha256 = ?, size = ?, started_at = ?, "
            "attempts = attempts + 1, error = NULL WHERE id = ?",
            (sha256, size, now(), input_id),
        )

    def same_content_delivered(self, flow: str, sha256: str, input_id: int) -> int | None:
        """Another input of this flow with this content that was (or is being) delivered."""
        row = self.db.execute(
            "SELECT id FROM inputs WHERE flow = ? AND sha256 = ? AND id != ? "
            "AND state IN ('delivering', 'done') ORDER BY id LIMIT 1",
            (flow, sha256, input_id),
        ).fetchone()
        return int(row["id"]) if row else None

    def key_owner(self, scope: str, key: str) -> int | None:
        row = self.db.execute("SELECT input_id FROM record_keys WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return int(row["input_id"]) if row else None

    def commit_outputs(
        self,
        input_id: int,
        outputs: Iterable[tuple[str, str, str, str]],
        scope: str | None,
        keys: list[str],
        skipped: list[dict[str, str]],
    ) -> None:
        """The point of no return: from here on the outputs will be delivered, whatever happens.

        Must run inside ``transaction()``, after the caller re-checked keys and content.
        """
        for output, destination, name, staged in outputs:
            self.db.execute(
                "INSERT INTO outputs (input_id, output, destination, name, staged_path, state) "
                "VALUES (?, ?, ?, ?, ?, 'staged')",
                (input_id, output, destination, name, staged),
            )
        if scope is not None:
            self.db.executemany(
                "INSERT INTO record_keys (scope, key, input_id) VALUES (?, ?, ?)",
                [(scope, k, input_id) for k in keys],
            )
        self.db.execute(
            "UPDATE inputs SET state = 'delivering', skipped = ? WHERE id = ?",
            (json.dumps(skipped, ensure_ascii=False), input_id),
        )

    def finish(
        self,
        input_id: int,
        state: str,
        stored_path: str | None,
        *,
        error: str | None = None,
        note: str | None = None,
        skipped: list[dict[str, str]] | None = None,
    ) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"not a final state: {state}")
        fields = "state = ?, stored_path = ?, error = ?, note = COALESCE(?, note), finished_at = ?"
        params: list[Any] = [state, stored_path, error, note, now()]
        if skipped is not None:
            fields += ", skipped = ?"
            params.append(json.dumps(skipped, ensure_ascii=False))
        self.db.execute(f"UPDATE inputs SET {fields} WHERE id = ?", (*params, input_id))  # noqa: S608 - fixed text

    def note_skipped(self, input_id: int, skipped: list[dict[str, str]]) -> None:
        self.db.execute("UPDATE inputs SET skipped = ? WHERE id = ?",
                        (json.dumps(skipped, ensure_ascii=False), input_id))

    def delivery_failed(self, input_id: int, error: str) -> None:
        self.db.execute("UPDATE inputs SET error = ? WHERE id = ?", (error, input_id))

    def requeue(self, input_id: int, work_path: str, force: bool) -> None:
        """``retry``: the input is back in the work folder and will be processed from the start."""
        self.db.execute(
            "UPDATE inputs SET state = 'waiting', work_path = ?, error = NULL, note = NULL, "
            "skipped = '[]', force = ?, finished_at = NULL WHERE id = ?",
            (work_path, int(force), input_id),
        )

    def unfinished(self, flow: str) -> list[InputRow]:
        rows = self.db.execute(
            "SELECT * FROM inputs WHERE flow = ? AND state NOT IN ('done', 'duplicate', 'failed') ORDER BY id",
            (flow,),
        ).fetchall()
        return [_input(r) for r in rows]

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

    def counts(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for row in self.db.execute(
            "SELECT flow, state, COUNT(*) AS n, MAX(COALESCE(finished_at, started_at, received_at)) AS last "
            "FROM inputs GROUP BY flow, state"
        ):
            entry = result.setdefault(row["flow"], {"states": {}, "last_run": None})
            entry["states"][row["state"]] = row["n"]
            if row["last"] and (entry["last_run"] is None or row["last"] > entry["last_run"]):
                entry["last_run"] = row["last"]
        return result

    # -- health of sources and destinations -------------------------------------------------

    def place_ok(self, place: str, flow: str) -> bool:
        """Record that ``place`` answered; ``True`` when it had been failing (a change of state)."""
        with self.transaction() as db:
            row = db.execute("SELECT failing_since FROM health WHERE place = ?", (place,)).fetchone()
            db.execute(
                "INSERT INTO health (place, flow, last_ok) VALUES (?, ?, ?) ON CONFLICT (place) DO UPDATE SET "
                "last_ok = excluded.last_ok, error = NULL, failing_since = NULL, alerted = 0",
                (place, flow, now()),
            )
        return bool(row and row["failing_since"])

    def place_failed(self, place: str, flow: str, error: str) -> bool:
        """Record a failure of ``place``; ``True`` when it had been fine until now (a change of state)."""
        stamp = now()
        with self.transaction() as db:
            row = db.execute("SELECT failing_since FROM health WHERE place = ?", (place,)).fetchone()
            db.execute(
                "INSERT INTO health (place, flow, last_error, error, failing_since) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (place) DO UPDATE SET last_error = excluded.last_error, error = excluded.error, "
                "failing_since = COALESCE(health.failing_since, excluded.failing_since)",
                (place, flow, stamp, error, stamp),
            )
        return not (row and row["failing_since"])

    def health(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM health ORDER BY place")]

    def due_alerts(self, older_than: str) -> list[dict[str, Any]]:
        """Places failing since before ``older_than`` that no alert was sent for yet."""
        rows = self.db.execute(
            "SELECT * FROM health WHERE failing_since IS NOT NULL AND failing_since <= ? AND alerted = 0",
            (older_than,),
        ).fetchall()
        return [dict(r) for r in rows]

    def alerted(self, place: str) -> None:
        self.db.execute("UPDATE health SET alerted = 1 WHERE place = ?", (place,))

    # -- outputs --------------------------------------------------------------------------

    def outputs(self, input_id: int) -> list[OutputRow]:
        rows = self.db.execute("SELECT * FROM outputs WHERE input_id = ? ORDER BY id", (input_id,)).fetchall()
        return [OutputRow(**dict(r)) for r in rows]

    def output_uploaded(self, output_id: int) -> None:
        self.db.execute("UPDATE outputs SET state = 'uploaded' WHERE id = ?", (output_id,))

    def output_delivered(self, output_id: int, location: str) -> None:
        self.db.execute(
            "UPDATE outputs SET state = 'delivered', location = ?, delivered_at = ? WHERE id = ?",
            (location, now(), output_id),
        )

    def output_marked(self, output_id: int) -> None:
        self.db.execute("UPDATE outputs SET state = 'marked' WHERE id = ?", (output_id,))

    def as_dict(self, row: InputRow) -> dict[str, Any]:
        """The JSON form ``gateway journal --json`` prints, one object per input."""
        outputs = self.outputs(row.id)
        return {
            "id": row.id,
            "flow": row.flow,
            "source": row.source,
            "name": row.name,
            "size": row.size,
            "sha256": row.sha256,
            "state": row.state,
            "outputs": [o.location for o in outputs if o.location],
            "pending_outputs": [o.name for o in outputs if not o.location],
            "error": row.error,
            "skipped": row.skipped,
            "note": row.note,
            "attempts": row.attempts,
            "stored_path": row.stored_path,
            "received_at": row.received_at,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }


def _input(row: sqlite3.Row) -> InputRow:
    data = dict(row)
    data["skipped"] = json.loads(data["skipped"] or "[]")
    data["force"] = bool(data["force"])
    return InputRow(**data)
