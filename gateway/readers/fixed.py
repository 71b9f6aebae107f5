"""Fixed-width text records: fields found by their position in the line.

Older ERP exports (and the bank and EDI formats they imitate) have no separators: each
field fills a fixed range of characters, padded with blanks. Nothing in the file says
where a field begins, so the columns come from the configuration, and ``check_columns``
lets the configuration check report a wrong one before any file is read. Lines are read
one at a time, so memory stays flat however long the export is.

Limits:

* positions count characters after decoding, from 1; a tab counts as one character;
* the encoding must write a line break as the single byte ``\\n`` (Windows-1252,
  ISO-8859-x, CP850, UTF-8 and the like); UTF-16 and EBCDIC cannot be read line by line
  and are refused;
* a line ends with LF or CRLF; a lone CR (old Mac files) does not end a line;
* columns that are wrong (see ``check_columns``) or an unknown encoding raise
  ``ValueError``: they are configuration errors, not faults of the file.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ReadError
from ..i18n import _
from ..mapping.values import MISSING, Record

if TYPE_CHECKING:
    from ..mapping.model import FixedInput
    from .registry import ReadRoom

_DOS_END_OF_FILE = "\x1a"  # Ctrl-Z, which some DOS-era exports still put on the last line


@dataclass(frozen=True)
class FixedColumn:
    """A field named ``name``: ``length`` characters from the 1-based position ``start``."""

    name: str
    start: int  # 1-based position of the first character
    length: int

    @property
    def end(self) -> int:
        """The 1-based position of the last character: the line length the column needs."""
        return self.start + self.length - 1


def check_columns(columns: Sequence[FixedColumn]) -> list[str]:
    """Problems with the column layout, in plain words; empty if it is usable.

    Overlapping columns are allowed on purpose: an export may hold a date that is also
    wanted as its year alone.
    """
    problems: list[str] = []
    if not columns:
        problems.append(_("no columns are given"))
    seen: set[str] = set()
    doubled: set[str] = set()
    for number, column in enumerate(columns, start=1):
        label = _("column '{name}'").format(name=column.name) if column.name.strip() else _(
            "column {number}").format(number=number)
        if not column.name.strip():
            problems.append(_("column {number} has no name").format(number=number))
        if column.start < 1:
            problems.append(_("{column} starts at {start}; positions count from 1").format(
                column=label, start=column.start))
        if column.length < 1:
            problems.append(_("{column} is {length} characters long; it must be at least 1").format(
                column=label, length=column.length))
        if column.name.strip() and column.name in seen and column.name not in doubled:
            doubled.add(column.name)
            problems.append(_("the column name '{name}' is used more than once").format(name=column.name))
        seen.add(column.name)
    return problems


def _line_codec(encoding: str) -> str:
    """The codec's name, if its lines can be split at the byte ``\\n``."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(_("unknown encoding {name}").format(name=repr(encoding))) from None
    try:
        splits_at_newline = b"\r\n".decode(name) == "\r\n"
    except UnicodeDecodeError:
        splits_at_newline = False
    if not splits_at_newline:
        raise ValueError(_("the encoding {name} cannot be read line by line; fixed-width files must be in an "
                           "encoding like windows-1252, iso-8859-15 or utf-8").format(name=repr(encoding)))
    return name


def read(source: Path, shown_as: str, spec: FixedInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: fixed`` (see ``registry.Reader``)."""
    columns = [FixedColumn(name, f.start, f.length) for name, f in spec.columns.items()]
    return read_fixed_records(source, shown_as, columns, encoding=spec.encoding, skip_lines=spec.skip_lines,
                              strict_length=spec.strict_length)


def read_fixed_records(
    path: Path,
    shown_as: str,
    columns: Sequence[FixedColumn],
    *,
    encoding: str = "windows-1252",
    skip_lines: int = 0,
    strict_length: bool = False,
) -> Iterator[Record]:
    """Yield one record per line, a field per column, values without surrounding blanks.

    The first ``skip_lines`` lines (headers) and blank lines are skipped. A line too short
    for a column leaves that field empty (a cut-off column keeps what it has), unless
    ``strict_length``, which refuses the line instead.
    """
    problems = check_columns(columns)
    if problems:
        raise ValueError(_("the fixed-width columns are wrong: {problems}").format(problems="; ".join(problems)))
    codec = _line_codec(encoding)
    slices = [(c.name, c.start - 1, c.end) for c in columns]  # (name, first index, index after the last)
    widest = max(c.end for c in columns)
    try:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if number <= skip_lines:
                    continue
                line = _decode(raw, number, codec, encoding, shown_as)
                if number == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                if not line.strip() or line == _DOS_END_OF_FILE:
                    continue
                if strict_length and len(line) < widest:
                    short = next(c for c in columns if c.end > len(line))
                    raise ReadError(_(
                        "line {line} is {length} characters long, column '{column}' needs {needed}").format(
                            line=number, length=len(line), column=short.name, needed=short.end),
                        file=shown_as, line=number,
                    )
                fields: dict[str, Any] = {}
                for name, first, after in slices:
                    fields[name] = line[first:after].strip() or MISSING
                yield Record(fields, line=number)
    except OSError as exc:
        raise ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as) from None


def _decode(raw: bytes, number: int, codec: str, encoding: str, shown_as: str) -> str:
    """The line as text, without its line end."""
    if raw.endswith(b"\n"):
        raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode(codec, "replace")) + 1
        raise ReadError(_(
            "line {line} cannot be read as {encoding}: the byte {byte} at position {column} is not a character of "
            "that encoding (is the encoding in the configuration right?)").format(
                line=number, encoding=encoding, byte=f"0x{raw[exc.start]:02X}", column=column),
            file=shown_as, line=number, column=column,
        ) from None
