"""Streaming JSON and JSON Lines records, with memory that does not grow with the file.

Some partners send their orders as one JSON document with the orders in an array, often
under a key (``{"data": {"orders": [...]}}``), others as JSON Lines. ``json.load`` would
build the whole document before the first order could be converted, and a month of
orders is then hundreds of megabytes. Here the file is read in chunks, a small scanner
finds the array, and each element is decoded on its own by the standard library's
decoder and handed on at once: only one chunk and one record are held at a time, and
no dependency is added for it.

Values arrive as text, as they do from XML, so that mappings treat both alike: numbers
exactly as written (``12.90`` stays ``"12.90"``, never the float 12.9, and ``1E5`` stays
``"1E5"``), ``true``/``false`` as ``"true"``/``"false"``, and ``null`` or an empty
string as ``MISSING``. Nested objects become nested records, arrays become lists.

Limits:

* the path in ``records`` follows keys of objects only (``data.orders``); it cannot step
  into arrays, a key that contains a dot cannot be named, and if a key occurs twice in
  one object the first one is followed;
* values at other keys, before and after the array, are checked as thoroughly as the
  records but not kept: a part of them that lies within the text read so far is decoded
  and dropped, a larger one is walked through a text or number at a time, so their size
  stays out of memory;
* each record is decoded as a whole, so one record must fit in memory;
* nesting deeper than ``MAX_DEPTH`` levels is refused (within a record, and within a
  skipped value), since partner input must not exhaust the stack;
* ``NaN`` and ``Infinity``, which Python's ``json`` accepts but JSON does not, are refused;
* records are handed on while the file is read: an error further down is raised after
  the records before it, as the XML reader does.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from ..errors import ReadError
from ..i18n import N_, _
from ..mapping.values import MISSING, Record

if TYPE_CHECKING:
    from ..mapping.model import JsonInput, JsonLinesInput
    from .registry import ReadRoom

CHUNK_SIZE = 256 * 1024  # bytes read at a time; tests make it tiny to cut records apart
MAX_DEPTH = 64  # levels of objects and arrays within one record (or one skipped value)

# A decoder error this close to the end of the text read so far may only mean that the
# value goes on in the next chunk (a cut-off number, literal or \\u escape is at most this long).
_TAIL = 32
_KEYS_SHOWN = 20

_NOT_BLANK = re.compile(r"[^ \t\n\r]")
_NUMBER_PART = re.compile(r"[0-9.eE+-]*")


class _Refused(ValueError):
    """``NaN`` or ``Infinity`` met by the decoder."""


class _TooDeep(ValueError):
    """A record nested deeper than ``MAX_DEPTH``."""


def _refuse_constant(name: str) -> NoReturn:
    raise _Refused(name)


# parse_float/parse_int get the number as written, so str keeps it exactly as written.
_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_refuse_constant)

_PLAIN_MESSAGES = (  # translated where they are shown
    ("Expecting value", N_("expected a value")),
    ("Expecting ',' delimiter", N_("expected ',' or a closing bracket")),
    ("Expecting ':' delimiter", N_("expected ':' after the key")),
    ("Expecting property name enclosed in double quotes", N_("expected a key in double quotes")),
    ("Unterminated string", N_('a text in quotes is not closed (the closing " is missing)')),
    ("Invalid control character",
     N_("a line break or other control character inside quotes (it must be written as \\n)")),
    ("Invalid \\uXXXX escape", N_("an invalid \\uXXXX escape inside quotes")),
    ("Invalid \\escape", N_("an invalid backslash escape inside quotes")),
    ("Illegal trailing comma", N_("a comma before a closing bracket")),
    ("Extra data", N_("there is more after the JSON object (one object per line is allowed)")),
)

# What a value is, in English (compared below) and marked for the catalog: ``_kind_words`` shows it.
_KINDS = {"{": N_("an object"), "[": N_("an array"), '"': N_("a text"), "t": "true", "f": "false", "n": "null"}
_NUMBER = N_("a number")
_UNKNOWN = N_("an unknown value")


def _plain_message(msg: str) -> str:
    for prefix, plain in _PLAIN_MESSAGES:
        if msg.startswith(prefix):
            return _(plain)
    return msg[:1].lower() + msg[1:]


def _kind_of(c: str) -> str | None:
    """What a value starting with ``c`` is, in (English) words; None if no JSON value starts so."""
    if c in _KINDS:
        return _KINDS[c]
    if c and c in "-0123456789":
        return _NUMBER
    return None


def _kind_words(kind: str) -> str:
    """A kind from ``_kind_of`` in the admin's language (true, false and null stay as JSON writes them)."""
    return kind if kind in ("true", "false", "null") else _(kind)


