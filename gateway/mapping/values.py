"""Records as the templates see them, and the German number and date formats.

A record field that the input does not have is empty (``MISSING``), not an error:
Rakuten leaves out optional elements, and a mapping must not break on that. A typo in
the *name* of a record or setting is still an error, because top-level names are strict.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import MappingError
from ..i18n import _


class _Missing:
    """A field the input does not have: renders as empty text, is false, has no fields.

    Calling it (``a.Lager.split(',')`` on an empty column) gives it back: an empty field
    split, stripped or lowered is still empty, and loops over it run zero times.
    """

    __slots__ = ()

    def __call__(self, *args: object, **kwargs: object) -> _Missing:
        return self

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __getattr__(self, name: str) -> _Missing:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, name: object) -> _Missing:
        return self

    def __eq__(self, other: object) -> bool:
        return other is self or other == ""

    def __hash__(self) -> int:
        return hash("")


MISSING = _Missing()


class Record:
    """One input record (an order, a client, an item) with its fields as attributes.

    Not a ``dict``: Rakuten has an element called ``items``, and on a dict
    ``order.items`` would be the method, not the field.
    """

    __slots__ = ("_fields", "_line")

    def __init__(self, fields: Mapping[str, Any], line: int | None = None) -> None:
        self._fields = fields
        self._line = line

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._fields.get(name, MISSING)

    def __getitem__(self, name: str) -> Any:
        return self._fields.get(name, MISSING)

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[Any]:
        # A single repeated element read as one record still loops as a list of one.
        return iter((self,))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"Record({self._fields!r})"

    def __str__(self) -> str:
        # A record written where text was meant (an XML element that has children or
        # attributes) shows its own text, never Python's representation of it.
        text = self._fields.get("text", "")
        return text if isinstance(text, str) else ""

    def to_plain(self) -> dict[str, Any]:
        """The record as plain data (for JSON output and debugging)."""
        return {k: _plain(v) for k, v in self._fields.items()}

    @property
    def line(self) -> int | None:
        return self._line


def _plain(value: Any) -> Any:
    if value is MISSING:
        return ""
    if isinstance(value, Record):
        return value.to_plain()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def as_list(value: Any) -> list[Any]:
    """What ``for_each`` loops over: a list, one record as a list of one, nothing as empty."""
    if value is MISSING or value is None or value == "":
        return []
    if isinstance(value, Record):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise MappingError(_("expected a list of entries to repeat over, got the text {text}").format(
        text=repr(str(value)[:40])))


_POINT_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_GERMAN_NUMBER = re.compile(r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]*)?$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?$")


# Numbers already read, per way of writing them: an export repeats the same few texts (0, -1, 10, a
# stock of 12) hundreds of thousands of times. A Decimal cannot change, so one is shared; the caches
# are emptied when full, so they stay small.
_READ: dict[bool, dict[str, Decimal]] = {False: {}, True: {}}
_WRITTEN: dict[tuple[Any, int, str, str], str] = {}
_CACHED = 4096


def to_decimal(value: Any, german: bool = False) -> Decimal:
    """Parse a number: ``12.90`` (point, as Rakuten sends it) or, with ``german``, ``1.234,50``."""
    if type(value) is str:
        cache = _READ[bool(german)]
        found = cache.get(value)
        if found is None:
            found = _parse_decimal(value, german)
            if len(cache) >= _CACHED:
                cache.clear()
            cache[value] = found
        return found
    return _parse_decimal(value, german)


def _parse_decimal(value: Any, german: bool) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise MappingError(_("expected a number, got yes/no"))
    if isinstance(value, int):
        return Decimal(value)
    text = str(value).strip()
    if not text:
        raise MappingError(_("expected a number, but the field is empty"))
    pattern = _GERMAN_NUMBER if german else _POINT_NUMBER
    if not pattern.match(text):
        example = "1.234,50" if german else "1234.50"
        raise MappingError(_("expected a number like {example}").format(example=example), value=text)
    if german:
        text = text.replace(".", "").replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes this
        raise MappingError(_("expected a number"), value=text) from None


def format_number(value: Any, places: int = 2, decimal: str = ",", thousands: str = "") -> str:
    """Format with a fixed number of places, rounding half up as accountants do: 1234.5 → ``1234,50``."""
    kind = type(value)
    if (kind is str or kind is Decimal) and type(places) is int and type(decimal) is str and type(thousands) is str:
        key = (value, places, decimal, thousands)
        found = _WRITTEN.get(key)
        if found is None:
            found = _format_number(value, places, decimal, thousands)
            if len(_WRITTEN) >= _CACHED:
                _WRITTEN.clear()
            _WRITTEN[key] = found
        return found
    return _format_number(value, places, decimal, thousands)


def _format_number(value: Any, places: int, decimal: str, thousands: str) -> str:
    number = to_decimal(value)
    quantum = Decimal(1).scaleb(-places)
    try:
        rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise MappingError(_("the number is too large to be written"), value=str(value)) from None
    sign = "-" if rounded < 0 else ""
    digits = f"{abs(rounded):.{places}f}"
    whole, _point, frac = digits.partition(".")
    if thousands:
        groups: list[str] = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        whole = thousands.join(groups)
    return sign + whole + (decimal + frac if places > 0 else "")


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d/%m/%Y-%H:%M",
)

_TOKENS = {"dd": "%d", "mm": "%m", "yyyy": "%Y", "yy": "%y", "HH": "%H", "MM": "%M", "SS": "%S"}
_TOKEN_RE = re.compile("|".join(sorted(_TOKENS, key=len, reverse=True)))


def to_datetime(value: Any) -> dt.datetime:
    """Parse the date forms the partners send (ISO, German, Rakuten France)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = str(value).strip()
    if not text:
        raise MappingError(_("expected a date, but the field is empty"))
    if len(text) == 10 and text[2] == "." and text[5] == "." and text[:2].isdigit():
        try:  # SOL's dd.mm.yyyy, the most common form, without strptime's cost
            return dt.datetime(int(text[6:]), int(text[3:5]), int(text[:2]))
        except ValueError:
            raise MappingError(_("expected a date like 2026-11-27 or 27.11.2026"), value=text) from None
    if _ISO_DATE.match(text):
        try:  # the common ISO forms, without strptime's cost
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise MappingError(_("expected a date like 2026-11-27 or 27.11.2026"), value=text)


