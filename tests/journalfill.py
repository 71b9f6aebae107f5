"""A journal of many inputs, written straight through its connection: the console's browser test and
``bench/console.py`` search the same 100,000 entries."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from gateway.journal.sqlite import SqliteJournal


def key_of(i: int) -> str:
    """The order number of the ``i``-th input."""
    return f"{i:03d}-{i * 7 % 1000:03d}-{i % 997:03d}"


def fill_journal(path: Path, count: int) -> None:
    """``count`` inputs with an order number each, in one transaction (the engine would take an fsync per step);
    every 97th quarantined, the others done."""
    journal = SqliteJournal(path)
    try:
        db = journal.db
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        flows = ("rakuten-orders", "rakuten-fr-orders", "sol-shipping")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO inputs (id, flow, source, name, size, sha256, state, received_at, started_at, finished_at, "
            "attempts) VALUES (?, ?, 'folder inbox', ?, 4000, ?, ?, ?, ?, ?, 1)",
            ((i, flows[i % 3], f"orders_{i:06d}.xml", hashlib.sha256(str(i).encode()).hexdigest(),
              "failed" if i % 97 == 0 else "done", stamp, stamp, stamp)
             for i in range(1, count + 1)
             for stamp in [(start + dt.timedelta(minutes=5 * i)).isoformat(timespec="seconds")]))
        db.executemany("INSERT INTO record_keys (scope, key, input_id) VALUES ('rakuten-orders', ?, ?)",
                       ((key_of(i), i) for i in range(1, count + 1)))
        db.execute("COMMIT")
    finally:
        journal.close()
