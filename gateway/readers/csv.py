"""Streaming CSV records from Sage Office Line exports (and any other ``;`` CSV).

SOL files are messy in known ways: Windows-1252, ISO-8859-1 or UTF-8 with a BOM, CRLF,
a trailing empty line, quoted values with ``;`` and line breaks, columns in any order and
extra columns, and hundreds of thousands of rows. This reader takes all of that calmly and
refuses, with a line number and plain words, what would otherwise turn into wrong data:
an undecodable byte, a row with more values than the header, an unclosed quote, a NUL byte.

Nothing is read whole into memory. The csv module parses a text stream line by line, every
line and every value has an upper bound, and the only extra pass (guessing the encoding) reads
fixed-size chunks, so memory stays flat however large a catalog export is.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TextIO

from ..errors import ReadError
from ..i18n import _, ngettext
from ..mapping.values import MISSING, Record

if TYPE_CHECKING:
    from _csv import Reader

    from ..mapping.model import CsvInput
    from .registry import ReadRoom

_MAX_FIELD = 1024 * 1024  # characters in one value; far more than any real text, small enough for memory
_MAX_LINE = 4 * _MAX_FIELD  # characters in one physical line
MAX_COLUMNS = 1000  # columns in one line: more than any export has, and few enough for a batch's SQLite table
_CHUNK = 1024 * 1024  # bytes per read when checking which encoding the file is in
_BOM = codecs.BOM_UTF8
_UTF8_NAMES = ("utf-8", "utf-8-sig")


def read(source: Path, shown_as: str, spec: CsvInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: csv`` (see ``registry.Reader``)."""
    return read_csv_records(source, shown_as, encoding=spec.encoding, delimiter=spec.delimiter,
                            required=spec.required)


def read_csv_records(
    path: Path,
    shown_as: str,
    *,
    encoding: str = "auto",
    delimiter: str = ";",
    required: Sequence[str] = (),
) -> Iterator[Record]:
    """Yield one record per data row of a CSV file with a header line.

    Fields are named by the header (columns in any order; extra columns are kept, nameless
    ones are dropped); an empty value is ``MISSING``, any other value is the text exactly as
    in the file. ``Record.line`` is the physical line where the row starts.

    - ``encoding="auto"``: a UTF-8 BOM means UTF-8; otherwise UTF-8 if the whole file is valid
      UTF-8, else Windows-1252 (which also reads ISO-8859-1 text correctly). Any other value is
      a codec name, with one exception: a file that starts with a UTF-8 BOM and is valid UTF-8
      is read as UTF-8 whatever the setting (newer SOL exports); a BOM is never part of the data.
    - Blank lines, and rows whose values are all empty or spaces (``;;;``), are skipped.
    - A row with *fewer* values than the header gets ``MISSING`` for the rest: SOL leaves out
      trailing empty values at times, and nothing is lost. A row with *more* values is refused,
      since a value has then slipped out of its column (usually an unquoted ``;``).
    - Quotes are strict: a quoted value must be closed and end at its closing quote.

    Every problem with the file raises ``ReadError`` with the line; a wrong ``encoding`` or
    ``delimiter`` argument raises ``ValueError`` at once, since it is the caller's mistake.
    """
    _check_arguments(encoding, delimiter)
    return _read(path, shown_as, encoding, delimiter, tuple(required))


def _check_arguments(encoding: str, delimiter: str) -> None:
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(_("unknown encoding {name} (use auto, windows-1252, iso-8859-1 or utf-8)").format(
                name=repr(encoding))) from None
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError(_("the delimiter must be one character other than a quote or line break, not {value}").format(
            value=repr(delimiter)))


def _read(path: Path, shown_as: str, encoding: str, delimiter: str, required: tuple[str, ...]) -> Iterator[Record]:
    codec, start = encoding, 0
    try:
        if path.stat().st_size == 0:
            raise ReadError(_("the file is empty (0 bytes)"), file=shown_as)
        with path.open("rb") as raw:
            codec, start = _pick_codec(raw, encoding)
            raw.seek(start)
            with io.TextIOWrapper(raw, encoding=codec, newline="") as text:
                yield from _parse(text, shown_as, delimiter, required)
    except UnicodeDecodeError:
        raise _decode_error(path, shown_as, encoding, codec, start) from None
    except OSError as exc:
        raise ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as) from None


# --- encoding -------------------------------------------------------------------------------------


class _BadByte(NamedTuple):
    value: int
    line: int


def _pick_codec(raw: BinaryIO, encoding: str) -> tuple[str, int]:
    """The codec to read with, and the byte offset to start at (past a BOM that is not UTF-8's)."""
    has_bom = raw.read(len(_BOM)) == _BOM
    raw.seek(0)
    if encoding == "auto":
        if has_bom:
            return "utf-8-sig", 0
        return ("utf-8" if _first_undecodable(raw, "utf-8") is None else "cp1252"), 0
    if codecs.lookup(encoding).name in _UTF8_NAMES:
        return "utf-8-sig", 0
    if has_bom:
        # A BOM in front of valid UTF-8 is the file saying what it is, and newer SOL exports do
        # this: read it as UTF-8 rather than turn every umlaut into two wrong characters.
        if _first_undecodable(raw, "utf-8") is None:
            return "utf-8-sig", 0
        return encoding, len(_BOM)  # a stray BOM in front of a file that really is in `encoding`
    return encoding, 0