def _keys_text(shown: list[str], count: int) -> str:
    text = ", ".join(repr(k) for k in shown)
    if count > len(shown):
        text = _("{keys} and {count} more").format(keys=text, count=count - len(shown))
    return text


def _to_record(obj: dict[str, Any], line: int | None, depth: int = 1) -> Record:
    if depth > MAX_DEPTH:
        raise _TooDeep
    return Record({key: _to_value(value, depth) for key, value in obj.items()}, line=line)


def _to_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):  # texts and numbers (see _DECODER)
        return value or MISSING
    if isinstance(value, dict):
        return _to_record(value, None, depth + 1)
    if isinstance(value, list):
        if depth + 1 > MAX_DEPTH:
            raise _TooDeep
        return [_to_value(item, depth + 1) for item in value]
    if value is True:
        return "true"
    if value is False:
        return "false"
    return MISSING  # null


def _within_depth(value: Any, levels: int) -> bool:
    """Whether ``value`` nests objects and arrays no more than ``levels`` deep."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        container, level = pending.pop()
        if level > levels:
            return False
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, (dict, list)):
                pending.append((child, level + 1))
    return True


class _Text:
    """The file as text, read chunk by chunk, with the line and column of any position held.

    ``buf`` holds the text from ``pos`` (where scanning stands) to the end of what has been
    read; the text before ``pos`` is done with and is dropped when more is read. Dropping
    it then rather than after every record keeps the same memory bound without copying
    the buffer once per record.
    """

    def __init__(self, fh: BinaryIO, shown_as: str) -> None:
        self._fh = fh
        self.shown_as = shown_as
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")  # JSON is UTF-8; a BOM is allowed
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._mark = 0  # a position in buf whose line is known …
        self._mark_line = 1  # … and that line
        self._first_column = 1  # the column of buf[0]
        self._newlines_read = 0

    # --- positions ------------------------------------------------------------------------

    def line_at(self, p: int) -> int:
        if p >= self._mark:  # scanning moves forward: count only the new part
            self._mark_line += self.buf.count("\n", self._mark, p)
            self._mark = p
            return self._mark_line
        return self._mark_line - self.buf.count("\n", p, self._mark)

    def column_at(self, p: int) -> int:
        newline = self.buf.rfind("\n", 0, p)
        return p - newline if newline >= 0 else self._first_column + p

    def fail(self, message: str, p: int | None = None) -> ReadError:
        p = self.pos if p is None else p
        return ReadError(message, file=self.shown_as, line=self.line_at(p), column=self.column_at(p))

    def broken(self, expected: str) -> ReadError:
        """The JSON is broken where scanning stands: ``expected`` was expected there."""
        if self.pos >= len(self.buf) and self.eof:
            return self.fail(_("the JSON is broken: the file ends too early, {expected} was expected").format(
                expected=expected))
        return self.fail(_("the JSON is broken: {expected} was expected").format(expected=expected))

    # --- reading --------------------------------------------------------------------------

    def more(self) -> bool:
        """Read on, dropping the text before ``pos``; False if the file had already ended."""
        if self.eof:
            return False
        if self.pos:
            cut = self.pos
            self._mark_line = self.line_at(cut)
            self._first_column = self.column_at(cut)
            self.buf = self.buf[cut:]
            self._mark = self.pos = 0
        # A value longer than a chunk doubles what is read, so decoding it again and
        # again from its start costs a constant factor, not the square of its length.
        data = self._fh.read(max(CHUNK_SIZE, len(self.buf)))
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from None
        if not data:
            self.eof = True
        self._newlines_read += text.count("\n")
        self.buf += text
        return True

    def _not_utf8(self, exc: UnicodeDecodeError) -> ReadError:
        line = self._newlines_read + exc.object[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start] if exc.start < len(exc.object) else None
        words = _("the file is not valid UTF-8, which JSON must be: the byte {byte} on line {line} is not a UTF-8 "
                  "character (was the file saved as Windows-1252 or Latin-1?)") if byte is not None else _(
                  "the file is not valid UTF-8, which JSON must be: the last character on line {line} is not a UTF-8 "
                  "character (was the file saved as Windows-1252 or Latin-1?)")
        return ReadError(words.format(byte=f"0x{byte:02X}" if byte is not None else "", line=line),
                         file=self.shown_as, line=line)

    def peek(self) -> str:
        """The next character after blanks, not taken; "" at the end of the file."""
        while True:
            found = _NOT_BLANK.search(self.buf, self.pos)
            if found is not None:
                self.pos = found.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self.more():
                return ""

    def decode(self) -> Any:
        """Decode the value at ``pos``, reading on while it is cut off, and move past it."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut_off = exc.pos >= len(self.buf) - _TAIL or exc.msg.startswith("Unterminated string")
                if cut_off and self.more():
                    continue
                message = _plain_message(exc.msg)
                if exc.pos >= len(self.buf) or exc.msg.startswith("Unterminated string"):
                    message = _("the file ends too early ({problem})").format(problem=message)
                raise self.fail(_("the JSON is broken: {problem}").format(problem=message), exc.pos) from None
            except _Refused as exc:
                raise self.fail(_("{value} is not allowed in JSON (it is in the value that starts here)").format(
                    value=exc)) from None
            except RecursionError:
                raise self.fail(_("the JSON is nested too deeply (more than {count} levels)").format(
                    count=MAX_DEPTH)) from None
            # A number up to the end of the text read so far may go on in the next chunk (1 of 1.5 or 1e5).
            if self.buf[self.pos] not in '"[{' and _NUMBER_PART.fullmatch(self.buf, end) and self.more():
                continue
            self.pos = end
            return value

    def skip(self, depth: int = 1) -> None:
        """Move past the value at ``pos``, checked as thoroughly as a record but not kept.

        A value within the text read so far is decoded and dropped; a longer one is walked
        through, its parts each skipped the same way, so at most about a chunk of it is built.
        """
        opening = self.peek()
        if opening not in ("[", "{"):
            self.decode()
            return
        if depth > MAX_DEPTH:
            raise self.fail(_("the JSON is nested too deeply (more than {count} levels)").format(count=MAX_DEPTH))
        try:
            # Fast: decoded and dropped if it is all in the text read so far, so it is built
            # only up to the size of a chunk or two.
            value, end = _DECODER.raw_decode(self.buf, self.pos)
        except (json.JSONDecodeError, _Refused, RecursionError):
            pass  # cut off at the chunk's end, or broken: walking through it below tells which, and where
        else:
            if not _within_depth(value, MAX_DEPTH - depth + 1):
                raise self.fail(_("the JSON is nested too deeply (more than {count} levels)").format(count=MAX_DEPTH))
            self.pos = end
            return
        closing = "]" if opening == "[" else "}"
        self.pos += 1
        if self.peek() == closing:
            self.pos += 1
            return
        while True:
            if opening == "{":
                self.member_key()
            self.skip(depth + 1)
            c = self.peek()
            if c == closing:
                self.pos += 1
                return
            if c != ",":
                raise self.broken(_("',' or '{bracket}'").format(bracket=closing))
            self.pos += 1

    def member_key(self) -> str:
        """Read ``"key":`` at ``pos`` and stop at the value."""
        if self.peek() != '"':
            raise self.broken(_("a key in double quotes"))
        key: str = self.decode()
        if self.peek() != ":":
            raise self.broken(_("':' after the key"))
        self.pos += 1
        self.peek()
        return key

    def kind_here(self) -> str:
        """What the value at ``pos`` is, in words; raises if it is no JSON value at all."""
        c = self.peek()
        kind = _kind_of(c)
        if kind is None:
            self.decode()  # not a value: this raises the decoder's complaint
            kind = _UNKNOWN
        return kind


