"""Read → map → write for one input: records stream from the reader through the mapping
into the staged output files, and nothing is published here.

Keys of records that were already delivered (an order number seen before) are skipped
and reported, not treated as errors: the rest of the file goes through.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InputError, MappingError
from .files import safe_stem
from .i18n import _
from .mapping.compiler import CompiledEmail, CompiledFiles, CompiledOutput, CompiledTemplate, Mapping
from .mapping.model import BatchInput, CsvOutput
from .mapping.values import Record
from .readers.batch import BatchDatabase, copy_batch_file
from .timelimit import DEFAULT_SECONDS, RecordClock, RecordTimeout
from .writers.csv import CsvWriter
from .writers.email import build_message, message_id_for
from .writers.json import JsonWriter
from .writers.template import RecordFeed, render_template


def input_info(input_id: int, name: str, flow: str, received_at: str, today: dt.date) -> dict[str, Any]:
    """What templates know of the input (``input.…``).

    ``stem`` is cleaned for use in output file names: a partner's file name may hold
    characters (colons, control characters) that no outbox should get.
    """
    suffix = name.rpartition(".")[2] if "." in name else ""
    return {"id": input_id, "name": name, "stem": safe_stem(name), "suffix": suffix,
            "received_at": received_at, "flow": flow, "today": today.isoformat()}


@dataclass(frozen=True)
class StagedOutput:
    output: str  # the output's name in the mapping
    destination: str
    name: str  # the file name it gets at the destination
    path: Path  # the complete file in the work folder
    rows: int


@dataclass
class Conversion:
    outputs: list[StagedOutput] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    records: int = 0
    already_delivered: int = 0  # of the skipped: records whose key was delivered before

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the way back from the worker process."""
        return {"outputs": [{**o.__dict__, "path": str(o.path)} for o in self.outputs], "keys": self.keys,
                "skipped": self.skipped, "records": self.records, "already_delivered": self.already_delivered}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversion:
        outputs = [StagedOutput(**{**o, "path": Path(o["path"])}) for o in data["outputs"]]
        return cls(outputs, list(data["keys"]), list(data["skipped"]), int(data["records"]),
                   int(data["already_delivered"]))


class _OpenOutput:
    """One staged output file being written."""

    def __init__(self, out: CompiledOutput, path: Path, name: str) -> None:
        self.out = out
        self.path = path
        self.name = name
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in finish()/ExitStack
        spec = out.spec
        self.writer: CsvWriter | JsonWriter
        try:
            if isinstance(spec, CsvOutput):
                self.writer = CsvWriter(
                    self.file, out.column_names, encoding=spec.encoding, delimiter=spec.delimiter,
                    header=spec.header, line_end="\r\n" if spec.line_end == "crlf" else "\n",
                    replace_unencodable=spec.unencodable == "replace",
                    neutralise_formulas=spec.formulas == "neutralise",
                )
            else:
                self.writer = JsonWriter(self.file, out.column_names, out.column_types, layout=spec.layout)
        except BaseException:
            self.file.close()  # the header could not be written: nobody else holds the file yet
            raise

    def write(self, context: dict[str, Any], record_name: str) -> None:
        write = self.writer.write
        for row in self.out.rows_for(context):
            write(row, record_name)

    def finish_all(self) -> list[StagedOutput]:
        staged = self.finish()
        return [staged] if staged is not None else []

    def finish(self) -> StagedOutput | None:
        """Close the file (flushed to disk); ``None`` (and no file) when it got no rows."""
        self.writer.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if self.writer.rows == 0:
            self.path.unlink()
            return None
        return StagedOutput(output=self.out.name, destination=self.out.spec.to, name=self.name,
                            path=self.path, rows=self.writer.rows)


MAX_SPLIT_FILES = 100  # files one output may be divided into by ``split_by`` (languages, countries)