def _first_undecodable(raw: BinaryIO, codec: str) -> _BadByte | None:
    """Stream the file through an incremental decoder; the first byte it refuses, or None."""
    decoder = codecs.getincrementaldecoder(codec)()
    newlines = 0  # in the chunks before the current one
    while True:
        chunk = raw.read(_CHUNK)
        pending = decoder.getstate()[0]  # the start of a character cut by the previous chunk
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            data = pending + chunk
            line = newlines - pending.count(b"\n") + data[: exc.start].count(b"\n") + 1
            return _BadByte(data[exc.start], line)
        if not chunk:
            return None
        newlines += chunk.count(b"\n")


def _decodes(path: Path, codec: str) -> bool:
    with path.open("rb") as raw:
        return _first_undecodable(raw, codec) is None


def _likely_encoding(path: Path, tried: set[str]) -> str:
    for candidate in ("utf-8", "windows-1252"):
        if codecs.lookup(candidate).name not in tried and _decodes(path, candidate):
            return candidate
    return "iso-8859-1"  # every byte is a character in it


def _decode_error(path: Path, shown_as: str, encoding: str, codec: str, start: int) -> ReadError:
    checked = "utf-8" if codec == "utf-8-sig" else codec  # the BOM is valid UTF-8; keeps offsets simple
    auto_fell_back = encoding == "auto" and checked == "cp1252"
    tried = {codecs.lookup(checked).name} | ({"utf-8"} if auto_fell_back else set())
    try:
        with path.open("rb") as raw:
            has_bom = raw.read(len(_BOM)) == _BOM
            raw.seek(start)  # a skipped BOM holds no line break: line numbers stay right
            bad = _first_undecodable(raw, checked)
        likely = _likely_encoding(path, tried)
    except OSError as exc:
        return ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as)
    byte = f"0x{bad.value:02X}" if bad else ""
    line = bad.line if bad else None
    if auto_fell_back:
        words = _("the file is neither UTF-8 nor Windows-1252: this line has the byte {byte}, which is no character "
                  "in either; if the file is ISO-8859-1, set that encoding, otherwise check that it really is a "
                  "text/CSV file") if bad else _(
                  "the file is neither UTF-8 nor Windows-1252: the file has a byte that is no character in either; if "
                  "the file is ISO-8859-1, set that encoding, otherwise check that it really is a text/CSV file")
        return ReadError(words.format(byte=byte), file=shown_as, line=line)
    name = _("UTF-8 (it starts with a UTF-8 byte order mark)") if encoding == "auto" else encoding
    # "auto" follows a BOM, else takes UTF-8 or Windows-1252: name it only where it would work.
    auto_works = encoding != "auto" and (likely == "utf-8" if has_bom else likely != "iso-8859-1")
    if bad and auto_works:
        words = _("the file is not in the encoding {encoding}: this line has the byte {byte}, which is no character "
                  "in it; the file looks like {likely}: set the encoding to {likely} or auto")
    elif bad:
        words = _("the file is not in the encoding {encoding}: this line has the byte {byte}, which is no character "
                  "in it; the file looks like {likely}: set the encoding to {likely}")
    elif auto_works:
        words = _("the file is not in the encoding {encoding}: the file has a byte that is no character in it; the "
                  "file looks like {likely}: set the encoding to {likely} or auto")
    else:
        words = _("the file is not in the encoding {encoding}: the file has a byte that is no character in it; the "
                  "file looks like {likely}: set the encoding to {likely}")
    return ReadError(words.format(encoding=name, byte=byte, likely=likely), file=shown_as, line=line)


# --- rows and records -----------------------------------------------------------------------------


class _Header:
    """The named columns of a file: their names in header order, and each one's place in a row."""

    __slots__ = ("names", "position")

    def __init__(self, names: list[str | None]) -> None:
        self.position = {name: i for i, name in enumerate(names) if name is not None}
        self.names = tuple(self.position)