def _find_key(text: _Text, key: str | None) -> tuple[bool, list[str], int]:
    """In the object at ``pos``, stop at the value of ``key``.

    Returns whether it was found, and else the first keys of the object and their number
    (``key=None`` just collects them).
    """
    text.pos += 1  # the {
    shown: list[str] = []
    count = 0
    if text.peek() == "}":
        text.pos += 1
        return False, shown, count
    while True:
        name = text.member_key()
        if name == key:
            return True, shown, count
        count += 1
        if len(shown) < _KEYS_SHOWN:
            shown.append(name)
        text.skip()
        c = text.peek()
        if c == "}":
            text.pos += 1
            return False, shown, count
        if c != ",":
            raise text.broken(_("',' or '{bracket}'").format(bracket="}"))
        text.pos += 1


def _finish(text: _Text, levels: int) -> None:
    """After the array: skip the rest of the objects around it, then only blanks may follow."""
    for _level in range(levels):
        while True:
            c = text.peek()
            if c == "}":
                text.pos += 1
                break
            if c != ",":
                raise text.broken(_("',' or '{bracket}'").format(bracket="}"))
            text.pos += 1
            text.member_key()
            text.skip()
    if text.peek() != "":
        raise text.fail(_("the JSON is broken: there is more after the end of the document"))


