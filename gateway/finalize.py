"""How an input ends: archived when done, put aside as a duplicate, or quarantined with its reason.

The journal is written first, the file moved second: a crash in between leaves a final state in
the journal and the file in the work folder, and recovery only has to finish the move.
Names in the archive and the quarantine are the partner's, shortened so that any file system
takes them (with the reason file's ending added); the journal keeps the full name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from .alerts import Alerts
from .clock import Clock
from .config import Flow, Installation
from .crashpoints import crashpoint
from .errors import InputError
from .files import move, printable, shorten, write_text_atomically
from .i18n import N_, _, ngettext
from .journal import InputRow, InputState, Journal

log = logging.getLogger("gateway")

REASON_SUFFIX = ".reason.txt"
#: The states of an input in words (translated where they are shown).
STATE_WORDS = (N_("waiting"), N_("processing"), N_("delivering"), N_("done"), N_("duplicate"), N_("failed"))
#: Bytes of a stored input's name: room for the reason file's ending, and its temporary name while it is
#: written (``.<name>.part``), within the usual 255.
STORED_NAME_LIMIT = 255 - len(REASON_SUFFIX) - len("..part")


def stage_dir(inst: Installation, flow: Flow, input_id: int) -> Path:
    """Where an input's outputs are written before they are committed."""
    return inst.work_dir / flow.name / ".stage" / str(input_id)


def stored_name(row: InputRow) -> str:
    return shorten(f"{row.id}--{row.name}", STORED_NAME_LIMIT)


class Finisher:
    def __init__(self, inst: Installation, journal: Journal, clock: Clock, alerts: Alerts) -> None:
        self.inst = inst
        self.journal = journal
        self.clock = clock
        self.alerts = alerts

    def archive_path(self, flow: Flow, row: InputRow) -> Path:
        return self.inst.archive_dir / flow.name / self.clock.today().isoformat() / stored_name(row)

    def done(self, flow: Flow, row: InputRow, work: Path | None, note: str | None = None,
             warning: str | None = None) -> str:
        target = self.archive_path(flow, row)
        self.journal.finish(row.id, InputState.DONE, str(target), note=note, warning=warning)
        crashpoint("finished")
        if work is not None and work.exists():
            move(work, target)
        return "done"

    def all_skipped(self, flow: Flow, row: InputRow, work: Path, skipped: list[dict[str, str]]) -> str:
        """Done, but nothing came of it: every record was left out by the mapping's rules. Worth a look
        (a wrong price list silently stops a whole catalog), so it is a warning, an alert and an exit code."""
        first = skipped[0]["reason"] if skipped else ""
        warning = ngettext(
            "the only record was skipped, so nothing was delivered; the reason: {reason}. If that is not meant, "
            "check the mapping's skip rules and settings",
            "all {count} records were skipped, so nothing was delivered; the first reason: {reason}. If that is not "
            "meant, check the mapping's skip rules and settings", len(skipped)).format(count=len(skipped), reason=first)
        note = ngettext("the only record was skipped", "all {count} records were skipped",
                        len(skipped)).format(count=len(skipped))
        self.journal.note_skipped(row.id, skipped)
        self.done(flow, row, work, note=note, warning=warning)
        log.warning("%s: %s: %s", flow.name, printable(row.name), warning)
        if self.alerts.enabled:
            self.alerts.all_skipped(flow.name, row.name, row.id, warning)
        return "all-skipped"

    def duplicate(self, flow: Flow, row: InputRow, work: Path, note: str,
                  skipped: list[dict[str, str]] | None = None) -> str:
        target = self.archive_path(flow, row)
        self.journal.finish(row.id, InputState.DUPLICATE, str(target), note=note, skipped=skipped)
        log.info("%s: %s is a duplicate (%s); nothing delivered", flow.name, printable(row.name), note)
        move(work, target)
        return "duplicate"

    def quarantine(self, flow: Flow, row: InputRow, work: Path, error: str, details: str = "",
                   where: dict[str, Any] | None = None) -> str:
        """Put the input aside with its reason; ``details`` (a traceback) goes into the reason file only,
        ``where`` (the error's file, line, field…) into the journal."""
        target = self.inst.quarantine_dir / flow.name / stored_name(row)
        self.journal.finish(row.id, InputState.FAILED, str(target), error=error, where=where)
        shutil.rmtree(stage_dir(self.inst, flow, row.id), ignore_errors=True)
        log.error(_("{flow}: {name} quarantined: {error}").format(
            flow=flow.name, name=printable(row.name), error=printable(error)))
        self.store_quarantined(work, target, error, details)
        if self.alerts.enabled:
            self.alerts.quarantined(flow.name, row.name, row.id, error)
        return "failed"

    def store_quarantined(self, work: Path, target: Path, error: str, details: str = "") -> None:
        reason = _(
            "{error}\n\n"
            "What to do: correct the file or the mapping, then run\n"
            "    gateway retry {id}\n"
            "to process it again. The journal (gateway journal) has the details.\n"
        ).format(error=error, id=target.name.split("--", 1)[0])
        if details:
            reason += "\n" + _("For the developers:\n{details}\n").format(details=details)
        write_text_atomically(target.with_name(target.name + REASON_SUFFIX), reason)
        move(work, target)

    def retry(self, row: InputRow) -> Path:
        """Put a quarantined (or duplicate) input back into the work folder to be processed again."""
        if row.state not in (InputState.FAILED, InputState.DUPLICATE) and not (
                row.state is InputState.DONE and row.warning):
            raise InputError(_("input {id} is {state}; only quarantined or duplicate inputs, and inputs whose "
                               "records were all skipped, can be retried").format(id=row.id, state=_(row.state)))
        if row.flow not in self.inst.flows:
            raise InputError(_("input {id} belongs to flow '{flow}', which is no longer configured").format(
                id=row.id, flow=row.flow))
        stored = Path(row.stored_path or "")
        if not stored.exists():
            raise InputError(_("input {id}: the file {path} is no longer there (archive retention?)").format(
                id=row.id, path=stored))
        flow = self.inst.flows[row.flow]
        token = self.clock.local_now().strftime("%Y%m%dT%H%M%S") + "-retry"
        work = self.inst.work_dir / flow.name / shorten(f"{token}-{row.id}--{row.name}", 200)
        work.parent.mkdir(parents=True, exist_ok=True)
        self.journal.requeue(row.id, str(work), force=row.state is not InputState.FAILED)
        move(stored, work)
        with contextlib.suppress(FileNotFoundError):
            stored.with_name(stored.name + REASON_SUFFIX).unlink()
        return work

    def purge_archive(self) -> None:
        """Delete archived inputs older than ``archive.keep_days`` (whole day folders)."""
        keep = self.inst.keep_days
        if keep <= 0 or not self.inst.archive_dir.is_dir():
            return
        limit = self.clock.today() - dt.timedelta(days=keep)
        for flow_dir in self.inst.archive_dir.iterdir():
            if not flow_dir.is_dir():
                continue
            for day_dir in flow_dir.iterdir():
                try:
                    day = dt.date.fromisoformat(day_dir.name)
                except ValueError:
                    continue
                if day < limit:
                    shutil.rmtree(day_dir, ignore_errors=True)
