"""The pipeline for each input: claim → read → map → write → validate → deliver → finalize.

The order of steps is what makes the guarantees hold across a crash at any point:

1. **Claim** (:meth:`Source.fetch <gateway.sources.base.Source.fetch>`): the input is brought
   into the work folder (renamed from a local inbox, downloaded from a partner), then locked
   (``flock``) and registered in the journal. Whatever holds the lock owns the input; a lock
   dies with its process, so a crashed owner's inputs are free again.
2. **Convert** into staged files in the work folder (:mod:`gateway.processing`). A crash here
   loses nothing: the staged files are thrown away and the input is converted again.
3. **Commit** (one atomic journal step): the content and the record keys are checked once
   more, the outputs are recorded as ``staged`` and the keys as delivered. From now on the
   outputs *will* be delivered, never produced again.
4. **Deliver** each output (:mod:`gateway.delivery`): prepared at the destination, recorded
   ``uploaded``, delivered, recorded ``delivered``. After a crash, an output recorded
   ``uploaded`` is not delivered blindly: the destination is asked whether it arrived.
5. **Finalize** (:mod:`gateway.finalize`): the journal says ``done`` (with the archive path),
   the input is moved to the archive, and the source is told (a partner's file is archived
   or deleted on the server). A ``done`` input still in the work folder is just moved.

An input is quarantined only for an ``InputError``, its own fault, or after failing
``max_attempts`` times with an unexpected error (a bug must not make the gateway retry it
forever). A destination that fails raises ``DeliveryError``: the input waits in the work
folder for the next run.

The engine receives its parts (journal, clock, registry of kinds); a test hands it a
journal on a temporary folder, a :class:`~gateway.clock.ManualClock`, or a registry with the
memory destination, without patching any module.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from .alerts import Alerts
from .clock import SYSTEM_CLOCK, Clock
from .config import Flow, Installation
from .continuity import guard
from .crashpoints import crashpoint
from .delivery import Deliverer
from .destinations.base import Destination
from .endpoints import Endpoints
from .errors import DeliveryError
from .files import move, original_name, printable, try_lock
from .finalize import Finisher, stage_dir
from .health import Places
from .i18n import _, ngettext
from .journal import InputRow, InputState, Journal, JournalError, open_journal
from .kinds import Registry
from .processing import Processor, UnexpectedFailure
from .sources.base import Candidate, Source
from .summary import Progress, RunSummary

log = logging.getLogger("gateway")

__all__ = ["Engine", "Progress", "RunSummary"]


class Engine:
    def __init__(
        self,
        installation: Installation,
        progress: Progress | None = None,
        *,
        journal: Journal | None = None,
        clock: Clock | None = None,
        kinds: Registry | None = None,
        isolate: bool = True,
    ) -> None:
        self.inst = installation
        self.clock = clock or SYSTEM_CLOCK
        self.journal = journal or open_journal(installation.journal_path, self.clock)
        try:
            guard(installation, self.journal)  # a lost journal must not mean orders delivered twice
        except BaseException:
            self.journal.close()
            raise
        installation.write_notes()  # the mappings checked at loading, for the next run (mapping.check_cache)
        self.progress = progress or Progress()
        self.kinds = kinds or installation.kinds
        self.stopping: Callable[[], bool] = lambda: False  # the service sets this to its stop request
        self._said_missing: dict[str, list[str]] = {}  # flows waiting for environment variables, as last logged
        self.alerts = Alerts(installation, self.journal, self.clock)
        self.places = Places(self.journal, self.alerts)
        self.endpoints = Endpoints(installation, self.kinds, self.clock, self.journal)
        self.finisher = Finisher(installation, self.journal, self.clock, self.alerts)
        self.deliverer = Deliverer(self.journal, self.endpoints, self.places)
        self.processor = Processor(installation, self.journal, self.clock, self.progress, self.finisher,
                                   self.deliverer, isolate)

    def close(self) -> None:
        self.endpoints.close()
        self.journal.close()

    # -- wiring -------------------------------------------------------------------------

    def source(self, flow: Flow) -> Source:
        """The flow's source; kept between passes (an SFTP source remembers what its scans saw)."""
        return self.endpoints.source(flow)

    def destination(self, flow: Flow, name: str) -> Destination:
        return self.endpoints.destination(flow, name)

    def set_destination(self, flow: str, name: str, destination: Destination) -> None:
        """Replace a destination (tests use a ``MemoryDestination``)."""
        self.endpoints.set_destination(flow, name, destination)

    def work_dir(self, flow: Flow) -> Path:
        return self.inst.work_dir / flow.name

    # -- the passes ---------------------------------------------------------------------

    def run_once(self, flows: Iterable[Flow], wait_for_settle: bool = True) -> RunSummary:
        """Recover unfinished work, then process everything waiting now (``gateway run --once``)."""
        summary = RunSummary()
        flows = list(flows)
        for flow in flows:
            summary.add(self.recover(flow))
        for flow in flows:
            summary.add(self.drain(flow, wait_for_settle=wait_for_settle))
        self.purge_archive()
        return summary

    def recover(self, flow: Flow) -> RunSummary:
        """Finish what a crashed or interrupted run left in the work folder, oldest first."""
        summary = RunSummary()
        work = self.work_dir(flow)
        self.source(flow).recover(work)
        waiting = [p for p in work.iterdir() if not p.name.startswith(".")] if work.is_dir() else []
        for path in sorted(waiting, key=self._age):
            try:
                summary.count(self.handle(flow, path))
            except (OSError, JournalError) as exc:  # this input only: every other input and flow goes on
                log.error(_("{flow}: {name} cannot be recovered now: {error}; the other inputs go on").format(
                    flow=flow.name, name=printable(path.name), error=exc))
                summary.pending += 1
        # Inputs whose work file is gone but whose journal row is unfinished.
        for row in self.journal.unfinished(flow.name):
            if not row.work_path or Path(row.work_path).exists():
                continue
            try:
                summary.count(self._without_work_file(flow, row))
            except (OSError, JournalError) as exc:
                log.error(_("{flow}: input {id} ({name}) cannot be recovered now: {error}; the other inputs go "
                            "on").format(flow=flow.name, id=row.id, name=printable(row.name), error=exc))
                summary.pending += 1
        return summary

    def _age(self, work: Path) -> tuple[int, str]:
        """Oldest first: by journal entry (two claims in the same second have names in random order)."""
        try:
            row = self.journal.by_work_path(str(work))
        except JournalError:
            row = None
        return (row.id if row is not None else 2**62, work.name)

    def _without_work_file(self, flow: Flow, row: InputRow) -> str | None:
        """An unfinished input whose work file is gone: finish what can be finished, say what cannot."""
        if row.state is InputState.WAITING and row.stored_path and Path(row.stored_path).is_file():
            # ``retry`` was interrupted between the journal update and the move back
            move(Path(row.stored_path), Path(str(row.work_path)))
            return self.handle(flow, Path(str(row.work_path)))
        current = self.journal.get(row.id)
        if current.state is InputState.DELIVERING:
            # the input file was removed by hand; its committed outputs are still owed
            return self.processor.deliver_and_finish(flow, current, None)
        if current.state in (InputState.WAITING, InputState.PROCESSING):
            error = _("{name}: the file disappeared from the work folder ({path}) before it was converted (was "
                      "state/work changed by hand?); nothing was delivered from it: ask for the file again and drop "
                      "it into the inbox").format(name=printable(row.name), path=row.work_path)
            self.journal.finish(row.id, InputState.FAILED, None, error=error)
            log.error("%s: %s", flow.name, error)
            if self.alerts.enabled:
                self.alerts.quarantined(flow.name, row.name, row.id, error)
            return "failed"
        return None

    def waits_for(self, flow: Flow) -> list[str]:
        """The environment variables the flow needs that are not set: until they are, it does not run."""
        return self.kinds.missing_env(flow, self.inst)

    def drain(self, flow: Flow, wait_for_settle: bool = True) -> RunSummary:
        """Take every complete input waiting at the flow's source."""
        summary = RunSummary()
        missing = self.waits_for(flow)
        if missing:
            if self._said_missing.get(flow.name) != missing:
                log.warning(ngettext("{flow} does not run: it waits for the environment variable(s) {names}",
                                     "{flow} does not run: it waits for the environment variable(s) {names}",
                                     len(missing)).format(flow=flow.name, names=", ".join(missing)))
                self._said_missing[flow.name] = missing
            summary.not_running.append(flow.name)
            return summary
        self._said_missing.pop(flow.name, None)
        source = self.source(flow)
        if flow.source_folder is not None:
            flow.source_folder.mkdir(parents=True, exist_ok=True)  # so that a partner has somewhere to drop
        deadline = self.clock.monotonic() + max(10 * source.settle_seconds, 5.0)
        place = f"source of {flow.name}"
        while True:
            try:
                candidates = source.scan()
            except DeliveryError as exc:
                # A partner that is down delays only its own flows.
                self.places.failed(place, flow.name, exc)
                summary.pending += 1
                summary.messages.append(str(exc))
                return summary
            self.places.ok(place, flow.name)
            waits = {c.identity: source.settle_remaining(c) for c in candidates}
            unsettled = [c for c in candidates if waits[c.identity] > 0]
            for cand in candidates:
                if waits[cand.identity] > 0:
                    continue
                if self.stopping():
                    return summary  # the service was asked to stop: the input in hand was finished
                summary.count(self.take(flow, source, cand))
            if not unsettled or not wait_for_settle or self.clock.monotonic() > deadline:
                for cand in unsettled:
                    log.info("%s: %s is still being written; left for the next run", flow.name, printable(cand.name))
                return summary
            wait = min(source.settle_remaining(c) for c in unsettled)
            self.clock.sleep(min(max(wait, 0.05), 1.0))

    def take(self, flow: Flow, source: Source, cand: Candidate) -> str | None:
        """Claim one candidate, process it, and tell the source once its state is final."""
        try:
            work = source.fetch(cand, self.work_dir(flow))
        except DeliveryError as exc:
            self.places.failed(f"source of {flow.name}", flow.name, exc)
            return "waiting"
        if work is None:
            return None
        crashpoint("claimed")
        state = self.handle(flow, work, source=source.origin(cand), name=cand.name)
        if state in ("done", "all-skipped", "duplicate", "failed"):
            try:
                source.acknowledge(cand)
            except DeliveryError as exc:
                log.warning(_("{flow}: {error} (acknowledged after the next fetch)").format(flow=flow.name, error=exc))
        return state

    # -- one input ----------------------------------------------------------------------

    def handle(self, flow: Flow, work: Path, source: str | None = None, name: str | None = None) -> str | None:
        """Process the input at ``work`` if no other process holds it; return its final state."""
        try:
            fd = try_lock(work)
        except OSError as exc:
            return self._unreadable(flow, work, exc, source, name)
        if fd is None:
            return None  # finished meanwhile, or another gateway process is working on it
        try:
            try:
                if os.fstat(fd).st_ino != os.stat(work).st_ino:
                    return None
            except FileNotFoundError:
                return None  # finished by the previous holder of the lock
            try:
                row = self.journal.by_work_path(str(work))
                if row is None:
                    row = self.journal.register(
                        flow.name, source or _("folder {path}").format(path=flow.source_folder),
                        name or original_name(work),
                        str(work), os.fstat(fd).st_size,
                    )
                    crashpoint("registered")
            except JournalError as exc:
                log.error(_("{flow}: {name}: {error} The input waits in {folder}.").format(
                    flow=flow.name, name=printable(work.name), error=exc, folder=work.parent))
                return "waiting"
            self.progress.input_started(flow.name, row.name)
            try:
                state = self._resume(flow, row, work)
            except (OSError, JournalError) as exc:
                # A full disk or a vanished folder is not the input's fault: it waits for the next run.
                log.error(_("{flow}: {name}: {error}; the input stays and is tried again").format(
                    flow=flow.name, name=printable(row.name), error=printable(str(exc))))
                self._note_error(row.id, _("waiting: {error}").format(error=exc))
                state = "processing"
            except UnexpectedFailure as exc:
                state = self._unexpected(flow, row, work, exc, exc.words, exc.details)
            except Exception as exc:
                state = self._unexpected(flow, row, work, exc, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            self.progress.input_finished(flow.name, row.name, state)
            return state
        finally:
            os.close(fd)

    def _unreadable(self, flow: Flow, work: Path, exc: OSError, source: str | None, name: str | None) -> str:
        """An input the gateway may not even open (permissions, a name the file system refuses): put aside."""
        words = exc.strerror or str(exc)
        error = _("{name}: the file cannot be read by the gateway ({error}); it is put aside so that it holds up "
                  "nothing else. Make it readable for the user the gateway runs as (or ask the producer to write it "
                  "so), then retry it").format(name=printable(name or original_name(work)), error=words)
        try:
            row = self.journal.by_work_path(str(work)) or self.journal.register(
                flow.name, source or _("folder {path}").format(path=flow.source_folder), name or original_name(work),
                str(work), 0)
            return self.finisher.quarantine(flow, row, work, error)
        except (OSError, JournalError) as again:
            log.error(_("{flow}: {error}; it cannot be put aside either ({reason}) and is left where it is").format(
                flow=flow.name, error=error, reason=again))
            return "processing"

    def _unexpected(self, flow: Flow, row: InputRow, work: Path, exc: Exception, words: str, details: str) -> str:
        """A bug or a limit met this input: try again, but after ``max_attempts`` put it aside so it cannot
        stop the rest."""
        log.error(_("{flow}: {name}: {error}; the input stays and is tried again").format(
            flow=flow.name, name=printable(row.name), error=words)
            + ("" if isinstance(exc, UnexpectedFailure) else f"\n{details}"))
        waiting = _("waiting: unexpected error ({error}; see the log)").format(error=words)
        try:
            current = self.journal.get(row.id)
            if current.state.final or current.state is InputState.DELIVERING:
                # Its outputs are committed: they are owed whatever happens; only delivery is retried.
                self.journal.note_error(row.id, waiting)
                return str(current.state) if current.state.final else "delivering"
            failures = self.journal.count_failure(row.id, waiting)
            if failures < self.inst.max_attempts:
                return "processing"
            error = ngettext(
                "converting this input failed ({error}); it is put aside so that it cannot hold up the other inputs. "
                "If the input looks normal, this is a fault of the gateway: keep this reason file (it has the "
                "details) for the developers, then retry the input once the gateway or the limits are fixed",
                "converting this input failed {count} times ({error}); it is put aside so that it cannot hold up the "
                "other inputs. If the input looks normal, this is a fault of the gateway: keep this reason file (it "
                "has the details) for the developers, then retry the input once the gateway or the limits are fixed",
                failures).format(count=failures, error=words)
            return self.finisher.quarantine(flow, current, work, error, details)
        except (OSError, JournalError) as again:
            log.error(_("{flow}: {name}: the unexpected error cannot be recorded ({error}); the input stays").format(
                flow=flow.name, name=printable(row.name), error=again))
            return "processing"

    def _note_error(self, input_id: int, text: str) -> None:
        """Put why an input waits into the journal, if the journal can still be written (a full disk)."""
        try:
            self.journal.note_error(input_id, text)
        except JournalError as exc:
            log.error(_("the journal cannot be written either ({error}); the input stays in the work folder").format(
                error=exc))

    def _resume(self, flow: Flow, row: InputRow, work: Path) -> str:
        if row.state in (InputState.WAITING, InputState.PROCESSING):
            return self.processor.process(flow, row, work)
        if row.state is InputState.DELIVERING:
            return self.processor.deliver_and_finish(flow, row, work)
        if row.state in (InputState.DONE, InputState.DUPLICATE) and row.stored_path:
            move(work, Path(row.stored_path))
            return str(row.state)
        if row.state is InputState.FAILED and row.stored_path:
            shutil.rmtree(stage_dir(self.inst, flow, row.id), ignore_errors=True)  # a kill came before this step
            self.finisher.store_quarantined(work, Path(row.stored_path), row.error or "")
            return str(row.state)
        raise RuntimeError(f"journal entry {row.id} is in an inconsistent state ({row.state})")

    # -- retry and housekeeping ---------------------------------------------------------

    def retry(self, row: InputRow) -> Path:
        """Put a quarantined (or duplicate) input back into the work folder to be processed again."""
        return self.finisher.retry(row)

    def purge_archive(self) -> None:
        self.finisher.purge_archive()

    def waiting(self, flow: Flow) -> int | None:
        """Inputs waiting at the source; ``None`` for a partner's server or a service, which status does not dial."""
        return self.source(flow).waiting()