def _descend(text: _Text, keys: list[str], records: str) -> None:
    """Walk down the objects named by ``keys``, so that the reader stands at the array of records;
    where the path leads nowhere, say what is there instead (the keys one level up, or the kind found)."""
    if text.peek() == "":
        raise text.fail(_("the file holds no JSON, only blanks"))
    for level, key in enumerate(keys):
        where = _("the document") if level == 0 else repr(".".join(keys[:level]))
        kind = text.kind_here()
        if kind != _KINDS["{"]:
            raise text.fail(_("no array at {path}; {where} is {kind}, not an object with the key {key}").format(
                path=repr(records), where=where, kind=_kind_words(kind), key=repr(key)))
        found, shown, count = _find_key(text, key)
        if not found:
            words = _("no array at {path}; {where} has the keys: {keys}") if count else _(
                "no array at {path}; {where} is an empty object")
            raise text.fail(words.format(path=repr(records), where=where, keys=_keys_text(shown, count)))
    _expect_array(text, keys, records)


def _expect_array(text: _Text, keys: list[str], records: str) -> None:
    """Fail unless the value here is an array, naming what it is and, for an object, its keys."""
    kind = text.kind_here()
    if kind == _KINDS["["]:
        return
    line, column = text.line_at(text.pos), text.column_at(text.pos)
    count = 0
    shown: list[str] = []
    if kind == _KINDS["{"]:
        _found, shown, count = _find_key(text, None)
    if keys and count:
        message = _("no array at {path}; there is {kind} there; its keys are: {keys}")
    elif keys:
        message = _("no array at {path}; there is {kind} there")
    elif count:
        message = _("the document is {kind}, not an array of records; give the path of the array in it (like "
                    "'data.orders'); its keys are: {keys}")
    else:
        message = _("the document is {kind}, not an array of records")
    raise ReadError(message.format(path=repr(records), kind=_kind_words(kind), keys=_keys_text(shown, count)),
                    file=text.shown_as, line=line, column=column)


