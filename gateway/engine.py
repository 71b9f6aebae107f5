"""The pipeline for each input: claim → read → map → write → validate → deliver → finalize.

The order of steps is what makes the guarantees hold across a crash at any point:

1. **Claim**: the input is renamed from the inbox into the work folder, then locked
   (``flock``) and registered in the journal. Whatever holds the lock owns the input;
   a lock dies with its process, so a crashed owner's inputs are free again.
2. **Convert** into staged files in the work folder. A crash here loses nothing: the
   staged files are thrown away and the input is converted again.
3. **Commit** (one transaction): the content and the record keys are checked once
   more, the outputs are recorded as ``staged`` and the keys as delivered. From now on
   the outputs *will* be delivered, never produced again.
4. **Deliver** each output: upload under a temporary name, record ``uploaded``, rename
   to the final name, record ``delivered``. After a crash, an output recorded
   ``uploaded`` whose temporary file is gone was published; one still ``staged`` was not.
   An importer may take an output the moment it appears, so an output is never
   written a second time.
5. **Finalize**: the journal says ``done`` (with the archive path), then the input is
   moved to the archive. A ``done`` input still in the work folder is just moved.

An input is quarantined only for an ``InputError``, its own fault. A destination that
fails raises ``DeliveryError``: the input waits in the work folder for the next run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alerts import Alerts
from .config import Flow, Installation
from .config import SftpDestination as SftpDestinationConfig
from .config import SftpSource as SftpSourceConfig
from .config import SmtpDestination as SmtpDestinationConfig
from .convert import Conversion, MailSettings, convert, input_info
from .crashpoints import crashpoint
from .destinations.base import Destination
from .destinations.email import SmtpDestination
from .destinations.local import FolderDestination, fsync_dir
from .destinations.sftp import SftpDestination
from .errors import DeliveryError, InputError
from .journal import InputRow, Journal, OutputRow, now
from .readers.batch import hash_batch
from .sftp import SftpEndpoint
from .sources.local import FolderSource, original_name, printable, try_lock, work_name
from .sources.sftp import SftpSource

log = logging.getLogger("gateway")

COMMIT_ATTEMPTS = 5


@dataclass
class RunSummary:
    """What one pass did, for the exit status and the closing line."""

    done: int = 0
    duplicate: int = 0
    failed: int = 0
    pending: int = 0  # could not be delivered now; kept and tried again
    skipped_records: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if (self.failed or self.pending) else 0

    def add(self, other: RunSummary) -> None:
        self.done += other.done
        self.duplicate += other.duplicate
        self.failed += other.failed
        self.pending += other.pending
        self.skipped_records += other.skipped_records
        self.messages.extend(other.messages)


class Progress:
    """What the engine tells a progress display; the default shows nothing."""

    def input_started(self, flow: str, name: str) -> None: ...

    def record_done(self) -> None: ...

    def input_finished(self, flow: str, name: str, state: str) -> None: ...


def sha256_of(path: Path) -> tuple[str, int]:
    """The content's hash and size; for a batch folder, over its files' names and contents."""
    if path.is_dir():
        return hash_batch(path)  # opens regular files only; a link, pipe or device refuses the batch
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def mail_settings(inst: Installation, date: dt.datetime | None = None) -> MailSettings:
    if inst.smtp is None:
        return MailSettings(date=date)
    return MailSettings(sender=inst.smtp.sender, domain=inst.smtp.domain, date=date)


def _move(src: Path, dst: Path) -> None:
    """A durable move within the installation (same file system, so a rename)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)
    fsync_dir(src.parent)