class _SplitOutput:
    """An output with ``split_by``: one staged file per value, opened when its first row comes.

    The files stay open to the end of the input, so the values must be few (languages,
    countries, warehouses); a value that would open more than ``MAX_SPLIT_FILES`` is refused.
    """

    def __init__(self, out: CompiledOutput, stage: Path, base_context: dict[str, Any], stack: ExitStack) -> None:
        self.out = out
        self.stage = stage
        self.base_context = base_context
        self.stack = stack
        self.files: dict[str, _OpenOutput] = {}

    def write(self, context: dict[str, Any], record_name: str) -> None:
        for value, row in self.out.split_rows_for(context):
            handle = self.files.get(value)
            if handle is None:
                handle = self._open(value)
            handle.writer.write(row, record_name)

    def _open(self, value: str) -> _OpenOutput:
        if len(self.files) >= MAX_SPLIT_FILES:
            raise MappingError(_(
                "'split_by' would divide the output into more than {count} files; it is meant for values with few "
                "possibilities, such as a language").format(count=MAX_SPLIT_FILES), field="split_by", value=value,
                mapping=self.out.where)
        name = self.out.file_name({**self.base_context, "split": value})
        handle = _OpenOutput(self.out, self.stage.with_name(f"{self.stage.name}-{len(self.files)}"), name)
        self.stack.callback(handle.file.close)
        self.files[value] = handle
        return handle

    def finish_all(self) -> list[StagedOutput]:
        return [staged for handle in self.files.values() for staged in handle.finish_all()]


def convert(
    mapping: Mapping,
    source: Path,
    shown_as: str,
    stage_dir: Path,
    input_info: dict[str, Any],
    settings: dict[str, str],
    key_delivered: Callable[[str], int | None],
    on_record: Callable[[], None] | None = None,
    mail: MailSettings | None = None,
    record_seconds: float = DEFAULT_SECONDS,
) -> Conversion:
    """Convert ``source`` into staged files in ``stage_dir``; raise ``InputError`` for a bad input."""
    database = BatchDatabase()  # a batch's tables, loaded once for every pass over it
    try:
        return _convert(mapping, source, shown_as, stage_dir, input_info, settings, key_delivered, on_record,
                        mail, record_seconds, database)
    finally:
        database.close()


