"""The journal: the gateway's memory of every input, its outputs, and every record key delivered.

Recovery trusts it after a crash, so everything here is stated as a contract that any
implementation keeps; the engine and the command line only ever see :class:`Journal`.
SQLite (:mod:`gateway.journal.sqlite`) is the implementation today; a second one (PostgreSQL,
for several gateway instances sharing work) implements the same class and nothing in the
engine changes.

States of an input::

    waiting ──► processing ──► delivering ──► done
                    │  │
                    │  └──► duplicate   (same content as a delivered input, or only known keys)
                    └─────► failed      (quarantined; ``retry`` puts it back to waiting)

States of an output: ``staged`` (complete in the work folder) → ``uploaded`` (handed to the
destination: uploaded under a temporary name, spooled, or a call under way; from here on the
destination is *asked* before the output is delivered again) → ``delivered`` → ``marked``
(its marker file written, when the flow wants one).

Errors: every failure of the journal itself raises a :class:`JournalError`; its subclass
says what the admin can do about it (wait for another program, free disk space, give the
gateway write access, restore a backup).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GatewayError
from ..i18n import N_, _

if TYPE_CHECKING:
    from ..clock import Clock


class InputState(enum.StrEnum):
    WAITING = "waiting"
    PROCESSING = "processing"
    DELIVERING = "delivering"
    DONE = "done"
    DUPLICATE = "duplicate"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({InputState.DONE, InputState.DUPLICATE, InputState.FAILED})


class OutputState(enum.StrEnum):
    STAGED = "staged"
    UPLOADED = "uploaded"
    DELIVERED = "delivered"
    MARKED = "marked"


class CallState(enum.StrEnum):
    """A remote call one delivery makes (accepting a sold unit, inserting an order)."""

    STARTED = "started"  # journaled before the call: if no answer follows, the service is asked
    ANSWERED = "answered"  # the call's outcome is known and recorded
    FAILED = "failed"  # the service answered that it did not take the call (it was down, a token expired):
    #                    nothing happened there, so the call may be made again


# -- errors -------------------------------------------------------------------------------------


class JournalError(GatewayError):
    """The journal cannot be used now. Nothing is lost: inputs wait where they are.

    ``advice`` is what the admin can do, in words.
    """

    advice = N_("see the message above; then run again")  # translated when the error is made

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(_(
            "the journal ({path}) cannot be used: {detail}. Nothing was lost: inputs wait in their inbox or "
            "work folder. {advice}").format(path=path, detail=detail, advice=_(self.advice)))


class JournalBusy(JournalError):
    advice = N_("Another gateway process or a program holding the file kept it locked too long; run again later.")


class JournalFull(JournalError):
    advice = N_("The disk is full or failing: free disk space (or check the disk), then run again.")


class JournalReadOnly(JournalError):
    advice = N_("The gateway may not write the journal: give the user the gateway runs as write access to it and "
                "its folder.")


class JournalCorrupt(JournalError):
    advice = N_("The file is damaged or is not a gateway journal: restore it from a backup; do not start over with "
                "an empty journal, or orders already delivered would be delivered again.")


class JournalLost(JournalError):
    advice = N_("Restore state/journal.sqlite from a backup; or run 'gateway journal restore' to take the order "
                "numbers already delivered from the key ledger (archive/delivered-keys.log) into the new journal, "
                "after which the gateway runs again and never delivers those orders twice.")


class JournalUnavailable(JournalError):
    advice = N_("Check that the state folder exists and that the gateway may read and write it.")


# -- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputRow:
    id: int
    flow: str
    source: str
    name: str
    size: int | None
    sha256: str | None
    state: InputState
    work_path: str | None
    stored_path: str | None
    error: str | None
    skipped: list[dict[str, str]]
    note: str | None
    warning: str | None  # done, but worth a person's look (every record skipped)
    attempts: int
    failures: int
    force: bool
    received_at: str
    started_at: str | None
    finished_at: str | None
    #: Where in the input a quarantining error was found (file, line, column, record, field, value,
    #: mapping), so that a page can show the line and field apart from the sentence in ``error``.
    error_where: dict[str, Any] | None = None


@dataclass(frozen=True)
class OutputRow:
    id: int
    input_id: int
    output: str
    destination: str
    name: str
    staged_path: str
    state: OutputState
    location: str | None
    delivered_at: str | None


@dataclass(frozen=True)
class CallRow:
    call: str
    state: CallState
    request: str
    answer: str | None
    at: str


@dataclass(frozen=True)
class NoteRow:
    """An operator's note on an input (why it was retried, who was asked for a new file)."""

    id: int
    input_id: int
    author: str
    text: str
    at: str