def _write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name("." + path.name + ".part")
    with open(temp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


class Engine:
    def __init__(self, installation: Installation, progress: Progress | None = None) -> None:
        self.inst = installation
        self.journal = Journal(installation.journal_path)
        self.progress = progress or Progress()
        self._destinations: dict[tuple[str, str], Destination] = {}
        self._sources: dict[str, FolderSource | SftpSource] = {}
        self._places: dict[str, bool] = {}  # last known state of each source/destination (True = works)
        self.stopping: Callable[[], bool] = lambda: False  # the service sets this to its stop request
        self.alerts = Alerts(installation, self.journal)
        self._endpoints: dict[str, SftpEndpoint] = {}

    def close(self) -> None:
        for dest in self._destinations.values():
            dest.close()
        for source in self._sources.values():
            if isinstance(source, SftpSource):
                source.close()
        for endpoint in self._endpoints.values():
            endpoint.close()
        self.journal.close()

    # -- wiring -------------------------------------------------------------------------

    def endpoint(self, partner: str) -> SftpEndpoint:
        """One connection per SFTP partner, shared by its sources and destinations."""
        if partner not in self._endpoints:
            p = self.inst.partners[partner]
            self._endpoints[partner] = SftpEndpoint(p.host, p.port, p.user, p.key_file, p.known_hosts,
                                                    p.passphrase_env, p.timeout, partner=partner)
        return self._endpoints[partner]

    def source(self, flow: Flow) -> FolderSource | SftpSource:
        """The flow's source; kept between passes (an SFTP source remembers what its scans saw)."""
        if flow.name not in self._sources:
            src = flow.config.source
            if isinstance(src, SftpSourceConfig):
                self._sources[flow.name] = SftpSource(self.endpoint(src.sftp), src.folder, src.include,
                                                      flow.settle_seconds, src.archive)
            else:
                assert flow.source_folder is not None  # noqa: S101 - a folder source always has one
                self._sources[flow.name] = FolderSource(flow.source_folder, src.include, flow.settle_seconds,
                                                        src.marker, src.batch_marker)
        return self._sources[flow.name]

    def destination(self, flow: Flow, name: str) -> Destination:
        key = (flow.name, name)
        if key not in self._destinations:
            spec = flow.config.outbox if name == "outbox" else flow.config.destinations.get(name)
            if spec is None:
                raise DeliveryError(f"flow {flow.name} has no destination '{name}'")
            dest: Destination
            if isinstance(spec, SftpDestinationConfig):
                partner = self.inst.partners[spec.sftp]
                dest = SftpDestination(self.endpoint(spec.sftp), spec.folder, partner.rename)
            elif isinstance(spec, SmtpDestinationConfig):
                smtp = self.inst.smtp
                if smtp is None:
                    raise DeliveryError("e-mail needs the mail server described under 'smtp' in gateway.yaml")
                dest = SmtpDestination(smtp.host, smtp.port, spool=self.inst.state_dir / "spool" / flow.name / name,
                                       security=smtp.security, user=smtp.user, password_env=smtp.password_env)
            else:
                dest = FolderDestination((flow.root / spec.folder).resolve())
            self._destinations[key] = dest
        return self._destinations[key]

    def marker_of(self, flow: Flow, name: str) -> str | None:
        spec = flow.config.outbox if name == "outbox" else flow.config.destinations.get(name)
        return getattr(spec, "marker", None)

    def set_destination(self, flow: str, name: str, destination: Destination) -> None:
        """Replace a destination (tests use a ``MemoryDestination``)."""
        self._destinations[(flow, name)] = destination

    def work_dir(self, flow: Flow) -> Path:
        return self.inst.work_dir / flow.name

    def stage_dir(self, flow: Flow, input_id: int) -> Path:
        return self.inst.work_dir / flow.name / ".stage" / str(input_id)

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
        source = self.source(flow)
        if isinstance(source, FolderSource):
            source.recover_claims(work)
        if not work.is_dir():
            return summary
        for path in sorted(p for p in work.iterdir() if not p.name.startswith(".")):
            self._count(summary, self.handle(flow, path))
        # Inputs whose work file is gone but whose journal row is unfinished (a crash between
        # the archive move and nothing else is impossible, so this is a crash mid-finalize).
        for row in self.journal.unfinished(flow.name):
            if not row.work_path or Path(row.work_path).exists():
                continue
            if row.state == "waiting" and row.stored_path and Path(row.stored_path).is_file():
                # ``retry`` was interrupted between the journal update and the move back
                _move(Path(row.stored_path), Path(row.work_path))
                self._count(summary, self.handle(flow, Path(row.work_path)))
            elif row.state == "delivering" and self.journal.get(row.id).state == "delivering":
                # the input file was removed by hand; its committed outputs are still owed
                self._count(summary, self._deliver_and_finish(flow, row, None))
        return summary

    def drain(self, flow: Flow, wait_for_settle: bool = True) -> RunSummary:
        """Take every complete file waiting in the flow's inbox."""
        summary = RunSummary()
        source = self.source(flow)
        if flow.source_folder is not None:
            flow.source_folder.mkdir(parents=True, exist_ok=True)  # so that a partner has somewhere to drop
        deadline = time.monotonic() + max(10 * source.settle_seconds, 5.0)
        while True:
            try:
                candidates: list[Any] = list(source.scan())
            except DeliveryError as exc:
                # A partner that is down delays only its own flows.
                self.place_failed(f"source of {flow.name}", flow, exc)
                summary.pending += 1
                summary.messages.append(str(exc))
                return summary
            self.place_ok(f"source of {flow.name}", flow)
            now = time.time()
            settled = [c for c in candidates if source.is_settled(c, now)]
            unsettled = [c for c in candidates if not source.is_settled(c, now)]
            for cand in settled:
                if self.stopping():
                    return summary  # the service was asked to stop: the input in hand was finished
                self._count(summary, self.take(flow, source, cand))
            if not unsettled or not wait_for_settle or time.monotonic() > deadline:
                for cand in unsettled:
                    log.info("%s: %s is still being written; left for the next run", flow.name, printable(cand.name))
                return summary
            wait = min(source.settle_remaining(c) for c in unsettled)
            time.sleep(min(max(wait, 0.05), 1.0))

    def take(self, flow: Flow, source: FolderSource | SftpSource, cand: Any) -> str | None:
        if isinstance(source, SftpSource):
            return self._take_remote(flow, source, cand)
        work = source.claim(cand, self.work_dir(flow))
        if work is None:
            return None
        fsync_dir(work.parent)
        crashpoint("claimed")
        return self.handle(flow, work, source=source.describe(), name=cand.name)

    def _take_remote(self, flow: Flow, source: SftpSource, cand: Any) -> str | None:
        """Download into the work folder, process, and only then move or delete the remote file.

        A crash before the remote step leaves the file there: it is downloaded again next
        time, recognised by its content as already delivered, and only then finalized.
        """
        token = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
        work = self.work_dir(flow) / f"{token}--{work_name(cand.name)}"
        try:
            source.download(cand, work)
        except DeliveryError as exc:
            self.place_failed(f"source of {flow.name}", flow, exc)
            return "waiting"
        crashpoint("claimed")
        state = self.handle(flow, work, source=f"{source.describe()}/{cand.name}", name=cand.name)
        if state in ("done", "duplicate", "failed"):
            try:
                source.finalize(cand)
            except DeliveryError as exc:
                log.warning("%s: %s (the file is finalized after the next download)", flow.name, exc)
        return state

    @staticmethod
    def _count(summary: RunSummary, state: str | None) -> None:
        if state == "done":
            summary.done += 1
        elif state == "duplicate":
            summary.duplicate += 1
        elif state == "failed":
            summary.failed += 1
        elif state in ("delivering", "waiting", "processing"):
            summary.pending += 1

    # -- one input ----------------------------------------------------------------------

    def handle(self, flow: Flow, work: Path, source: str | None = None, name: str | None = None) -> str | None:
        """Process the input at ``work`` if no other process holds it; return its final state."""
        fd = try_lock(work)
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
                    st = os.fstat(fd)
                    row = self.journal.register(
                        flow.name, source or f"folder {flow.source_folder}", name or original_name(work),
                        str(work), st.st_size, now(),
                    )
                    crashpoint("registered")
            except sqlite3.Error as exc:
                log.error("%s: %s: the journal cannot be written (%s); the input waits in %s",
                          flow.name, printable(work.name), exc, work.parent)
                return "waiting"
            self.progress.input_started(flow.name, row.name)
            try:
                state = self._resume(flow, row, work)
            except (OSError, sqlite3.Error) as exc:
                # A full disk or a vanished folder is not the input's fault: it waits for the next run.
                log.error("%s: %s: %s; the input stays and is tried again",
                          flow.name, printable(row.name), printable(str(exc)))
                self._note_waiting(row.id, f"waiting: {exc}")
                state = "processing"
            except Exception:
                # A bug must not quarantine the input, nor stop the other inputs of the run.
                log.exception("%s: %s: unexpected error; the input stays and is tried again",
                              flow.name, printable(row.name))
                self._note_waiting(row.id, "waiting: unexpected error (see the log)")
                state = "processing"
            self.progress.input_finished(flow.name, row.name, state)
            return state
        finally:
            os.close(fd)

    def _note_waiting(self, input_id: int, text: str) -> None:
        """Put why an input waits into the journal, if the journal can still be written (a full disk)."""
        try:
            self.journal.delivery_failed(input_id, text)
        except sqlite3.Error as exc:
            log.error("the journal cannot be written either (%s); the input stays in the work folder", exc)

    def _resume(self, flow: Flow, row: InputRow, work: Path) -> str:
        if row.state in ("waiting", "processing"):
            return self._process(flow, row, work)
        if row.state == "delivering":
            return self._deliver_and_finish(flow, row, work)
        if row.state in ("done", "duplicate") and row.stored_path:
            _move(work, Path(row.stored_path))
            return row.state
        if row.state == "failed" and row.stored_path:
            shutil.rmtree(self.stage_dir(flow, row.id), ignore_errors=True)  # a kill came before this step
            self._store_quarantined(work, Path(row.stored_path), row.error or "")
            return row.state
        raise RuntimeError(f"journal entry {row.id} is in an inconsistent state ({row.state})")

    def _process(self, flow: Flow, row: InputRow, work: Path) -> str:
        try:
            sha, size = sha256_of(work)
        except InputError as exc:  # a batch folder holding a link, a pipe or too deep a tree
            return self._quarantine(flow, row, work, str(exc.located(file=row.name)))
        self.journal.start(row.id, sha, size)
        crashpoint("started")
        stage = self.stage_dir(flow, row.id)
        for _attempt in range(COMMIT_ATTEMPTS):
            if not row.force and flow.config.same_content_is_duplicate:
                earlier = self.journal.same_content_delivered(flow.name, sha, row.id)
                if earlier is not None:
                    return self._finish_duplicate(flow, row, work, f"same content as input {earlier}")
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir(parents=True)
            try:
                result = self._convert(flow, row, work, stage)
            except InputError as exc:
                return self._quarantine(flow, row, work, str(exc))
            crashpoint("converted")
            if not result.outputs:
                shutil.rmtree(stage, ignore_errors=True)
                if result.skipped and result.already_delivered == len(result.skipped):
                    note = f"all {len(result.skipped)} records were delivered before"
                    return self._finish_duplicate(flow, row, work, note, result.skipped)
                note = f"all {len(result.skipped)} records were skipped" if result.skipped else "no records to convert"
                self.journal.note_skipped(row.id, result.skipped)
                return self._finish_done(flow, row, work, note=note)
            if self._commit(flow, row, sha, result):
                break
            log.info("%s: %s: another process delivered some of its records meanwhile; converting again",
                     flow.name, row.name)
        else:  # pragma: no cover - needs a competing process to win five times in a row
            raise DeliveryError(f"{row.name}: could not commit after {COMMIT_ATTEMPTS} attempts")
        crashpoint("committed")
        return self._deliver_and_finish(flow, self.journal.get(row.id), work)

    def _convert(self, flow: Flow, row: InputRow, work: Path, stage: Path) -> Conversion:
        mapping = flow.mapping
        scope = mapping.key_scope or flow.name
        info = input_info(row.id, row.name, flow.name, row.received_at, dt.date.today())
        return convert(
            mapping, work, row.name, stage, info, flow.settings,
            key_delivered=lambda key: self.journal.key_owner(scope, key),
            on_record=self.progress.record_done,
            mail=mail_settings(self.inst),
            record_seconds=self.inst.record_seconds,
        )

    def _commit(self, flow: Flow, row: InputRow, sha: str, result: Conversion) -> bool:
        """Record outputs and keys; ``False`` when a key was taken meanwhile by another process."""
        scope = flow.mapping.key_scope or flow.name
        with self.journal.transaction():
            for key in result.keys:
                if self.journal.key_owner(scope, key) is not None:
                    return False  # the transaction is committed empty; nothing was written
            if (not row.force and flow.config.same_content_is_duplicate
                    and self.journal.same_content_delivered(flow.name, sha, row.id) is not None):
                return False
            self.journal.commit_outputs(
                row.id,
                [(o.output, o.destination, o.name, str(o.path)) for o in result.outputs],
                scope,
                result.keys,
                result.skipped,
            )
        return True

    def _deliver_and_finish(self, flow: Flow, row: InputRow, work: Path | None) -> str:
        try:
            self._deliver(flow, row)
        except DeliveryError as exc:
            log.debug("%s: %s: %s (will be tried again)", flow.name, printable(row.name), printable(str(exc)))
            self.journal.delivery_failed(row.id, f"delivery waits: {exc}")
            return "delivering"
        shutil.rmtree(self.stage_dir(flow, row.id), ignore_errors=True)
        return self._finish_done(flow, row, work)

    def place_ok(self, place: str, flow: Flow) -> None:
        """Note that a source or destination works; logged (and told) only when that is news."""
        if self._places.get(place) is True:
            return
        if self.journal.place_ok(place, flow.name):
            log.info("%s works again", place)
            if self.alerts.enabled:
                self.alerts.recovered(place, flow.name)
        self._places[place] = True

    def place_failed(self, place: str, flow: Flow, exc: Exception) -> None:
        """Note a failure; logged as a warning once when it starts, then quietly until it ends."""
        if self.journal.place_failed(place, flow.name, str(exc)) or self._places.get(place) is not False:
            log.warning("%s fails: %s (tried again automatically)", place, exc)
        else:
            log.debug("%s still fails: %s", place, exc)
        self._places[place] = False
        self.alerts.check_places()

    def _deliver(self, flow: Flow, row: InputRow) -> None:
        for out in self.journal.outputs(row.id):
            place = f"destination {out.destination} of {flow.name}"
            try:
                self._deliver_one(flow, row, out)
            except DeliveryError as exc:
                self.place_failed(place, flow, exc)
                raise
            self.place_ok(place, flow)

    def _deliver_one(self, flow: Flow, row: InputRow, out: OutputRow) -> None:
        """Take one output as far as the journal says it has not got yet (see the module docstring)."""
        marker = self.marker_of(flow, out.destination)
        dest = self.destination(flow, out.destination)
        state = out.state
        if state == "staged":
            if not Path(out.staged_path).exists():
                raise DeliveryError(f"the staged output {out.staged_path} is missing")
            dest.upload(Path(out.staged_path), out.name)
            crashpoint("uploaded")
            self.journal.output_uploaded(out.id)
            state = "uploaded"
        if state == "uploaded":
            # The temporary file gone means the rename happened before the crash: published.
            location = dest.publish(out.name) if dest.has_upload(out.name) else dest.location(out.name)
            crashpoint("published")
            self.journal.output_delivered(out.id, location)
            log.info("%s: %s → %s", flow.name, printable(row.name), printable(location))
            state = "delivered"
        if state == "delivered" and marker:
            dest.write_marker(out.name, marker)
            self.journal.output_marked(out.id)

    # -- endings ------------------------------------------------------------------------

    def _archive_path(self, flow: Flow, row: InputRow) -> Path:
        day = dt.date.today().isoformat()
        return self.inst.archive_dir / flow.name / day / f"{row.id}--{row.name}"

    def _finish_done(self, flow: Flow, row: InputRow, work: Path | None, note: str | None = None) -> str:
        target = self._archive_path(flow, row)
        self.journal.finish(row.id, "done", str(target), note=note)
        crashpoint("finished")
        if work is not None and work.exists():
            _move(work, target)
        return "done"

    def _finish_duplicate(self, flow: Flow, row: InputRow, work: Path, note: str,
                          skipped: list[dict[str, str]] | None = None) -> str:
        target = self._archive_path(flow, row)
        self.journal.finish(row.id, "duplicate", str(target), note=note, skipped=skipped)
        log.info("%s: %s is a duplicate (%s); nothing delivered", flow.name, printable(row.name), note)
        _move(work, target)
        return "duplicate"

    def _quarantine(self, flow: Flow, row: InputRow, work: Path, error: str) -> str:
        target = self.inst.quarantine_dir / flow.name / f"{row.id}--{row.name}"
        self.journal.finish(row.id, "failed", str(target), error=error)
        shutil.rmtree(self.stage_dir(flow, row.id), ignore_errors=True)
        log.error("%s: %s quarantined: %s", flow.name, printable(row.name), printable(error))
        self._store_quarantined(work, target, error)
        if self.alerts.enabled:
            self.alerts.quarantined(flow.name, row.name, row.id, error)
        return "failed"

    def _store_quarantined(self, work: Path, target: Path, error: str) -> None:
        reason = (
            f"{error}\n\n"
            f"What to do: correct the file or the mapping, then run\n"
            f"    gateway retry {target.name.split('--', 1)[0]}\n"
            f"to process it again. The journal (gateway journal) has the details.\n"
        )
        _write_text_atomically(target.with_name(target.name + ".reason.txt"), reason)
        _move(work, target)

    # -- retry and housekeeping ---------------------------------------------------------

    def retry(self, row: InputRow) -> Path:
        """Put a quarantined (or duplicate) input back into the work folder to be processed again."""
        if row.state not in ("failed", "duplicate"):
            raise InputError(f"input {row.id} is {row.state}; only failed or duplicate inputs can be retried")
        if row.flow not in self.inst.flows:
            raise InputError(f"input {row.id} belongs to flow '{row.flow}', which is no longer configured")
        stored = Path(row.stored_path or "")
        if not stored.exists():
            raise InputError(f"input {row.id}: the file {stored} is no longer there (archive retention?)")
        flow = self.inst.flows[row.flow]
        token = time.strftime("%Y%m%dT%H%M%S") + "-retry"
        work = self.work_dir(flow) / f"{token}-{row.id}--{row.name}"
        work.parent.mkdir(parents=True, exist_ok=True)
        self.journal.requeue(row.id, str(work), force=row.state == "duplicate")
        _move(stored, work)
        with contextlib.suppress(FileNotFoundError):
            stored.with_name(stored.name + ".reason.txt").unlink()
        return work

    def purge_archive(self) -> None:
        """Delete archived inputs older than ``archive.keep_days`` (whole day folders)."""
        keep = self.inst.keep_days
        if keep <= 0 or not self.inst.archive_dir.is_dir():
            return
        limit = dt.date.today() - dt.timedelta(days=keep)
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

    def waiting(self, flow: Flow) -> int | None:
        """Files waiting in a local inbox; ``None`` for a partner's server, which status does not dial."""
        source = self.source(flow)
        return len(source.scan()) if isinstance(source, FolderSource) else None


ProgressFactory = Callable[[], Progress]
