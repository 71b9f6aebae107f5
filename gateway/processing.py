"""One input from its work file to committed outputs: hash, duplicate check, convert, commit.

The commit is the point of no return (see :mod:`gateway.engine`): the outputs and the record
keys are recorded together, after checking once more that no other process delivered the
same keys or content meanwhile. Before it, a crash loses nothing (the staged files are thrown
away and the input is converted again); after it, the outputs *will* be delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import Clock
from .config import Flow, Installation
from .continuity import append_keys
from .crashpoints import crashpoint
from .delivery import Deliverer
from .errors import DeliveryError, InputError
from .files import printable
from .finalize import Finisher, stage_dir
from .i18n import _, ngettext
from .isolation import ConversionFailed, run_isolated
from .journal import InputRow, Journal, StagedRecord
from .summary import Progress

if TYPE_CHECKING:
    from .convert import Conversion, MailSettings

log = logging.getLogger("gateway")

COMMIT_ATTEMPTS = 5


class UnexpectedFailure(Exception):
    """A conversion ended without an outcome of its own (a crash, a limit): counted towards ``max_attempts``."""

    def __init__(self, words: str, details: str = "") -> None:
        super().__init__(words)
        self.words = words
        self.details = details


def sha256_of(path: Path) -> tuple[str, int]:
    """The content's hash and size; for a batch folder, over its files' names and contents."""
    import hashlib

    if path.is_dir():
        from .readers.batch import hash_batch

        return hash_batch(path)  # opens regular files only; a link, pipe or device refuses the batch
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Processor:
    def __init__(self, inst: Installation, journal: Journal, clock: Clock, progress: Progress,
                 finisher: Finisher, deliverer: Deliverer, isolate: bool = True) -> None:
        self.isolate = isolate  # convert in a child process with limits (off only for embedding without fork)
        self.inst = inst
        self.journal = journal
        self.clock = clock
        self.progress = progress
        self.finisher = finisher
        self.deliverer = deliverer

    def process(self, flow: Flow, row: InputRow, work: Path) -> str:
        try:
            sha, size = sha256_of(work)
        except InputError as exc:  # a batch folder holding a link, a pipe or too deep a tree
            return self.finisher.quarantine(flow, row, work, str(exc.located(file=row.name)))
        self.journal.start(row.id, sha, size)
        crashpoint("started")
        stage = stage_dir(self.inst, flow, row.id)
        check_content = not row.force and flow.config.same_content_is_duplicate
        for _attempt in range(COMMIT_ATTEMPTS):
            if check_content:
                earlier = self.journal.same_content_delivered(flow.name, sha, row.id)
                if earlier is not None:
                    return self.finisher.duplicate(flow, row, work,
                                                   _("same content as input {id}").format(id=earlier))
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            try:
                result = self._convert(flow, row, work, stage)
            except InputError as exc:
                return self.finisher.quarantine(flow, row, work, str(exc), where=exc.where())
            crashpoint("converted")
            try:
                self._validate(flow, row, result)
            except InputError as exc:
                return self.finisher.quarantine(flow, row, work, str(exc))
            except DeliveryError as exc:
                shutil.rmtree(stage, ignore_errors=True)
                log.warning(_("{flow}: {name}: {error}; it waits and is converted again on the next run").format(
                    flow=flow.name, name=printable(row.name), error=printable(str(exc))))
                self.journal.note_error(row.id, _("waiting: {error}").format(error=exc))
                return "processing"
            if not result.outputs:
                shutil.rmtree(stage, ignore_errors=True)
                if result.skipped and result.already_delivered == len(result.skipped):
                    note = ngettext("the only record was delivered before",
                                    "all {count} records were delivered before",
                                    len(result.skipped)).format(count=len(result.skipped))
                    return self.finisher.duplicate(flow, row, work, note, result.skipped)
                if result.skipped:
                    return self.finisher.all_skipped(flow, row, work, result.skipped)
                return self.finisher.done(flow, row, work, note=_("no records to convert"))
            scope = flow.mapping.key_scope or flow.name
            staged = [StagedRecord(o.output, o.destination, o.name, str(o.path)) for o in result.outputs]
            if self.journal.commit(row.id, staged, scope, result.keys, result.skipped,
                                   content=(flow.name, sha) if check_content else None):
                append_keys(self.inst, scope, result.keys, row.id, self.clock)
                break
            log.info("%s: %s: another process delivered some of its records meanwhile; converting again",
                     flow.name, printable(row.name))
        else:  # pragma: no cover - needs a competing process to win five times in a row
            raise DeliveryError(_("{name}: could not commit after {count} attempts").format(
                name=row.name, count=COMMIT_ATTEMPTS))
        crashpoint("committed")
        return self.deliver_and_finish(flow, self.journal.get(row.id), work)

    def _validate(self, flow: Flow, row: InputRow, result: Conversion) -> None:
        """Each destination looks at its outputs before the commit (a staging table checks every value)."""
        from .destinations.base import Delivery

        for out in result.outputs:
            destination = self.deliverer.endpoints.destination(flow, out.destination)
            destination.validate(Delivery(key="", name=out.name, staged=out.path, flow=flow.name, input_id=row.id,
                                          output=out.output))

    def _convert(self, flow: Flow, row: InputRow, work: Path, stage: Path) -> Conversion:
        """Convert in a child process with limits (:mod:`gateway.isolation`); the outputs land in ``stage``."""
        from .convert import Conversion, convert, input_info

        mapping = flow.mapping
        scope = mapping.key_scope or flow.name
        info = input_info(row.id, row.name, flow.name, row.received_at, self.clock.today())
        mail = mail_settings(self.inst)

        def job(progress: Callable[[], None]) -> dict[str, Any]:
            journal = self.journal.reopen() if self.isolate else self.journal
            result = convert(
                mapping, work, row.name, stage, info, flow.settings,
                key_delivered=lambda key: journal.key_owner(scope, key),
                on_record=progress, mail=mail, record_seconds=self.inst.record_seconds,
            )
            return result.as_dict()

        if not self.isolate:
            return Conversion.from_dict(job(self.progress.record_done))
        try:
            return Conversion.from_dict(run_isolated(job, self.inst.limits, self.progress.record_done))
        except ConversionFailed as exc:
            raise UnexpectedFailure(exc.words, exc.details) from None

    def deliver_and_finish(self, flow: Flow, row: InputRow, work: Path | None) -> str:
        try:
            self.deliverer.deliver(flow, row)
        except DeliveryError as exc:
            log.debug("%s: %s: %s (will be tried again)", flow.name, printable(row.name), printable(str(exc)))
            self.journal.note_error(row.id, _("delivery waits: {error}").format(error=exc))
            return "delivering"
        shutil.rmtree(stage_dir(self.inst, flow, row.id), ignore_errors=True)
        return self.finisher.done(flow, row, work)


def mail_settings(inst: Installation, date: dt.datetime | None = None) -> MailSettings:
    """What e-mails take from gateway.yaml: the sender and the domain of Message-IDs."""
    from .convert import MailSettings

    if inst.smtp is None:
        return MailSettings(date=date)
    return MailSettings(sender=inst.smtp.sender, domain=inst.smtp.domain, date=date)
