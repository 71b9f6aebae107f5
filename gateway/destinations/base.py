"""The contract of every destination: deliver an output once, by its key, and say whether it did.

Read this first when adding a kind of destination.

A destination receives a :class:`Delivery`: a complete output staged in the work folder,
with a **key** that is unique in the installation and stable across restarts. The engine
drives each delivery through three steps and records in the journal between them::

    prepare(delivery)          optional: make it ready without anyone seeing it
                               (upload under a temporary name, spool an e-mail)
        journal: "uploaded"    from here on, the destination is ASKED before delivering again
    deliver(delivery, calls)   make it arrive (rename, send, call, insert); return where it is
        journal: "delivered"

After a crash, an output the journal shows as ``uploaded`` is not delivered blindly: the
engine asks :meth:`Destination.status`, and the destination answers from what it can see
(the temporary file still there: not delivered; gone: delivered; the service's own record of
the key; the staging table's key row). ``UNKNOWN`` makes the engine wait and ask again later,
never guess.

Rules every kind keeps (the conformance suite in ``tests/conformance`` checks them):

* ``deliver`` with the same key twice delivers once (the second call returns the location);
* ``status`` never changes anything;
* a place that cannot be reached raises :class:`~gateway.errors.DeliveryError` in plain words,
  and the delivery is tried again later; nothing a destination raises quarantines an input;
* secrets (passwords, tokens) appear in no message.

Kinds that make remote calls record each call through ``calls`` (a :class:`CallLog`) before
and after it, so that a call whose answer was lost is known and can be resolved by asking.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol


def temp_name(name: str) -> str:
    """The name a file has while it is not complete: hidden and ``.part``, ignored by importers."""
    return f".{name}.part"


@dataclass(frozen=True)
class Delivery:
    """One output on its way to one destination."""

    key: str  # unique in the installation, stable across restarts (``<installation>-<output id>``)
    name: str  # its name at the destination (the mapping's ``file``)
    staged: Path  # the complete output in the work folder
    flow: str
    input_id: int
    output: str  # the mapping output it comes from

    @property
    def temp_name(self) -> str:
        """A temporary name that is this delivery's alone (two installations sharing a folder never clash)."""
        return f".{self.name[:120]}.{self.key}.part"


class Delivered(enum.Enum):
    YES = "delivered"
    NO = "not delivered"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Status:
    """A destination's answer to "did delivery ``key`` arrive?"."""

    delivered: Delivered
    location: str | None = None  # where it is, when it arrived
    detail: str = ""  # why the answer is UNKNOWN, in words


class CallLog(Protocol):
    """The journal's record of one delivery's remote calls (see :mod:`gateway.journal`)."""

    def started(self, call: str, request: str) -> None:
        """Before the call: ``call`` names it within the delivery (``acceptsale 260306083``)."""

    def answered(self, call: str, answer: str) -> None:
        """After it: what the service answered, in words."""

    def failed(self, call: str, answer: str) -> None:
        """After it: the service answered that it did not take the call (down, credentials refused)."""

    def state(self, call: str) -> str | None:
        """``None`` (never made), ``"started"`` (answer not recorded: ask the service), ``"answered"``, or
        ``"failed"`` (the service did not take it: it may be made again)."""

    def record(self, entries: list[tuple[str, str, str]]) -> None:
        """Several records in one step: (call, "started" | "answered" | "failed", request or answer)."""


class NoCalls:
    """A call log for kinds that make no calls, and for tests."""

    def __init__(self) -> None:
        self.log: dict[str, tuple[str, str | None]] = {}

    def started(self, call: str, request: str) -> None:
        self.log[call] = ("started", None)

    def answered(self, call: str, answer: str) -> None:
        self.log[call] = ("answered", answer)

    def failed(self, call: str, answer: str) -> None:
        self.log[call] = ("failed", answer)

    def record(self, entries: list[tuple[str, str, str]]) -> None:
        for call, state, text in entries:
            {"started": self.started, "answered": self.answered, "failed": self.failed}[state](call, text)

    def state(self, call: str) -> str | None:
        entry = self.log.get(call)
        return entry[0] if entry else None


class Destination(ABC):
    """A place outputs are delivered to. See the module docstring for the contract."""

    kind: ClassVar[str] = ""
    #: Whether the flow may ask for a marker file (``marker: .done``) after each output.
    takes_markers: ClassVar[bool] = False

    @abstractmethod
    def describe(self) -> str:
        """Where this is, in words for the journal and messages (no secrets)."""

    def validate(self, item: Delivery) -> None:  # noqa: B027 - most kinds take any file
        """Before the outputs are committed: raise ``InputError`` when ``item`` could never arrive here
        (a value a staging table's column cannot hold), so that its input is quarantined with the reason
        instead of committing an output that would wait forever. ``DeliveryError`` when this cannot be
        told now (the database is down): the input then waits, uncommitted. ``item.key`` is not set yet."""

    def prepare(self, item: Delivery) -> None:  # noqa: B027 - most kinds have nothing to prepare
        """Make the output ready without anyone seeing it; repeating it replaces what was there."""

    @abstractmethod
    def deliver(self, item: Delivery, calls: CallLog) -> str:
        """Make the output arrive, once per key; return its path or URL at the destination."""

    @abstractmethod
    def status(self, item: Delivery, calls: CallLog) -> Status:
        """Whether ``item`` arrived, asked after a crash left its delivery unfinished; changes nothing."""

    def write_marker(self, item: Delivery, suffix: str) -> None:
        """Write the empty marker ``name + suffix`` that tells an importer ``name`` is complete."""
        raise NotImplementedError(f"{self.describe()} takes no marker files")

    def close(self) -> None:  # noqa: B027 - most destinations hold nothing open
        """Release connections."""
