"""``group_by`` for formats read in file order: consecutive records with equal keys become one.

One CSV row per position of a document is how SOL exports documents; the mapping wants one
record per document. The batch reader groups in its database instead (see
``readers/batch/records.py``), where the rows of a group need not stand together.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import ReadError
from ..i18n import _
from ..mapping.values import Record


def group_records(records: Iterator[Record], by: list[str], shown_as: str, label: str) -> Iterator[Record]:
    """Consecutive records with equal ``by`` fields become one: the first one's fields plus ``rows``.

    Streaming needs the rows of a document to stand together, as SOL exports them; a
    document whose rows are split is refused rather than delivered as two documents.
    """
    seen: set[tuple[str, ...]] = set()
    current: tuple[str, ...] | None = None
    rows: list[Record] = []
    for record in records:
        key = tuple(str(record[name]) for name in by)
        if key != current:
            if rows:
                yield _grouped(rows)
            if key in seen:
                raise ReadError(_(
                    "the rows of {label} {key} are not together: more of them follow other {label}s; the export must "
                    "keep the rows of one {label} together").format(label=label, key=" / ".join(key)),
                    file=shown_as, line=record.line,
                )
            seen.add(key)
            current, rows = key, []
        rows.append(record)
    if rows:
        yield _grouped(rows)


def _grouped(rows: list[Record]) -> Record:
    first = rows[0]
    return Record({**first._fields, "rows": rows}, line=first.line)
