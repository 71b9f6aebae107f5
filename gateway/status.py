"""Where every flow stands: what ``gateway status`` prints and the console's overview shows.

One function for both, so that the terminal and the web page can never disagree on what
"waiting" means: files at the source plus inputs the journal holds as waiting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True)
class Settling:
    """A file at a local source that is still being written (or waits for its marker)."""

    name: str
    seconds: float  # until it counts as complete if nothing changes


@dataclass(frozen=True)
class FlowStatus:
    flow: str
    enabled: bool
    waiting: int | None  # files at the source plus inputs waiting in the journal; None: a remote source
    in_progress: int
    done: int
    duplicate: int
    failed: int  # quarantined
    all_skipped: int  # done with a warning: every record was skipped, nothing delivered
    last_run: str | None
    waits_for: list[str]  # environment variables the flow needs that are not set
    ignored: dict[str, str]  # files at the source that are never taken, and why
    places: list[dict[str, Any]]  # the flow's sources and destinations with their health
    settling: list[Settling] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return self.failed

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``gateway status --json`` prints it one per line)."""
        return {**asdict(self), "quarantined": self.quarantined}


PLACE_FIELDS = ("place", "last_ok", "last_error", "error", "failing_since")


def flow_statuses(engine: Engine) -> list[FlowStatus]:
    """Every configured flow, in gateway.yaml's order. Local inboxes are scanned; partners are not dialled."""
    counts = engine.journal.counts()
    health = engine.journal.health()
    found = []
    for name, flow in engine.inst.flows.items():
        c = counts.get(name, {"states": {}, "warnings": 0, "last_run": None})
        states = c["states"]
        source = engine.source(flow)
        settling: list[Settling] = []
        at_source: int | None
        if source.local_folder is not None:
            candidates = source.scan()
            at_source = len(candidates)
            for cand in candidates:
                remaining = source.settle_remaining(cand)
                if remaining > 0:
                    settling.append(Settling(cand.name, round(remaining, 1)))
        else:
            at_source = engine.waiting(flow)
        found.append(FlowStatus(
            flow=name,
            enabled=flow.config.enabled,
            waiting=None if at_source is None else at_source + states.get("waiting", 0),
            in_progress=states.get("processing", 0) + states.get("delivering", 0),
            done=states.get("done", 0),
            duplicate=states.get("duplicate", 0),
            failed=states.get("failed", 0),
            all_skipped=c.get("warnings", 0),
            last_run=c["last_run"],
            waits_for=engine.waits_for(flow),
            ignored=source.ignored(),
            places=[{k: h[k] for k in PLACE_FIELDS} for h in health if h["flow"] == name],
            settling=settling,
        ))
    return found