def _convert(
    mapping: Mapping,
    source: Path,
    shown_as: str,
    stage_dir: Path,
    input_info: dict[str, Any],
    settings: dict[str, str],
    key_delivered: Callable[[str], int | None],
    on_record: Callable[[], None] | None,
    mail: MailSettings | None,
    record_seconds: float,
    database: BatchDatabase,
) -> Conversion:
    result = Conversion()
    seen: set[str] = set()
    skipped_records: set[int] = set()
    label = mapping.spec.key.label if mapping.spec.key else "key"
    base_context = mapping.context(Record({}), input_info, settings)
    row_outputs = [(i, o) for i, o in enumerate(mapping.outputs) if isinstance(o, CompiledOutput)]
    emails = [(i, o) for i, o in enumerate(mapping.outputs) if isinstance(o, CompiledEmail)]
    passed_on = [(i, o) for i, o in enumerate(mapping.outputs) if isinstance(o, CompiledFiles)]
    templates = [(i, o) for i, o in enumerate(mapping.outputs) if isinstance(o, CompiledTemplate)]
    if not row_outputs and not emails and not passed_on and mapping.key_template is None and not mapping.skip_rules:
        # Only templates, nothing to decide per record first: one pass, the template's own.
        for i, tout in templates:
            staged = _render_output(mapping, tout, source, shown_as, stage_dir / f"{i:02d}-{tout.name}",
                                    input_info, settings, skipped_records, record_seconds, database)
            result.records = max(result.records, staged.rows)
            if staged.rows:
                result.outputs.append(staged)
            else:
                staged.path.unlink()
        return result
    with ExitStack() as stack:
        per_input: list[_OpenOutput | _SplitOutput] = []
        for i, out in row_outputs:
            if out.spec.per != "input":
                continue
            if out.split is not None:
                per_input.append(_SplitOutput(out, stage_dir / f"{i:02d}-{out.name}", base_context, stack))
                continue
            handle = _OpenOutput(out, stage_dir / f"{i:02d}-{out.name}", out.file_name(base_context))
            stack.callback(handle.file.close)
            per_input.append(handle)
        per_record = [(i, o) for i, o in row_outputs if o.spec.per == "record"]
        # Files passed on are named from rows of the export: each is checked at once against the
        # names known so far, so that the reason names the row (the rest is checked at the end).
        taken = _Names(o.name for o in per_input if isinstance(o, _OpenOutput))
        spec = mapping.spec.input
        tables = [spec.file_of(name) for name in spec.tables] if isinstance(spec, BatchInput) else []
        clock = stack.enter_context(RecordClock(record_seconds))
        context_of = mapping.contexts(input_info, settings)
        # what every record needs, looked up once: a mapping without defined values, key or skip rules
        # pays nothing for them
        define = mapping.define if mapping.defines else None
        key_of = mapping.key_of if mapping.key_unit is not None else None
        skip_reason = mapping.skip_reason if mapping.skip_rules else None
        for index, record in enumerate(mapping.records(source, shown_as, stage_dir / ".reader", database), start=1):
            context = context_of(record)
            key = None
            clock.start()
            try:
                if define is not None:
                    define(context)
                key = key_of(context) if key_of is not None else None
                reason = skip_reason(context) if skip_reason is not None else None
                if reason is None and key is not None:
                    owner = key_delivered(key)
                    if owner is not None or key in seen:
                        reason = _("{label} {key} was already delivered (input {id})").format(
                            label=label, key=key, id=owner) if owner is not None else _(
                            "{label} {key} was already delivered (earlier in this file)").format(label=label, key=key)
                        result.already_delivered += 1
                if reason is not None:
                    result.skipped.append({"key": key or _("{label} no. {number}").format(
                        label=mapping.spec.input.label, number=index), "reason": reason})
                    skipped_records.add(index)
                    continue
                if key is not None:
                    seen.add(key)
                    result.keys.append(key)
                record_name = mapping.describe(key, index)
                for output in per_input:
                    output.write(context, record_name)
                for i, out in per_record:
                    result.outputs.extend(_one_record_output(out, context, stage_dir / f"{i:02d}-{out.name}-{index}",
                                                             record_name))
                for i, files in passed_on:
                    for n, item in enumerate(files.files_for(context)):
                        taken.claim(item.name, item.row, files.where)
                        path = stage_dir / f"{i:02d}-{files.name}-{index}-{n}"
                        copy_batch_file(source, shown_as, item.source, path, folder=files.spec.folder,
                                        tables=tables, row=item.row)
                        result.outputs.append(StagedOutput(output=files.name, destination=files.spec.to,
                                                           name=item.name, path=path, rows=1))
                for i, email in emails:
                    staged_mail = _one_email(email, context, stage_dir / f"{i:02d}-{email.name}-{index}",
                                             mail or MailSettings(), input_info, index)
                    if staged_mail is not None:
                        result.outputs.append(staged_mail)
            except InputError as exc:
                record_name = mapping.describe(key, index)
                raise exc.located(file=shown_as, record=record_name, line=record.line) from None
            except RecordTimeout:
                raise MappingError(clock.message(), file=shown_as, record=mapping.describe(key, index),
                                   line=record.line) from None
            result.records += 1
            if on_record is not None:
                on_record()
        for output in per_input:
            result.outputs.extend(output.finish_all())
    if templates and result.records:
        for i, tout in templates:
            result.outputs.append(_render_output(
                mapping, tout, source, shown_as, stage_dir / f"{i:02d}-{tout.name}", input_info, settings,
                skipped_records, record_seconds, database))
    # Compared as file systems do: on a Windows share or a Mac folder texte_EN.csv and texte_en.csv are
    # one file, and so are two spellings of one accent (é as one character, or e and a combining accent).
    names = [_folded(o.name) for o in result.outputs]
    if len(set(names)) != len(names):
        doubled = sorted({o.name for o in result.outputs if names.count(_folded(o.name)) > 1})
        raise InputError(_("several outputs of this input would get the same file name ({names}); make the 'file' "
                           "names differ (per-record outputs need the record in the name)").format(
                               names=", ".join(doubled[:3])), file=shown_as)
    return result


