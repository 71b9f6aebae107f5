"""The Jinja environment that mappings run in.

Mappings and templates are written by admins and partners, so they run in Jinja's
immutable sandbox: no attribute starting with ``_``, no changing of lists or records.
Undefined *names* are errors (a typo in ``ordr.order_no`` must not become an empty
column); missing *fields* of a record are empty, see ``values.Record``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from ..errors import MappingError
from ..i18n import _
from . import values
from .values import Record

# Methods of ``str`` that only read the text and return new values: safe in any sandbox.
# ``format`` and ``format_map`` are not among them (the sandbox replaces them with a safe
# formatter), nor is anything that is not a plain method.
_PURE_STR_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdecimal",
    "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
})


class RecordSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with fast paths for record fields and text methods.

    The sandbox vets every attribute access (about 2 µs each), and a catalog row reads
    hundreds: fields, relations, ``split``. A ``Record`` field or relation is data (text,
    a list, another record), never a Python attribute: reading it through the record's
    own ``[]`` can reach nothing else, so it needs no vetting. The methods of ``str`` in
    ``_PURE_STR_METHODS`` only read. Everything else goes through the sandbox's checks.
    """

    lookup_tables: Mapping[str, Callable[[Any], str]] = {}  # the mapping's tables, by name (the filter 'lookup')

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Record) and type(attribute) is str and not attribute.startswith("_"):
            return obj[attribute]  # a field, a batch row's relation, or MISSING: never a method
        if type(obj) is str and attribute in _PURE_STR_METHODS:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Record) and type(argument) is str and not argument.startswith("_"):
            return obj[argument]
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

    env.lookup_tables = dict(lookups)

    def lookup(value: Any, table: str) -> str:
        try:
            fn = lookups[table]
        except KeyError:
            known = ", ".join(lookups) or _("none")
            raise MappingError(_("there is no lookup table '{table}' (tables: {known})").format(
                table=table, known=known)) from None
        return fn(value)

    def join_nonempty(parts: Any, separator: str = " ") -> str:
        return separator.join([text for p in values.as_list(parts) if (text := str(p).strip())])

    env.filters.update(
        {
            "lookup": lookup,
            "decimal": values.to_decimal,  # (value, german=False)
            "number": values.format_number,  # (value, places=2, decimal=",", thousands="")
            "date": values.format_date,
            "join_nonempty": join_nonempty,
            "valid_on": values.valid_on,
            "sort_by_number": values.sort_by_number,
        }
    )
    return env
