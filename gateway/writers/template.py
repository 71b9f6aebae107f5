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
from typing import Any

import jinja2

from ..errors import MappingError
from ..i18n import _


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


__all__ = ["RecordFeed", "render_template"]
