"""The contract of every source: list what is ready, bring it in, and let go of it only when told.

Read this first when adding a kind of source.

The engine asks a source four things, in this order::

    scan()                    what is there now, complete or not (cheap to repeat)
    settle_remaining(c)       0 when a candidate is complete and may be taken
    fetch(c, work_dir)        THE CLAIM: bring it into the work folder; of two gateway
                              processes only one may succeed (None for the other)
        ... the journal records the input, converts it, commits its outputs ...
    acknowledge(c)            the journal holds the input's final state: now remove it at the
                              source (move to the remote archive, delete, confirm to an API)

A crash between ``fetch`` and ``acknowledge`` leaves the original where it was: the next run
fetches it again, and the journal recognises it (same content, or its record keys). That is
why ``acknowledge`` comes last and must be idempotent, and why ``fetch`` must never take away
anything it cannot give back.

Every candidate has an ``identity`` that stays the same across scans (a path, a remote path,
the id of a web-service answer): settling and acknowledging refer to it.

A place that cannot be reached raises :class:`~gateway.errors.DeliveryError` in plain words from
``scan`` or ``fetch``; only its own flows wait, and the engine records its health.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Candidate:
    """Something a scan found: a file in a folder, a file on a partner's server, an answer of a web service."""

    identity: str  # stable across scans: what settling and acknowledging refer to
    name: str  # shown to the admin and kept in the journal
    size: int
    changed: float  # when this machine last saw it change (seconds since the epoch)
    ready: bool = False  # complete without waiting (a marker file, a batch marker, an API answer)
    detail: Any = field(default=None, compare=False)  # the kind's own facts about it


class Source(ABC):
    """A place inputs come from. See the module docstring for the contract."""

    kind: ClassVar[str] = ""
    settle_seconds: float = 0.0
    #: Reading it is a call to another system (a database query, a web service): its candidate is always "read now",
    #: so the service reads it when the flow is due (its schedule, else each rescan), never just to look.
    polled: ClassVar[bool] = False

    @property
    def local_folder(self) -> Path | None:
        """The folder on this machine that file-system notifications can watch, if there is one."""
        return None

    @property
    def recursive_watch(self) -> bool:
        """Whether completion shows only inside sub-folders (a batch folder's marker file)."""
        return False

    @abstractmethod
    def describe(self) -> str:
        """Where this is, in words (no secrets)."""

    def origin(self, candidate: Candidate) -> str:
        """Where an input came from, for the journal."""
        return self.describe()

    @abstractmethod
    def scan(self) -> list[Candidate]:
        """Every candidate there now, complete or not, oldest first."""

    def settle_remaining(self, candidate: Candidate) -> float:
        """Seconds until ``candidate`` counts as complete if nothing changes (0: take it now)."""
        return 0.0

    @abstractmethod
    def fetch(self, candidate: Candidate, work_dir: Path) -> Path | None:
        """Claim ``candidate`` into a new path inside ``work_dir``; ``None`` if someone else took it or it changed."""

    def acknowledge(self, candidate: Candidate) -> None:  # noqa: B027 - a claimed local file needs nothing more
        """The input has reached a final state in the journal: remove it at the source. Idempotent."""

    def recover(self, work_dir: Path) -> None:  # noqa: B027 - most kinds leave nothing half-claimed
        """Finish claims that a crash interrupted (before ``scan``)."""

    def ignored(self) -> dict[str, str]:
        """Entries that look like inputs but are none (a link, a pipe, a folder), with why: for ``status``."""
        return {}

    def waiting(self) -> int | None:
        """How many candidates wait, for ``gateway status``; ``None`` when that would mean dialling out."""
        return None

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release connections."""
