"""Database values as SOL's exports write them, and the text of a mapping's output as a column's value.

Reading: a table read by a query becomes a file of the batch, in the shape of SOL's CSV exports,
so that the mappings written for the exports read it unchanged (``decimal(true)`` takes ``12,90``,
``date('yyyy-mm-dd')`` takes ``27.11.2026``, ``-1`` is yes):

==============================  ==========================================================
database value                  text in the batch
==============================  ==========================================================
NULL                            empty
integer, smallint, bit as int   ``123``, ``-1``
``True`` / ``False`` (bit)      ``-1`` / ``0`` (SOL's yes and no)
decimal, money, float           ``12,9``, ``1250``, ``0,42``: a comma, no thousands point,
                                no trailing zeros (``12.9000`` is ``12,9``)
date                            ``27.11.2026``
datetime                        ``27.11.2026``, or ``27.11.2026 09:14:03`` when it has a time
text                            as it is
binary (a row version)          ``0x`` and hex digits
==============================  ==========================================================

Writing: a staging table's column gets the output's text converted to its type, and a value that
cannot be converted is refused before the output is committed (:func:`to_column`), never at
delivery, where it could only wait forever.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
from collections.abc import Callable
from typing import Any

from ..i18n import _


def to_text(value: Any) -> str:
    """A database value as SOL's CSV export writes it (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "-1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return _decimal_text(value)
    if isinstance(value, float):
        return _decimal_text(decimal.Decimal(repr(value)))
    if isinstance(value, dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.strftime("%d.%m.%Y")
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex().upper()
    return str(value)


def _decimal_text(value: decimal.Decimal) -> str:
    if not value.is_finite():
        return str(value)
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace(".", ",")


class Unfit(ValueError):
    """A value that a column cannot hold; the message says what the column expects."""


# A comma is the decimal sign (12,90; with thousands points 1.234,50). A point alone is a decimal
# point (12.90, 1.234 = one point two three four): the mapping's number filter writes no thousands
# points unless asked to, so reading 1.234 as 1234 would misread number(3, '.').
_GERMAN_NUMBER = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+,\d+$|^[+-]?\d+,\d+$")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_number(text: str) -> decimal.Decimal:
    """``12.90``, ``12,90`` and ``1.234,50`` as a number; anything else is ``Unfit``."""
    value = text.strip()
    if _GERMAN_NUMBER.match(value):
        value = value.replace(".", "").replace(",", ".")
    elif not _PLAIN_NUMBER.match(value):
        raise Unfit(_("'{text}' is not a number (write 12.90 or 12,90)").format(text=text))
    return decimal.Decimal(value)


_DATE = re.compile(r"^(?:(\d{4})-(\d{2})-(\d{2})|(\d{2})\.(\d{2})\.(\d{4}))(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


@functools.lru_cache(maxsize=4096)
def parse_datetime(text: str, *, with_time: bool) -> dt.date | dt.datetime:
    """``2026-11-27`` or ``27.11.2026``, with ``09:14[:03]`` after a space where the column holds a time."""
    match = _DATE.match(text.strip())
    words = _("'{text}' is not a date (write 2026-11-27 or 27.11.2026, with a time as 2026-11-27 09:14:03)") \
        if with_time else _("'{text}' is not a date (write 2026-11-27 or 27.11.2026)")
    if match is None or (match.group(7) and not with_time):
        raise Unfit(words.format(text=text))
    y, m, d = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
        match.group(6), match.group(5), match.group(4))
    try:
        day = dt.datetime(int(y), int(m), int(d), int(match.group(7) or 0), int(match.group(8) or 0),
                          int(match.group(9) or 0))
    except ValueError:
        raise Unfit(words.format(text=text)) from None
    return day if with_time else day.date()


_TRUE = {"-1", "1", "true", "yes", "ja"}
_FALSE = {"0", "false", "no", "nein"}


def to_column(text: str, column: Any) -> Any:
    """The output's text for ``column`` (a reflected SQLAlchemy ``Column``): its typed value, ``None`` for
    an empty text in a column that takes NULL; ``Unfit`` when the column cannot hold it."""
    return converter(column)(text)


def converter(column: Any) -> Callable[[str], Any]:
    """The conversion of output text for ``column``, chosen once per column (a staging insert runs it per value)."""
    from sqlalchemy import types

    kind = column.type
    text_column = isinstance(kind, types.String)
    empty = _empty_value(bool(column.nullable), text_column)
    if isinstance(kind, types.Boolean):
        return _bool_converter(empty)
    if isinstance(kind, types.Integer):
        return _int_converter(empty)
    if isinstance(kind, (types.Numeric, types.Float)):  # Float is no Numeric since SQLAlchemy 2.1
        return _number_converter(getattr(kind, "precision", None), getattr(kind, "scale", None),
                                 as_float=isinstance(kind, types.Float), empty=empty)
    if isinstance(kind, (types.DateTime, types.Date)):
        return _date_converter(with_time=isinstance(kind, types.DateTime), empty=empty)
    return _text_converter(kind.length if text_column else None, empty)


def _empty_value(nullable: bool, text_column: bool) -> Callable[[], Any]:
    """What an empty text becomes: NULL where the column takes it, else an empty text column's "", else refused."""

    def empty() -> Any:
        if nullable:
            return None
        if text_column:
            return ""
        raise Unfit(_("the column needs a value (it takes no NULL), and the value is empty"))
    return empty


def _bool_converter(empty: Callable[[], Any]) -> Callable[[str], Any]:
    """A yes/no column: SOL's -1 and 0, and the words for yes and no."""

    def as_bool(text: str) -> Any:
        folded = text.strip().lower()
        if not folded:
            return empty()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise Unfit(_("'{text}' is not yes or no (write -1 or 0)").format(text=text))
    return as_bool


def _int_converter(empty: Callable[[], Any]) -> Callable[[str], Any]:
    """A whole-number column: a number with decimals other than zeros is refused, not rounded."""

    def as_int(text: str) -> Any:
        if not text.strip():
            return empty()
        try:
            number = parse_number(text)
        except Unfit:
            raise Unfit(_("'{text}' is not a whole number").format(text=text)) from None
        if number != number.to_integral_value():
            raise Unfit(_("'{text}' is not a whole number").format(text=text))
        return int(number)
    return as_int


def _number_converter(precision: int | None, scale: int | None, *, as_float: bool,
                      empty: Callable[[], Any]) -> Callable[[str], Any]:
    """A decimal or float column: a number with more digits before the point than the column holds is refused."""

    def as_number(text: str) -> Any:
        if not text.strip():
            return empty()
        number = parse_number(text)
        if precision is not None and scale is not None:
            digits = len(str(abs(int(number)))) if int(number) else 0
            if digits > precision - scale:
                raise Unfit(_("'{text}' is too large for the column (at most {count} digits before the decimal "
                              "point)").format(text=text, count=precision - scale))
        return float(number) if as_float else number
    return as_number


def _date_converter(*, with_time: bool, empty: Callable[[], Any]) -> Callable[[str], Any]:
    """A date or date-and-time column."""

    def as_date(text: str) -> Any:
        return parse_datetime(text, with_time=with_time) if text.strip() else empty()
    return as_date


def _text_converter(length: int | None, empty: Callable[[], Any]) -> Callable[[str], Any]:
    """A text column (and any other type): a text longer than the column is refused, not cut."""

    def as_text(text: str) -> Any:
        if text == "":
            return empty()
        if length is not None and len(text) > length:
            raise Unfit(_("the value has {count} characters, the column holds at most {length}").format(
                count=len(text), length=length))
        return text
    return as_text