def _folded(name: str) -> str:
    """A file name as a share or Mac folder compares it: case and the spelling of accents do not count."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class _Names:
    """The output names of one input so far, to refuse a passed-on file that would take one of them."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = {_folded(name): name for name in names}

    def claim(self, name: str, row: str | None, mapping: str) -> None:
        folded = _folded(name)
        other = self._names.get(folded)
        if other is None:
            self._names[folded] = name
        else:
            if other == name:
                words = _("the file passed on as '{name}' for {row} would have the same name as the output '{other}' "
                          "of this input; the names of files passed on must differ from every other output's") if row \
                    else _("the file passed on as '{name}' would have the same name as the output '{other}' of this "
                           "input; the names of files passed on must differ from every other output's")
            else:
                words = _("the file passed on as '{name}' for {row} would have a name that is the same on Windows and "
                          "Mac shares as the output '{other}' of this input; the names of files passed on must differ "
                          "from every other output's") if row else _(
                          "the file passed on as '{name}' would have a name that is the same on Windows and Mac shares "
                          "as the output '{other}' of this input; the names of files passed on must differ from every "
                          "other output's")
            raise InputError(words.format(name=name, row=row, other=other), mapping=mapping)


@dataclass(frozen=True)
class MailSettings:
    """What e-mails take from gateway.yaml: the sender and the domain of Message-IDs."""

    sender: str = "gateway@localhost"
    domain: str = "gateway.invalid"
    date: dt.datetime | None = None  # fixed for golden examples; otherwise the time of building


def _one_email(email: CompiledEmail, context: dict[str, Any], path: Path, mail: MailSettings,
               input_info: dict[str, Any], index: int) -> StagedOutput | None:
    """The e-mail of one record, complete, as an .eml file (none when ``when`` is false)."""
    if not email.wanted(context):
        return None
    message_id = message_id_for(mail.domain, str(input_info.get("flow", "flow")), int(input_info.get("id", 0)),
                                email.name, index)
    data = build_message(
        sender=email.spec.sender or mail.sender,
        to=email.render("recipient", context).strip(),
        subject=email.render("subject", context).strip(),
        text=email.render("text", context),
        html=email.render("html", context) if email.html is not None else None,
        reply_to=email.spec.reply_to,
        message_id=message_id,
        date=mail.date,
    )
    path.write_bytes(data)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return StagedOutput(output=email.name, destination=email.spec.to, name=email.file_name(context),
                        path=path, rows=1)


def _one_record_output(out: CompiledOutput, context: dict[str, Any], path: Path, record: str) -> list[StagedOutput]:
    """An output with ``per: record``: a file of its own for this record (none if it makes no rows)."""
    handle = _OpenOutput(out, path, out.file_name(context))
    try:
        handle.write(context, record)
    except BaseException:
        handle.file.close()
        raise
    return handle.finish_all()


def _render_output(
    mapping: Mapping,
    out: CompiledTemplate,
    source: Path,
    shown_as: str,
    path: Path,
    input_info: dict[str, Any],
    settings: dict[str, str],
    skipped: set[int],
    record_seconds: float = DEFAULT_SECONDS,
    database: BatchDatabase | None = None,
) -> StagedOutput:
    """A template output: a second streamed pass over the input, leaving out the skipped records."""

    def records() -> Iterator[tuple[str, Any]]:
        work = path.parent / f".reader-{out.name}"
        for index, record in enumerate(mapping.records(source, shown_as, work, database), start=1):
            if index not in skipped:
                context = mapping.context(record, input_info, settings)
                clock.start()
                yield mapping.describe(mapping.key_of(context), index), record

    base_context = mapping.context(Record({}), input_info, settings)
    name = out.file_name(base_context)
    context = {"settings": base_context["settings"], "input": base_context["input"]}
    clock = RecordClock(record_seconds)
    feed = RecordFeed(records())
    try:
        with clock:
            count = render_template(out.template, feed, context, path, out.spec.encoding)
        if out.schema is not None or out.spec.template.endswith((".xml.j2", ".xml")):
            from .xmlcheck import validate_xml  # lxml, only for an input with an XML output

            validate_xml(path, out.schema, out.name)
    except InputError as exc:
        raise exc.located(file=shown_as) from None
    except RecordTimeout:
        raise MappingError(clock.message(), file=shown_as, record=feed.current) from None
    return StagedOutput(output=out.name, destination=out.spec.to, name=name, path=path, rows=count)

