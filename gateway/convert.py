"""Read → map → write for one input: records stream from the reader through the mapping
into the staged output files, and nothing is published here.

Keys of records that were already delivered (an order number seen before) are skipped
and reported, not treated as errors: the rest of the file goes through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, MappingError
from .files import safe_stem
from .i18n import _
from .mapping.compiler import Mapping
from .mapping.values import Record
from .readers.batch import BatchDatabase
from .timelimit import DEFAULT_SECONDS, RecordClock, RecordTimeout
from .writers.base import OutputWriter, RecordAt, StagedOutput, Staging, folded
from .writers.email import MailSettings
from .writers.registry import writer_for


def input_info(input_id: int, name: str, flow: str, received_at: str, today: dt.date) -> dict[str, Any]:
    """What templates know of the input (``input.…``).

    ``stem`` is cleaned for use in output file names: a partner's file name may hold
    characters (colons, control characters) that no outbox should get.
    """
    suffix = name.rpartition(".")[2] if "." in name else ""
    return {"id": input_id, "name": name, "stem": safe_stem(name), "suffix": suffix,
            "received_at": received_at, "flow": flow, "today": today.isoformat()}


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
    staging = Staging(mapping=mapping, source=source, shown_as=shown_as, stage=stage_dir, input_info=input_info,
                      settings=settings, base_context=mapping.context(Record({}), input_info, settings),
                      mail=mail or MailSettings(), database=database, record_seconds=record_seconds)
    with ExitStack() as stack:
        writers: list[OutputWriter] = []
        for position, out in enumerate(mapping.outputs):
            writer = writer_for(out, position, staging)
            stack.callback(writer.close)
            writers.append(writer)
        # outputs of one record are staged by kind (rows, files passed on, e-mails), then in mapping order
        writers.sort(key=lambda w: w.rank)
        if any(w.needs_records for w in writers) or mapping.key_template is not None or mapping.skip_rules:
            _records(mapping, staging, writers, key_delivered, on_record, result, stack)
            records: int | None = result.records
        else:
            records = None  # only templates, nothing to decide per record first: one pass, the templates' own
        for writer in writers:
            result.outputs.extend(writer.finish(records))
        if records is None:
            result.records = max((o.rows for o in result.outputs), default=0)
    _refuse_twins(result.outputs, shown_as)
    return result


def _records(mapping: Mapping, staging: Staging, writers: list[OutputWriter],
             key_delivered: Callable[[str], int | None], on_record: Callable[[], None] | None, result: Conversion,
             stack: ExitStack) -> None:
    """The pass over the records: each is decided (defined values, key, skip rules) and given to every writer."""
    seen: set[str] = set()
    label = mapping.spec.key.label if mapping.spec.key else "key"
    shown_as, input_info, settings = staging.shown_as, staging.input_info, staging.settings
    writes = [w.write for w in writers if w.needs_records]  # bound once: called for every record
    clock = stack.enter_context(RecordClock(staging.record_seconds))
    outputs = result.outputs
    context_of = mapping.contexts(input_info, settings)
    # what every record needs, looked up once: a mapping without defined values, key or skip rules
    # pays nothing for them
    define = mapping.define if mapping.defines else None
    key_of = mapping.key_of if mapping.key_unit is not None else None
    skip_reason = mapping.skip_reason if mapping.skip_rules else None
    for index, record in enumerate(mapping.records(staging.source, shown_as, staging.stage / ".reader",
                                                   staging.database), start=1):
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
                staging.skipped.add(index)
                continue
            if key is not None:
                seen.add(key)
                result.keys.append(key)
            at = RecordAt(context, mapping.describe(key, index), index)
            for write in writes:
                staged = write(at)
                if staged:
                    outputs.extend(staged)
        except InputError as exc:
            raise exc.located(file=shown_as, record=mapping.describe(key, index), line=record.line) from None
        except RecordTimeout:
            raise MappingError(clock.message(), file=shown_as, record=mapping.describe(key, index),
                               line=record.line) from None
        result.records += 1
        if on_record is not None:
            on_record()


def _refuse_twins(outputs: list[StagedOutput], shown_as: str) -> None:
    """Refuse two outputs of one input with the same name, compared as file systems do.

    On a Windows share or a Mac folder texte_EN.csv and texte_en.csv are one file, and so are
    two spellings of one accent (é as one character, or e and a combining accent).
    """
    names = [folded(o.name) for o in outputs]
    if len(set(names)) != len(names):
        doubled = sorted({o.name for o in outputs if names.count(folded(o.name)) > 1})
        raise InputError(_("several outputs of this input would get the same file name ({names}); make the 'file' "
                           "names differ (per-record outputs need the record in the name)").format(
                               names=", ".join(doubled[:3])), file=shown_as)


__all__ = ["Conversion", "MailSettings", "StagedOutput", "convert", "input_info"]
