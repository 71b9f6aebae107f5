"""The second line of defence for "never twice": a ledger of delivered record keys beside the journal.

The journal remembers every order number ever delivered. If it is lost (deleted, truncated,
replaced by an empty one when a disk was restored), a new, empty journal would deliver the same
orders again and say nothing. Two things prevent that:

* every commit also appends its record keys to ``archive/delivered-keys.log`` (JSON lines, one
  per key, flushed to disk), kept in the archive folder because that is not the state folder the
  journal lives in, and archive clean-up only removes day folders;
* a journal that was just created in an installation that has processed inputs before (the
  ledger, the archive or the quarantine says so) is marked as needing restoring, and nothing runs
  until the admin restores it from a backup or takes the keys back from the ledger
  (``gateway journal restore``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from .clock import Clock, stamp
from .config import Installation
from .i18n import _
from .journal import Journal, JournalLost

LEDGER_NAME = "delivered-keys.log"
_FLAG = ("gateway", "journal-needs-restoring")


def ledger_path(inst: Installation) -> Path:
    return inst.archive_dir / LEDGER_NAME


def append_keys(inst: Installation, scope: str, keys: list[str], input_id: int, clock: Clock) -> None:
    """Add the keys a commit recorded to the ledger (after the journal's commit: a key here was delivered)."""
    if not keys:
        return
    path = ledger_path(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    at = stamp(clock)
    lines = "".join(json.dumps({"scope": scope, "key": k, "input": input_id, "at": at}, ensure_ascii=False) + "\n"
                    for k in keys)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(lines)
        fh.flush()
        os.fsync(fh.fileno())


def ledger_entries(inst: Installation) -> Iterator[tuple[str, str]]:
    """(scope, key) of every line of the ledger; a line cut off by a crash is left out."""
    path = ledger_path(inst)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                yield str(entry["scope"]), str(entry["key"])
            except (ValueError, KeyError, TypeError):
                continue


def _history(inst: Installation) -> str | None:
    """What shows that this installation has processed inputs before, in words; ``None`` if nothing does."""
    ledger = ledger_path(inst)
    if ledger.is_file() and ledger.stat().st_size > 0:
        return _("the key ledger {file} lists delivered orders").format(file=ledger)
    for folder, words in ((inst.archive_dir, _("{folder} holds archived inputs")),
                          (inst.quarantine_dir, _("{folder} holds quarantined inputs"))):
        if folder.is_dir() and any(p.is_dir() and any(p.iterdir()) for p in folder.iterdir()):
            return words.format(folder=folder)
    return None


def mark(inst: Installation, journal: Journal) -> str | None:
    """Note a journal that replaced a lost one (on every opening: whichever command opens it first).

    Returns why it needs restoring, or ``None`` when it does not.
    """
    if journal.created:
        history = _history(inst)
        if history is not None:
            journal.remember(*_FLAG, history)
    return journal.recall(*_FLAG) or None


def open_for(inst: Installation, clock: Clock | None = None) -> Journal:
    """The installation's journal, with a replaced one noted (see :func:`mark`)."""
    from .journal import open_journal

    journal = open_journal(inst.journal_path, clock)
    try:
        mark(inst, journal)
    except BaseException:
        journal.close()
        raise
    return journal


def guard(inst: Installation, journal: Journal) -> None:
    """Refuse to work with a journal that replaced a lost one, until the admin has decided what to do."""
    reason = mark(inst, journal)
    if reason:
        raise JournalLost(
            str(inst.journal_path),
            _("it is new, but this installation has processed inputs before ({reason}); with an empty journal, "
              "orders already delivered would be delivered again, so nothing is processed until you decide").format(
                  reason=reason),
        )


def restore(inst: Installation, journal: Journal, *, start_empty: bool = False) -> int:
    """Take the ledger's keys into the journal (or, with ``start_empty``, accept the empty journal as it is)."""
    count = 0
    if not start_empty:
        count = journal.restore_keys(ledger_entries(inst),
                                     _("record keys restored from {file}").format(file=ledger_path(inst)))
    journal.remember(*_FLAG, "")
    return count
