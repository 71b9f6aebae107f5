"""The Jinja environment that mappings run in.

Mappings and templates are written by admins and partners, so they run in Jinja's
immutable sandbox: no attribute starting with ``_``, no changing of lists or records.
Undefined *names* are errors (a typo in ``ordr.order_no`` must not become an empty
column); missing *fields* of a record are empty, see ``values.Record``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from ..errors import MappingError
from . import values
from .values import MISSING, Record


class RecordSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a fast path for record fields.

    The sandbox vets every attribute access (about 2 µs each), and a row of an order
    import reads dozens of fields. A ``Record`` field is data (text, a list, another
    record), never a Python attribute, so reading it needs no vetting; everything else
    still goes through the sandbox's checks.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Record:
            return obj._fields.get(attribute, MISSING)
        if isinstance(obj, Record) and attribute in obj._fields:  # a batch row's column
            return obj._fields[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is Record and type(argument) is str:
            return obj._fields.get(argument, MISSING)
        return super().getitem(obj, argument)


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """In escaped (XML/HTML) templates, drop the control characters XML cannot hold at all."""
    if eval_ctx.autoescape and isinstance(value, str) and not isinstance(value, Markup):
        return _XML_FORBIDDEN.sub("", value)
    return value


def make_environment(
    lookups: Mapping[str, Callable[[Any], str]], root: Path | None = None
) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment with the gateway's filters and this mapping's lookup tables.

    Template files load from the installation folder ``root``. Values are escaped in
    files named ``*.xml.j2`` or ``*.html.j2`` (``select_autoescape`` alone would miss
    the ``.j2``); column values in mappings are never escaped.
    """
    env = RecordSandbox(
        loader=FileSystemLoader(str(root)) if root is not None else None,
        undefined=StrictUndefined,
        autoescape=select_autoescape(("xml", "html", "xml.j2", "html.j2"), default_for_string=False),
        finalize=_finalize,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=0,
    )

    def lookup(value: Any, table: str) -> str:
        try:
            fn = lookups[table]
        except KeyError:
            known = ", ".join(lookups) or "none"
            raise MappingError(f"there is no lookup table '{table}' (tables: {known})") from None
        return fn(value)

    def decimal(value: Any, german: bool = False) -> Decimal:
        return values.to_decimal(value, german=german)

    def number(value: Any, places: int = 2, decimal: str = ",", thousands: str = "") -> str:
        return values.format_number(value, places=places, decimal=decimal, thousands=thousands)

    def join_nonempty(parts: Any, separator: str = " ") -> str:
        return separator.join(str(p).strip() for p in values.as_list(parts) if str(p).strip())

    env.filters.update(
        {
            "lookup": lookup,
            "decimal": decimal,
            "number": number,
            "date": values.format_date,
            "join_nonempty": join_nonempty,
        }
    )
    return env