def _records(text: _Text, keys: list[str], records: str) -> Iterator[Record]:
    _descend(text, keys, records)
    text.pos += 1  # the [
    number = 0
    c = text.peek()
    if c == "]":
        text.pos += 1
    else:
        while True:
            number += 1
            start = text.pos
            line = text.line_at(start)
            if c != "{":
                kind = text.kind_here()
                raise text.fail(_("record {number} (line {line}) is {kind}, an object {{…}} was expected").format(
                    number=number, line=line, kind=_kind_words(kind)), start)
            value = text.decode()
            try:
                record = _to_record(value, line)
            except _TooDeep:
                raise text.fail(_("record {number} (line {line}) is nested more than {count} levels deep").format(
                    number=number, line=line, count=MAX_DEPTH), start) from None
            yield record
            c = text.peek()
            if c == "]":
                text.pos += 1
                break
            if c != ",":
                raise text.broken(_("',' or ']' after record {number}").format(number=number))
            text.pos += 1
            c = text.peek()
            if c == "]":
                raise text.fail(_("the JSON is broken: there is a comma before the closing ']'"))
    _finish(text, len(keys))


def read(source: Path, shown_as: str, spec: JsonInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: json`` (see ``registry.Reader``)."""
    return read_json_records(source, shown_as, records=spec.records)


def read_lines(source: Path, shown_as: str, spec: JsonLinesInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: jsonl`` (see ``registry.Reader``)."""
    return read_jsonl_records(source, shown_as)


def read_json_records(path: Path, shown_as: str, *, records: str = "") -> Iterator[Record]:
    """A JSON document whose records are the array at the dotted path ``records``.

    ``""`` means the document itself is the array; ``"data.orders"`` means
    ``doc["data"]["orders"]``. Each element must be an object and becomes a ``Record``
    with the line it starts on. See the module's description for the limits.
    """
    keys = [key for key in records.split(".") if key]
    try:
        if path.stat().st_size == 0:
            raise ReadError(_("the file is empty (0 bytes)"), file=shown_as)
        with path.open("rb") as fh:
            yield from _records(_Text(fh, shown_as), keys, records)
    except OSError as exc:
        raise ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as) from None


def read_jsonl_records(path: Path, shown_as: str) -> Iterator[Record]:
    """JSON Lines: one JSON object per line; blank lines are skipped.

    A broken line stops the reading with its line number: the lines after it are not read.
    """
    try:
        if path.stat().st_size == 0:
            raise ReadError(_("the file is empty (0 bytes)"), file=shown_as)
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                yield from _jsonl_line(raw, number, shown_as)
    except OSError as exc:
        raise ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as) from None


def _jsonl_line(raw: bytes, number: int, shown_as: str) -> Iterator[Record]:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(_(
            "the line is not valid UTF-8, which JSON must be: the byte {byte} is not a UTF-8 character (was the file "
            "saved as Windows-1252 or Latin-1?)").format(byte=f"0x{raw[exc.start]:02X}"),
            file=shown_as, line=number, column=len(raw[: exc.start].decode("utf-8", "replace")) + 1,
        ) from None
    if number == 1 and line.startswith("\ufeff"):
        line = line[1:]
    start = _NOT_BLANK.search(line)
    if start is None:
        return
    try:
        value = _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        raise ReadError(_("the JSON is broken: {problem}").format(problem=_plain_message(exc.msg)), file=shown_as,
                        line=number, column=exc.colno) from None
    except _Refused as exc:
        raise ReadError(_("{value} is not allowed in JSON").format(value=exc), file=shown_as, line=number) from None
    except RecursionError:
        raise ReadError(_("the JSON is nested too deeply (more than {count} levels)").format(count=MAX_DEPTH),
                        file=shown_as, line=number) from None
    if not isinstance(value, dict):
        kind = _kind_of(line[start.start()]) or _UNKNOWN
        raise ReadError(_("the line holds {kind}, an object {{…}} was expected").format(kind=_kind_words(kind)),
                        file=shown_as, line=number, column=start.start() + 1)
    try:
        record = _to_record(value, number)
    except _TooDeep:
        raise ReadError(_("the record is nested more than {count} levels deep").format(count=MAX_DEPTH),
                        file=shown_as, line=number) from None
    yield record
