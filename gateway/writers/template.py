"""Outputs written by Jinja template files, streamed.

``Template.generate()`` pulls records one at a time from a generator, so a template over
a million records writes as it goes and holds one record at a time; ``render()`` would
build the whole document in memory first. A failure inside the template is reported
with the template file, its line, and the record being written.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from ..errors import InputError, MappingError
from ..i18n import _
from ..timelimit import RecordClock, RecordTimeout
from .base import RecordAt, StagedOutput, Staging

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledTemplate


class RecordFeed:
    """The records a template loops over, remembering which one is being written."""

    def __init__(self, records: Iterator[tuple[str, Any]]) -> None:
        self._records = records
        self.current: str | None = None
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for label, record in self._records:
            self.current = label
            self.count += 1
            yield record


def _template_line(exc: BaseException) -> tuple[str, int] | None:
    """The template file and line in the traceback (Jinja maps its frames back to the .j2 file)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2") and frame.lineno:
            return frame.filename, frame.lineno
    return None


def render_template(
    template: jinja2.Template, feed: RecordFeed, context: dict[str, Any], out: Path, encoding: str
) -> int:
    """Write the template's output to ``out`` (flushed to disk); return how many records it took."""
    with open(out, "wb") as fh:
        try:
            for chunk in template.generate(**context, records=feed):
                try:
                    fh.write(chunk.encode(encoding))
                except UnicodeEncodeError as exc:
                    bad = chunk[exc.start:exc.end]
                    raise MappingError(
                        _("the character {character} cannot be written in {encoding}").format(
                            character=repr(bad), encoding=encoding),
                        record=feed.current, field=os.path.basename(template.filename or "template"),
                    ) from None
        except Exception as exc:
            place = _template_line(exc)
            where = f"{os.path.basename(place[0])}:{place[1]}" if place else os.path.basename(template.filename or "")
            from ..mapping.compiler import _as_mapping_error

            raise _as_mapping_error(exc).located(record=feed.current, mapping=where or None) from None
        fh.flush()
        os.fsync(fh.fileno())
    return feed.count


class TemplateWriter:
    """``format: template``: one document over all kept records, written in a pass of its own.

    The template loops over ``records`` itself, so the writer reads the input again after
    the conversion's pass, leaving out the records that pass skipped (``Staging.skipped``).
    When no writer needs the conversion's pass and the mapping decides nothing per record,
    this is the only pass (``finish(None)``); an output without records is then dropped.
    """

    needs_records = False
    rank = 3

    def __init__(self, out: CompiledTemplate, position: int, staging: Staging) -> None:
        self.out = out
        self.path = staging.place(position, out.name)
        self.staging = staging

    def write(self, record: RecordAt) -> list[StagedOutput]:
        return []

    def finish(self, records: int | None) -> list[StagedOutput]:
        if records == 0:
            return []  # every record skipped: no document of nothing
        staged = self._render()
        if records is None and not staged.rows:
            staged.path.unlink()
            return []
        return [staged]

    def close(self) -> None:
        """The document is written and closed within ``finish``."""

    def _render(self) -> StagedOutput:
        out, staging = self.out, self.staging
        mapping, skipped = staging.mapping, staging.skipped
        clock = RecordClock(staging.record_seconds)

        def records() -> Iterator[tuple[str, Any]]:
            work = self.path.parent / f".reader-{out.name}"
            for index, record in enumerate(
                    mapping.records(staging.source, staging.shown_as, work, staging.database), start=1):
                if index not in skipped:
                    context = mapping.context(record, staging.input_info, staging.settings)
                    clock.start()
                    yield mapping.describe(mapping.key_of(context), index), record

        base_context = staging.base_context
        name = out.file_name(base_context)
        context = {"settings": base_context["settings"], "input": base_context["input"]}
        feed = RecordFeed(records())
        try:
            with clock:
                count = render_template(out.template, feed, context, self.path, out.spec.encoding)
            if out.schema is not None or out.spec.template.endswith((".xml.j2", ".xml")):
                from ..xmlcheck import validate_xml  # lxml, only for an input with an XML output

                validate_xml(self.path, out.schema, out.name)
        except InputError as exc:
            raise exc.located(file=staging.shown_as) from None
        except RecordTimeout:
            raise MappingError(clock.message(), file=staging.shown_as, record=feed.current) from None
        return StagedOutput(output=out.name, destination=out.spec.to, name=name, path=self.path, rows=count)


__all__ = ["RecordFeed", "TemplateWriter", "render_template"]