class RowFields(Mapping[str, Any]):
    """The fields of one row: the header's names over the row's own values, read when asked for.

    A dict per row would cost as much as the header is wide, whichever columns the mapping
    reads: 1,000 rows under a header of 300,000 columns took 46 s. Here a row keeps the list
    the csv module gave (as long as its line), and shares the header's positions with every
    other row; a column the line does not reach, or an empty value, reads as ``MISSING``.
    """

    __slots__ = ("_header", "_values")

    def __init__(self, header: _Header, values: list[str]) -> None:
        self._header = header
        self._values = values

    def get(self, name: str, default: Any = None) -> Any:
        at = self._header.position.get(name)
        if at is None:
            return default
        values = self._values
        return (values[at] or MISSING) if at < len(values) else MISSING

    def __getitem__(self, name: str) -> Any:
        at = self._header.position[name]
        values = self._values
        return (values[at] or MISSING) if at < len(values) else MISSING

    def __contains__(self, name: object) -> bool:
        return name in self._header.position

    def __iter__(self) -> Iterator[str]:
        return iter(self._header.names)

    def __len__(self) -> int:
        return len(self._header.names)

    def values(self) -> list[Any]:  # type: ignore[override]
        """Every column's value in header order (what a batch loads into its database)."""
        values, width = self._values, len(self._values)
        return [(values[at] or MISSING) if at < width else MISSING for at in self._header.position.values()]

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def _parse(text: TextIO, shown_as: str, delimiter: str, required: tuple[str, ...]) -> Iterator[Record]:
    # The limit is process-wide; every CSV the gateway reads gets the same bound.
    csv.field_size_limit(_MAX_FIELD)
    reader = csv.reader(_lines(text, shown_as), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    rows = _rows(reader, shown_as, delimiter)
    first = next(rows, None)
    if first is None:
        raise ReadError(_("the file has no header line: it holds only empty lines"), file=shown_as)
    header_line, names = first
    start = reader.line_num + 1
    if len(names) > MAX_COLUMNS:
        raise ReadError(_(
            "the header has {count} columns; at most {limit} columns are read (no export has more): is the delimiter "
            "right, and is it really a CSV file?").format(count=f"{len(names):,}", limit=f"{MAX_COLUMNS:,}"),
            file=shown_as, line=header_line,
        )
    header = _Header(_column_names(names, header_line, required, shown_as))
    width = len(names)
    while True:  # the rows, as _rows gives them, in one loop: a row costs no further generator
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(exc, start, reader.line_num, shown_as, delimiter) from None
        line, start = start, reader.line_num + 1
        if not any(map(str.strip, row)):
            continue
        if len(row) > width:
            raise ReadError(_(
                "this row has {count} fields, the header has {width}; is a '{delimiter}' inside a value not "
                "quoted?").format(count=len(row), width=width, delimiter=delimiter),
                file=shown_as, line=line,
            )
        yield Record(RowFields(header, row), line=line)


def _lines(text: TextIO, shown_as: str) -> Iterator[str]:
    """Physical lines, each bounded in length and free of NUL characters."""
    number = 0
    while line := text.readline(_MAX_LINE):
        number += 1
        if "\x00" in line:
            raise ReadError(_(
                "the file contains NUL bytes: is it really a text/CSV file? (a file saved as UTF-16 or \"Unicode "
                "text\" has them too)"),
                file=shown_as, line=number,
            )
        if len(line) == _MAX_LINE and line[-1] not in "\r\n":
            raise ReadError(_(
                "this line is longer than {size} MiB without a line break: is it really a text/CSV file?").format(
                    size=_MAX_LINE // (1024 * 1024)),
                file=shown_as, line=number,
            )
        yield line


def _rows(reader: Reader, shown_as: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on; csv errors become ``ReadError``."""
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(exc, start, reader.line_num, shown_as, delimiter) from None
        if any(map(str.strip, row)):
            yield start, row
        start = reader.line_num + 1


def _csv_error(exc: csv.Error, start: int, current: int, shown_as: str, delimiter: str) -> ReadError:
    text = str(exc)
    if "field limit" in text:
        return ReadError(_(
            "a value in the row that starts on this line is longer than {size} MiB; most likely a quote (\") opens "
            "a value and is never closed").format(size=_MAX_FIELD // (1024 * 1024)),
            file=shown_as, line=start,
        )
    if "unexpected end of data" in text:
        return ReadError(_(
            "a quoted value is not closed: a value in the row that starts on this line begins with a quote (\") and "
            "the file ends before its closing quote"),
            file=shown_as, line=start,
        )
    if "expected after" in text:
        return ReadError(_(
            "a quoted value goes on after its closing quote; after the closing quote a '{delimiter}' or the end of "
            "the line was expected (a quote inside a quoted value must be doubled: \"\")").format(delimiter=delimiter),
            file=shown_as, line=current,
        )
    return ReadError(_("the CSV cannot be read: {error}").format(error=text), file=shown_as, line=current)


def _column_names(
    header: list[str], line: int, required: tuple[str, ...], shown_as: str
) -> list[str | None]:
    """Header names, stripped of spaces and a BOM; ``None`` for a nameless column."""
    names: list[str | None] = []
    seen: dict[str, int] = {}
    for position, raw_name in enumerate(header, 1):
        name = raw_name.strip().lstrip("\ufeff").strip()
        if not name:
            names.append(None)
            continue
        if name in seen:
            raise ReadError(_(
                "the column '{name}' appears twice in the header, as column {first} and column {second}; every "
                "column name must be unique").format(name=name, first=seen[name], second=position),
                file=shown_as, line=line,
            )
        seen[name] = position
        names.append(name)
    missing = [name for name in required if name not in seen]
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        raise ReadError(ngettext(
            "the header lacks the required column {names}; the file has the columns: {columns}",
            "the header lacks the required columns {names}; the file has the columns: {columns}",
            len(missing)).format(names=listed, columns=", ".join(seen) or _("(none)")),
            file=shown_as, line=line,
        )
    return names
