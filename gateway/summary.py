"""What a run did, and what a progress display is told while it runs.

Kept apart from the engine so that the command line and the service can speak about a run
without importing the whole pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunSummary:
    """What one pass did, for the exit status and the closing line."""

    done: int = 0
    duplicate: int = 0
    failed: int = 0
    pending: int = 0  # could not be delivered now; kept and tried again
    all_skipped: int = 0  # done, but every record was skipped: a warning
    skipped_records: int = 0
    messages: list[str] = field(default_factory=list)
    not_running: list[str] = field(default_factory=list)  # flows waiting for their environment variables

    @property
    def exit_code(self) -> int:
        """0 all done; 1 an input was quarantined; 3 the gateway could not do all its work now (a place
        unreachable, a full disk, the journal): those inputs wait and the next run takes them; 4 all done,
        but some input had every record skipped (a warning). (2, a refused configuration, never gets this
        far.) The more urgent wins: 3, then 1, then 4; the rest stays visible in ``status`` and alerts."""
        if self.pending:
            return 3
        if self.failed:
            return 1
        return 4 if self.all_skipped else 0

    def add(self, other: RunSummary) -> None:
        self.done += other.done
        self.duplicate += other.duplicate
        self.failed += other.failed
        self.pending += other.pending
        self.all_skipped += other.all_skipped
        self.skipped_records += other.skipped_records
        self.messages.extend(other.messages)
        self.not_running.extend(n for n in other.not_running if n not in self.not_running)

    def count(self, state: str | None) -> None:
        """One input ended in ``state`` (``None``: another process had it)."""
        if state == "done":
            self.done += 1
        elif state == "all-skipped":
            self.done += 1
            self.all_skipped += 1
        elif state == "duplicate":
            self.duplicate += 1
        elif state == "failed":
            self.failed += 1
        elif state in ("delivering", "waiting", "processing"):
            self.pending += 1


class Progress:
    """What the engine tells a progress display; the default shows nothing."""

    def input_started(self, flow: str, name: str) -> None: ...

    def record_done(self) -> None: ...

    def input_finished(self, flow: str, name: str, state: str) -> None: ...