def format_date(value: Any, fmt: str = "dd.mm.yyyy") -> str:
    """Format a date with a pattern of ``dd mm yyyy HH MM SS`` (``dd.mm.yyyy`` by default)."""
    moment = to_datetime(value)
    return moment.strftime(_TOKEN_RE.sub(lambda m: _TOKENS[m.group(0)], fmt.replace("%", "%%")))


def valid_on(rows: Any, day: Any, start: str = "GueltigVon", end: str = "GueltigBis") -> list[Any]:
    """The rows whose validity period holds ``day``: ``start`` ≤ day ≤ ``end``, both days included,
    an empty date open (SOL's GueltigVon/GueltigBis of prices and promotions).

    Dates may be written 27.11.2026 or 2026-11-27; a date that is neither stops the record
    with the value named, since a promotion guessed valid is worse than one not sent.
    """
    when = to_datetime(day).date()
    plain = isinstance(rows, (Record, str, list, tuple)) or rows is MISSING or rows is None
    kept = []
    for row in (as_list(rows) if plain else list(rows)):  # a filter's result is a generator
        for name in (start, end):
            if isinstance(row, Record) and name not in row._fields:
                # a misspelt column would read as empty, i.e. as "no limit": an expired promotion sent
                raise MappingError(_("valid_on: the rows have no column '{name}' (they have: {names})").format(
                    name=name, names=", ".join(row._fields)))
        try:
            first = to_datetime(row[start]).date() if row[start] else None
            last = to_datetime(row[end]).date() if row[end] else None
        except MappingError as exc:
            raise MappingError(_("{message} ({start}/{end} of {row})").format(
                message=exc.message, start=start, end=end, row=row_place(row)), value=exc.value) from None
        if (first is None or first <= when) and (last is None or when <= last):
            kept.append(row)
    return kept


def sort_by_number(rows: Any, attribute: str) -> list[Any]:
    """The rows sorted by the number in ``attribute`` (SOL's ``Sortierung``: 1, 2, 10), smallest first.

    Jinja's ``sort`` compares the text, which puts 10 before 2. Numbers are read as SOL writes
    them (``1.000``, ``2,5``); rows with the same number, and rows whose field is empty (sorted
    last), keep their order. A value that is not a number stops the record, naming the row.
    """
    plain = isinstance(rows, (Record, str, list, tuple)) or rows is MISSING or rows is None
    kept = as_list(rows) if plain else list(rows)  # a filter's result is a generator
    keyed: list[tuple[bool, Decimal, int, Any]] = []
    for index, row in enumerate(kept):
        if isinstance(row, Record) and attribute not in row._fields:
            # a misspelt column would read as empty for every row: the order of the export, silently
            raise MappingError(_("sort_by_number: the rows have no column '{name}' (they have: {names})").format(
                name=attribute, names=", ".join(row._fields)))
        value = row[attribute] if isinstance(row, Record) else getattr(row, attribute, MISSING)
        if value is MISSING or value is None or str(value).strip() == "":
            keyed.append((True, Decimal(0), index, row))
            continue
        try:
            number = to_decimal(value, german=True)
        except MappingError as exc:
            raise MappingError(_("sort_by_number: {message} ({name} of {row})").format(
                message=exc.message, name=attribute, row=row_place(row)), value=exc.value) from None
        keyed.append((False, number, index, row))
    keyed.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in keyed]


def row_place(row: Any) -> str:
    """Where a related row comes from, for messages: "the row of preise at line 12"."""
    table = getattr(row, "_table", None)  # a batch row knows its table
    line = getattr(row, "_line", None)
    place = _("the row of {table}").format(table=table) if table else _("the row")
    return _("{place} at line {line}").format(place=place, line=line) if line is not None else place
