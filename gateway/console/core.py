"""What the console's pages read and do, through the functions the command line uses.

Status comes from :func:`gateway.status.flow_statuses` (``gateway status``), the journal from the
:class:`~gateway.journal.Journal` (``gateway journal``), retrying is :meth:`Engine.retry
<gateway.engine.Engine.retry>` (``gateway retry``), trying a mapping is
:func:`gateway.preview.converted` with :mod:`gateway.golden`'s comparison (``gateway preview`` and
``gateway test``), settings are :meth:`Flow.effective_settings <gateway.config.Flow.effective_settings>`
(``gateway settings``). Nothing here decides anything the command line does not.

The console holds one engine, and so one journal connection, for its whole life; requests are
served from several threads, so every use of it goes through one lock. Each use is a few
milliseconds of SQLite, and "Try a mapping", the slow one, does not need it.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Flow, Installation, Setting
from ..errors import GatewayError, InputError
from ..i18n import _
from ..journal import InputRow, InputState, JournalPage, JournalQuery, NoteRow, OutputRow
from ..status import FlowStatus, flow_statuses

if TYPE_CHECKING:
    from ..engine import Engine
    from ..golden import Difference
    from ..preview import PreviewOutput

#: Bytes of an output shown on a page; the whole file is a download away.
SHOWN_BYTES = 256 * 1024


@dataclass(frozen=True)
class InputDetail:
    row: InputRow
    outputs: list[OutputRow]
    keys: list[tuple[str, str]]
    notes: list[NoteRow]
    stored_available: bool  # the input file can be downloaded (it is still in the archive or quarantine)


@dataclass
class TriedOutput:
    name: str
    output: str
    rows: int
    size: int
    text: str | None  # None: a file passed on as it is (a PDF)
    cut: bool
    difference: Difference | None = None


@dataclass
class TryResult:
    """What "Try a mapping" shows: the outputs, or the error with its line and field; with an example,
    how the outputs compare with its expected files."""

    flow: str
    shown_as: str
    outputs: list[TriedOutput] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # expected files not produced
    skipped: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    compared: bool = False  # against a golden example's expected files
    expected_error: str | None = None  # a golden example that must be refused: the words its error must hold
    error_as_expected: bool | None = None


class ConsoleCore:
    def __init__(self, inst: Installation, engine: Engine | None = None) -> None:
        from ..engine import Engine

        self.inst = inst
        self.engine = engine or Engine(inst)
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.engine.close()

    @contextmanager
    def _journal(self) -> Iterator[Engine]:
        with self.lock:
            yield self.engine

    # -- overview ---------------------------------------------------------------------------

    def overview(self) -> tuple[list[FlowStatus], list[dict[str, Any]]]:
        """Every flow's status, and every place (source, destination, partner, web service) with its health."""
        with self._journal() as engine:
            return flow_statuses(engine), engine.journal.health()

    # -- the journal ------------------------------------------------------------------------

    def search(self, query: JournalQuery) -> JournalPage:
        with self._journal() as engine:
            return engine.journal.search(query)

    def detail(self, input_id: int) -> InputDetail | None:
        with self._journal() as engine:
            row = engine.journal.find(input_id)
            if row is None:
                return None
            return InputDetail(row, engine.journal.outputs(input_id), engine.journal.record_keys(input_id),
                               engine.journal.notes(input_id), self._stored_file(row) is not None)

    def quarantined(self, limit: int = 200) -> JournalPage:
        return self.search(JournalQuery(state=InputState.FAILED, limit=limit))

    def _inside(self, path: Path, folders: list[Path]) -> bool:
        try:
            real = path.resolve(strict=True)
        except OSError:
            return False
        return real.is_file() and any(real.is_relative_to(f.resolve()) for f in folders)

    def _stored_file(self, row: InputRow) -> Path | None:
        """The input's file as the journal names it, if it is still a file in the archive, quarantine or work
        folder (a batch folder is not a download)."""
        folders = [self.inst.archive_dir, self.inst.quarantine_dir, self.inst.work_dir]
        for named in (row.stored_path, row.work_path):
            if named and self._inside(Path(named), folders):
                return Path(named)
        return None

    def input_file(self, input_id: int) -> tuple[Path, str] | None:
        """The input's file and its name, for a download by journal id (never by path)."""
        with self._journal() as engine:
            row = engine.journal.find(input_id)
        if row is None:
            return None
        path = self._stored_file(row)
        return (path, row.name) if path else None

    def output_file(self, output_id: int) -> tuple[Path, OutputRow] | None:
        """An output's file as the journal names it: where it was delivered, if it is still there in one of the
        flow's local folders, else its staged copy in the work folder."""
        with self._journal() as engine:
            try:
                out = engine.journal.output(output_id)
                row = engine.journal.get(out.input_id)
            except KeyError:
                return None
        flow = self.inst.flows.get(row.flow)
        folders = [f for f in (flow.folders.values() if flow else []) if f is not None]
        if out.location and self._inside(Path(out.location), folders):
            return Path(out.location), out
        if self._inside(Path(out.staged_path), [self.inst.work_dir]):
            return Path(out.staged_path), out
        return None

    def output_text(self, output_id: int) -> tuple[OutputRow, str | None, bool] | None:
        """An output for viewing: its text (at most ``SHOWN_BYTES``), whether it was cut; text ``None`` when it
        is not text or no longer there."""
        found = self.output_file(output_id)
        if found is None:
            with self._journal() as engine:
                try:
                    return engine.journal.output(output_id), None, False
                except KeyError:
                    return None
        path, out = found
        flow = self.inst.flows.get(self._flow_of(out))
        encoding = self._encoding(flow, out.output) if flow else "utf-8"
        with open(path, "rb") as fh:
            data = fh.read(SHOWN_BYTES + 1)
        if encoding is None or b"\0" in data[:8192]:
            return out, None, False
        return out, data[:SHOWN_BYTES].decode(encoding, errors="replace"), len(data) > SHOWN_BYTES

    def _flow_of(self, out: OutputRow) -> str:
        with self._journal() as engine:
            return engine.journal.get(out.input_id).flow

    @staticmethod
    def _encoding(flow: Flow, output: str) -> str | None:
        from ..mapping.model import FileOutput

        try:
            specs = {o.name: o.spec for o in flow.mapping.outputs}
        except GatewayError:
            return "utf-8"
        spec = specs.get(output)
        if spec is None:
            return "utf-8"
        return None if isinstance(spec, FileOutput) else str(getattr(spec, "encoding", "utf-8"))

    # -- doing ------------------------------------------------------------------------------

    def retry(self, input_id: int) -> InputRow:
        """``gateway retry ID``: back to waiting, processed by the next run. ``InputError`` says why not."""
        with self._journal() as engine:
            row = engine.journal.find(input_id)
            if row is None:
                raise InputError(_("input {id}: no such entry in the journal").format(id=input_id))
            engine.retry(row)
            return engine.journal.get(input_id)

    def add_note(self, input_id: int, author: str, text: str) -> NoteRow:
        with self._journal() as engine:
            return engine.journal.add_note(input_id, author, text)

    # -- settings ---------------------------------------------------------------------------

    def settings(self) -> list[tuple[str, dict[str, Setting] | None, str | None]]:
        """Each flow's effective settings with where each comes from, or why its mapping cannot be read."""
        found: list[tuple[str, dict[str, Setting] | None, str | None]] = []
        for flow in self.inst.flows.values():
            try:
                found.append((flow.name, flow.effective_settings(), None))
            except GatewayError as exc:
                found.append((flow.name, None, str(exc)))
        return found

    # -- trying a mapping -------------------------------------------------------------------

    def examples(self) -> dict[str, list[str]]:
        """Each flow's golden examples that have one input file."""
        from ..golden import case_inputs, cases

        return {name: [c.name for c in cases(self.inst, flow) if len(case_inputs(c)) == 1]
                for name, flow in self.inst.flows.items()}

    def try_example(self, flow_name: str, case_name: str) -> TryResult | None:
        from ..golden import case_inputs, cases

        flow = self.inst.flows.get(flow_name)
        case = next((c for c in cases(self.inst, flow) if c.name == case_name), None) if flow else None
        inputs = case_inputs(case) if case else []
        if flow is None or case is None or len(inputs) != 1:
            return None
        return self._try(flow, inputs[0], inputs[0].name, case / "expected")

    def try_upload(self, flow_name: str, name: str, chunks: Iterator[bytes]) -> TryResult | None:
        """Convert an uploaded file. It is written into a temporary folder of its own, removed afterwards."""
        from ..files import safe_stem

        flow = self.inst.flows.get(flow_name)
        if flow is None:
            return None
        suffix = name.rpartition(".")[2] if "." in name else ""
        safe = safe_stem(name) + (f".{safe_stem(suffix)}" if suffix else "")
        folder = Path(tempfile.mkdtemp(prefix="gateway-console-upload-"))
        try:
            path = folder / (safe or "upload")
            with open(path, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            return self._try(flow, path, name, None)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _try(self, flow: Flow, source: Path, shown_as: str, expected: Path | None) -> TryResult:
        from ..golden import compare_outputs
        from ..preview import converted

        result = TryResult(flow.name, shown_as, compared=expected is not None)
        error_file = expected / "error.txt" if expected is not None else None
        if error_file is not None and error_file.is_file():
            result.expected_error = error_file.read_text(encoding="utf-8").strip()
        with converted(self.inst, flow, source, shown_as) as preview:
            if preview.error is not None:
                result.error = str(preview.error)
                result.where = preview.where
                if result.expected_error is not None:
                    result.error_as_expected = result.expected_error in result.error
                return result
            if result.expected_error is not None:
                result.error_as_expected = False
            differences: dict[str, Difference] = {}
            if expected is not None:
                for d in compare_outputs(preview.outputs, expected):
                    if d.kind == "missing":
                        result.missing.append(d.name)
                    else:
                        differences[d.name] = d
            result.outputs = [_tried(out, differences.get(out.name)) for out in preview.outputs]
            result.skipped = preview.skipped
        return result


def _tried(out: PreviewOutput, difference: Difference | None) -> TriedOutput:
    text, cut = out.text(SHOWN_BYTES) if out.encoding is not None else (None, False)
    return TriedOutput(out.name, out.output, out.rows, out.size, text, cut, difference)


def local_time(stamp: str | None) -> str:
    """A journal stamp (UTC) as this machine's local time, to the second."""
    if not stamp:
        return ""
    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


def day_bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """Local days (``2026-11-27``, both included) as journal stamps: from the first day's midnight to the
    midnight after the last day. ``ValueError`` for a day that is not one."""
    def midnight(day: str) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time()).astimezone()

    start = midnight(since).astimezone(dt.UTC).isoformat(timespec="seconds") if since else None
    end = ((midnight(until) + dt.timedelta(days=1)).astimezone(dt.UTC).isoformat(timespec="seconds")
           if until else None)
    return start, end
