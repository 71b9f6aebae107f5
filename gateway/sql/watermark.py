"""The highest change a database flow has sent so far, kept in the journal between runs.

A mapping names a change-time (or row-version) column of one table (``input.watermark``); every
query of the flow gets the value remembered so far as ``:watermark`` and reads only what changed
after it. The highest value a run read is remembered only once that run's input has its final
state in the journal (the source's ``acknowledge``): a crash anywhere before that leaves the old
value, so the next run reads the same changes again. Changes may be sent twice, never skipped.

A first run (nothing remembered) reads everything: it gets the lowest value of the type, which
every database can compare with (1753-01-01 is the lowest SQL Server ``datetime``).

Values are kept as JSON with their type, so that a row version is compared as a number and a
change time as a time, never as text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any

from ..errors import DeliveryError
from ..i18n import _

if TYPE_CHECKING:
    from ..journal import Journal

SCOPE = "sql-watermark"
LOWEST: dict[str, Any] = {"datetime": dt.datetime(1753, 1, 1), "integer": -(2**63)}


def normalised(kind: str, value: Any) -> Any:
    """A value read from the watermark column, as the type the mapping says it is; ``None`` for NULL."""
    if value is None:
        return None
    if kind == "integer":
        if isinstance(value, (bytes, bytearray, memoryview)):  # SQL Server's rowversion read raw
            return int.from_bytes(bytes(value), "big")
        if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
            return int(value)
        raise DeliveryError(_("the watermark column holds {value}, which is not a whole number (the mapping says "
                              "type: integer)").format(value=repr(value)))
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise DeliveryError(_("the watermark column holds {value}, which is not a date and time (the mapping says "
                          "type: datetime)").format(value=repr(value)))


def later(kind: str, a: Any, b: Any) -> Any:
    """The later of two watermark values (either may be ``None``)."""
    if a is None:
        return b
    if b is None:
        return a
    try:
        return b if b > a else a
    except TypeError:  # a time with a zone and one without: compare as written, in UTC where a zone is known
        return b if _utc(b) > _utc(a) else a


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def bind_type(kind: str) -> Any:
    from sqlalchemy import BigInteger, DateTime

    return BigInteger() if kind == "integer" else DateTime()


class Watermarks:
    """The flow's remembered watermark in the journal."""

    def __init__(self, journal: Journal | None, flow: str, kind: str) -> None:
        self.journal = journal
        self.flow = flow
        self.kind = kind

    def current(self) -> Any:
        """The value to read after: the remembered one, or the lowest for a first run."""
        text = self.journal.recall(SCOPE, self.flow) if self.journal is not None else None
        if not text:
            return LOWEST[self.kind]
        stored = json.loads(text)
        if stored.get("type") != self.kind:
            return LOWEST[self.kind]  # the mapping changed the watermark's type: start over (send everything)
        if self.kind == "integer":
            return int(stored["value"])
        return dt.datetime.fromisoformat(stored["value"])

    def advance(self, value: Any) -> bool:
        """Remember ``value`` if it is later than what is remembered; whether it was."""
        if self.journal is None or value is None:
            return False
        current = self.current()
        if later(self.kind, current, value) is current:
            return False  # not later (a run that read less, or two runs at once)
        shown = str(value) if self.kind == "integer" else value.isoformat()
        self.journal.remember(SCOPE, self.flow, json.dumps({"type": self.kind, "value": shown}))
        return True