@dataclass(frozen=True)
class JournalQuery:
    """What the console's journal page searches by; every part is optional and they all must hold.

    ``name`` is part of the input's file name (case-insensitive), ``key`` a record key it delivered
    or skipped-as-known (an order number, exact), ``since``/``until`` bound ``received_at`` (journal
    stamps, ``until`` excluded). Pages go newest first: ``before`` is the last id of the previous page.
    """

    name: str | None = None
    key: str | None = None
    flow: str | None = None
    state: InputState | None = None
    since: str | None = None
    until: str | None = None
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class JournalPage:
    rows: list[InputRow]
    total: int  # entries matching the query, on every page
    next_before: int | None  # ``before`` of the next page, ``None`` on the last one


@dataclass(frozen=True)
class StagedRecord:
    """An output to record at the commit: which mapping output, which destination, its name and file."""

    output: str
    destination: str
    name: str
    staged_path: str


class Journal(ABC):
    """What the engine, the service, alerts and the command line may ask of the journal.

    Every method is one atomic step: it happened completely or not at all, and it is on disk
    when it returns (a journal row lost in a power cut would mean an output delivered twice).
    Failures raise :class:`JournalError`.
    """

    @property
    @abstractmethod
    def installation_id(self) -> str:
        """A random id made with the journal: keeps two installations' temporary names apart."""

    @property
    @abstractmethod
    def created(self) -> bool:
        """Whether this very opening created the journal (empty until now)."""

    @abstractmethod
    def restore_keys(self, entries: Iterable[tuple[str, str]], note: str) -> int:
        """Record (scope, key) pairs as delivered, from the key ledger after a journal was lost; returns how many."""

    # -- inputs -----------------------------------------------------------------------------

    @abstractmethod
    def register(self, flow: str, source: str, name: str, work_path: str, size: int) -> InputRow:
        """A new input claimed into ``work_path``, state ``waiting``."""

    @abstractmethod
    def get(self, input_id: int) -> InputRow:
        """The input ``input_id``; ``KeyError`` when there is none."""

    def find(self, input_id: int) -> InputRow | None:
        try:
            return self.get(input_id)
        except KeyError:
            return None

    @abstractmethod
    def by_work_path(self, work_path: str) -> InputRow | None:
        """The input whose work file is ``work_path``."""

    @abstractmethod
    def start(self, input_id: int, sha256: str, size: int) -> None:
        """Processing begins (again): state ``processing``, one more attempt, the old error cleared."""

    @abstractmethod
    def same_content_delivered(self, flow: str, sha256: str, input_id: int) -> int | None:
        """Another input of ``flow`` with this content that was (or is being) delivered."""

    @abstractmethod
    def key_owner(self, scope: str, key: str) -> int | None:
        """The input that delivered record key ``key`` (an order number) in ``scope``."""

    @abstractmethod
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
        """The point of no return: record the outputs as ``staged`` and the keys as delivered.

        In one atomic step, after checking that no key was delivered meanwhile by another
        input and, with ``content`` = (flow, sha256), that no other input with this content
        was. ``False`` (and nothing recorded) when such a check fails.
        """

    @abstractmethod
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
        """A final state (done, duplicate, failed) and where the input is kept now; ``where`` locates ``error``."""

    @abstractmethod
    def note_skipped(self, input_id: int, skipped: list[dict[str, str]]) -> None:
        """The records left out and why."""

    @abstractmethod
    def note_error(self, input_id: int, error: str) -> None:
        """Why an input waits (a destination down, a full disk); it is tried again."""

    @abstractmethod
    def count_failure(self, input_id: int, error: str) -> int:
        """An unexpected error while processing; returns how many the input has had since its last retry."""

    @abstractmethod
    def requeue(self, input_id: int, work_path: str, force: bool) -> None:
        """``retry``: the input is back in the work folder and is processed from the start."""

    @abstractmethod
    def unfinished(self, flow: str) -> list[InputRow]:
        """Inputs of ``flow`` not in a final state, oldest first."""

    @abstractmethod
    def entries(self, flow: str | None = None, limit: int | None = None) -> list[InputRow]:
        """Inputs, oldest first (the newest ``limit`` of them)."""

    @abstractmethod
    def counts(self) -> dict[str, dict[str, Any]]:
        """Per flow: ``{"states": {state: n}, "warnings": n, "last_run": stamp}``."""

    @abstractmethod
    def search(self, query: JournalQuery) -> JournalPage:
        """One page of the inputs matching ``query``, newest first; fast on a journal of 100,000 inputs."""

    @abstractmethod
    def record_keys(self, input_id: int) -> list[tuple[str, str]]:
        """The (scope, key) pairs, order numbers, that ``input_id`` delivered."""

    # -- operators' notes ---------------------------------------------------------------------

    @abstractmethod
    def add_note(self, input_id: int, author: str, text: str) -> NoteRow:
        """Keep an operator's note on an input; notes outlive retries (``KeyError`` for an unknown input)."""

    @abstractmethod
    def notes(self, input_id: int) -> list[NoteRow]:
        """The notes on an input, oldest first."""

    # -- outputs ----------------------------------------------------------------------------

    @abstractmethod
    def outputs(self, input_id: int) -> list[OutputRow]:
        """The outputs of an input, in the order they were staged."""

    @abstractmethod
    def output(self, output_id: int) -> OutputRow:
        """One output by its id; ``KeyError`` when there is none."""

    @abstractmethod
    def output_uploaded(self, output_id: int) -> None:
        """Handed to the destination: from now on it is asked before delivering again."""

    @abstractmethod
    def output_delivered(self, output_id: int, location: str) -> None:
        """Delivered; ``location`` is the path or URL it has there."""

    @abstractmethod
    def output_marked(self, output_id: int) -> None:
        """Its marker file is written."""

    # -- remote calls of a delivery -----------------------------------------------------------

    @abstractmethod
    def call_started(self, delivery: str, call: str, request: str) -> None:
        """A call is about to be made (recorded first, so that a lost answer is known to be possible)."""

    @abstractmethod
    def call_answered(self, delivery: str, call: str, answer: str) -> None:
        """The call's outcome."""

    @abstractmethod
    def call_failed(self, delivery: str, call: str, answer: str) -> None:
        """The service answered that it did not take the call; it may be made again."""

    @abstractmethod
    def calls(self, delivery: str) -> dict[str, CallRow]:
        """The calls of one delivery, by their name."""

    def call(self, delivery: str, call: str) -> CallRow | None:
        """One call of a delivery (a delivery of 100,000 stock updates asks for each of its calls)."""
        return self.calls(delivery).get(call)

    def record_calls(self, delivery: str, entries: list[tuple[str, CallState, str]]) -> None:
        """Several calls' records (call, state, request or answer) in one step: a group of calls is
        journaled as started before any of them is made, and their answers after they came."""
        for call, state, text in entries:
            if state is CallState.STARTED:
                self.call_started(delivery, call, text)
            elif state is CallState.ANSWERED:
                self.call_answered(delivery, call, text)
            else:
                self.call_failed(delivery, call, text)

    # -- small values kept between runs -------------------------------------------------------

    @abstractmethod
    def remember(self, scope: str, key: str, value: str) -> None:
        """Keep ``value`` (a watermark, a purchase's item ids) under ``scope``/``key``; replaces."""

    @abstractmethod
    def recall(self, scope: str, key: str) -> str | None:
        """What was remembered, or ``None``."""

    # -- health of sources and destinations -------------------------------------------------

    @abstractmethod
    def place_ok(self, place: str, flow: str) -> bool:
        """Record that ``place`` answered; ``True`` when it had been failing (a change of state)."""

    @abstractmethod
    def place_failed(self, place: str, flow: str, error: str) -> bool:
        """Record a failure of ``place``; ``True`` when it had been fine until now (a change of state)."""

    @abstractmethod
    def health(self) -> list[dict[str, Any]]:
        """Every place with ``last_ok``, ``last_error``, ``error``, ``failing_since``."""

    @abstractmethod
    def due_alerts(self, older_than: str) -> list[dict[str, Any]]:
        """Places failing since before ``older_than`` that no alert was sent for yet."""

    @abstractmethod
    def alerted(self, place: str) -> None:
        """An alert was sent for ``place``'s current failure."""

    # -- the rest ---------------------------------------------------------------------------

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
            "state": str(row.state),
            "outputs": [o.location for o in outputs if o.location],
            "pending_outputs": [o.name for o in outputs if not o.location],
            "error": row.error,
            "error_where": row.error_where,
            "skipped": row.skipped,
            "note": row.note,
            "warning": row.warning,
            "attempts": row.attempts,
            "stored_path": row.stored_path,
            "received_at": row.received_at,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
        }

    @abstractmethod
    def reopen(self) -> Journal:
        """A new connection to the same journal, for a worker process (connections do not survive ``fork``)."""

    @abstractmethod
    def close(self) -> None:
        """Release the journal (connections, locks)."""


def open_journal(path: Path, clock: Clock | None = None) -> Journal:
    """The installation's journal at ``path`` (SQLite), created when it does not exist yet."""
    from .sqlite import SqliteJournal

    return SqliteJournal(path, clock=clock)


__all__ = [
    "FINAL_STATES",
    "CallRow",
    "CallState",
    "InputRow",
    "InputState",
    "Journal",
    "JournalBusy",
    "JournalCorrupt",
    "JournalError",
    "JournalFull",
    "JournalLost",
    "JournalPage",
    "JournalQuery",
    "JournalReadOnly",
    "JournalUnavailable",
    "NoteRow",
    "OutputRow",
    "OutputState",
    "StagedRecord",
    "open_journal",
]
