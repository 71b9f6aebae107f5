"""What code generated from a mapping may call: the whole of it, in one place.

:mod:`.compile_python` writes Python that reads names it was given and calls the functions
of the namespace built here, nothing else (no builtins but ``str``, ``len``, ``list``,
``iter``, ``enumerate`` and the exceptions it catches). Each function does what Jinja's compiled code does with the same
objects, through the same sandboxed environment where it is not a plain record field:

- ``_ga``/``_gi``: ``a.b``/``a[b]``. A record's field (or a batch row's relation) is read from
  the record, as :class:`.templating.RecordSandbox` does; a list is indexed directly;
  everything else goes through the sandbox's own ``getattr``/``getitem``.
- ``_cm``: a call of a method that only reads a ``str`` (``split``, ``partition`` …); on an
  empty field (``MISSING``) it gives the empty field back, as Jinja does; on any other
  object it raises :class:`NotGenerated`, and Jinja evaluates the value instead.
- ``_F``/``_T``: the environment's own filters and tests, called as Jinja calls them (``_L``: the
  mapping's lookup tables, which the filter ``lookup`` calls by name);
  ``select``, ``reject``, ``selectattr``, ``rejectattr`` and ``map`` take Jinja's context,
  so they are written out here, to the letter of Jinja's ``select_or_reject``,
  ``prepare_map`` and ``make_attrgetter``, but give lists (see :mod:`.compile_python`).
- ``_G_namespace``, ``_G_range``: the environment's ``namespace`` and (sandboxed) ``range``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

from jinja2.nodes import EvalContext
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace

from .templating import _PURE_STR_METHODS
from .values import MISSING, Record, as_list

# Filters whose Jinja implementation generated code may call (all pure); the gateway's own are added.
SUPPORTED_FILTERS = frozenset({
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
    "last", "length", "list", "lower", "max", "min", "replace", "reverse", "round", "safe", "slice", "sort",
    "string",
    "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize",
    "wordcount", "wordwrap", "xmlattr",
    # written out here (they take Jinja's context)
    "map", "reject", "rejectattr", "select", "selectattr",
    # the gateway's (templating.make_environment)
    "date", "decimal", "join_nonempty", "lookup", "number", "sort_by_number", "valid_on",
})
CONTEXT_FILTERS = frozenset({"map", "reject", "rejectattr", "select", "selectattr"})
# Filters that only iterate over their value once, so a list serves them as Jinja's generator would.
ITERATING_FILTERS = frozenset({"first", "groupby", "join", "list", "max", "min", "sort", "sort_by_number", "sum",
                               "unique", "valid_on"})
SUPPORTED_TESTS = frozenset({
    "!=", "<", "<=", "==", ">", ">=", "boolean", "defined", "divisibleby", "eq", "equalto", "escaped", "even",
    "false", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
    "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "true", "undefined", "upper",
})
LOOP_ATTRIBUTES = frozenset({"index", "index0", "first", "last", "length", "revindex", "revindex0"})

# Methods of str that generated code may call: those the sandbox lets through unchanged and that only read.
_MORE_STR_METHODS = frozenset({"isascii", "isidentifier", "isprintable", "expandtabs"})


def callable_str_methods() -> frozenset[str]:
    return _PURE_STR_METHODS | _MORE_STR_METHODS


class _NoBatch:
    """Stands for the batch row class in a mapping that reads no batch: no object is of this type."""


class NotGenerated(Exception):
    """Generated code met a case it does not handle: the value is evaluated by Jinja instead."""


def namespace_for(env: SandboxedEnvironment, batch_record: type | None = None,
                  row_fields: type | None = None) -> dict[str, Any]:
    """The globals of the code generated for a mapping that runs in ``env``.

    A ``Record``'s field, and a field or relation of a ``batch_record`` (a batch's row, whose
    ``_relation`` reads a relation), are read directly: for them, ``[name]`` is what the
    sandbox itself returns.
    """
    methods = callable_str_methods()
    pure = _PURE_STR_METHODS
    env_getattr, env_getitem = env.getattr, env.getitem
    record = Record
    batch: Any = batch_record if batch_record is not None else _NoBatch
    plain = frozenset({Record, batch})
    missing = MISSING

    csv_row: Any = row_fields if row_fields is not None else _NoBatch

    def _ga(obj: Any, name: str) -> Any:
        kind = type(obj)
        if kind is batch:
            value = obj._fields.get(name, missing)
            return value if value is not missing else obj._relation(name)
        if kind is record:
            fields = obj._fields
            if type(fields) is csv_row:  # a CSV row's fields (readers.csv.RowFields.get, without the call)
                at = fields._header.position.get(name)
                if at is None:
                    return missing
                values = fields._values
                return (values[at] or missing) if at < len(values) else missing
            return fields.get(name, missing)
        if obj is missing:
            return missing
        if kind is str and name in pure:
            return getattr(obj, name)
        return env_getattr(obj, name)

    positions: dict[tuple[int, tuple[str, ...]], tuple[Any, list[int | None]]] = {}

    def _fields_of(obj: Any, names: tuple[str, ...]) -> list[Any]:
        """``[_ga(obj, name) for name in names]`` for columns of a record, in one call (see compile_rows)."""
        kind = type(obj)
        if kind is record or kind is batch:
            fields = obj._fields
            if type(fields) is csv_row:
                header = fields._header
                known = positions.get((id(header), names))
                if known is None or known[0] is not header:
                    if len(positions) > 64:
                        positions.clear()
                    known = positions[(id(header), names)] = (header, [header.position.get(n) for n in names])
                values = fields._values
                width = len(values)
                return [(values[at] or missing) if at is not None and at < width else missing for at in known[1]]
            if kind is record:
                return list(map(fields.get, names, repeat(missing)))
        return [_ga(obj, name) for name in names]

    def _gi(obj: Any, key: Any) -> Any:
        kind = type(obj)
        if kind is list and type(key) is int:
            try:
                return obj[key]
            except IndexError:
                return env_getitem(obj, key)  # Jinja's undefined value for a missing index
        if kind in plain and type(key) is str and not key.startswith("_"):
            return obj[key]
        return env_getitem(obj, key)

    def _cm(obj: Any, name: str, *args: Any) -> Any:
        if type(obj) is str and name in methods:
            return getattr(obj, name)(*args)
        if obj is missing:
            return missing  # an empty field's method gives the empty field (values._Missing)
        raise NotGenerated(f"a call of {name} on {type(obj).__name__}")

    def _item(item: Any, parts: tuple[str | int, ...]) -> Any:
        """``make_attrgetter`` without a default: each part through ``getitem``."""
        for part in parts:
            item = item[part] if type(item) in plain and type(part) is str else env_getitem(item, part)
        return item

    def _select_truth(seq: Any, parts: tuple[str | int, ...] | None, keep: bool) -> list[Any]:
        if not seq:
            return []
        if parts is None:
            return [x for x in seq if bool(x) is keep]
        return [x for x in seq if bool(_item(x, parts)) is keep]

    def _select_test(seq: Any, parts: tuple[str | int, ...] | None, keep: bool, test: Callable[..., Any],
                     args: tuple[Any, ...]) -> list[Any]:
        if not seq:
            return []
        if parts is None:
            return [x for x in seq if bool(test(x, *args)) is keep]
        if len(parts) == 1 and type(parts[0]) is str:
            name = parts[0]
            found = []
            for x in seq:
                if type(x) in plain:
                    value = x._fields.get(name, missing)
                    if value is missing and type(x) is batch:
                        value = x._relation(name)
                else:
                    value = env_getitem(x, name)
                if bool(test(value, *args)) is keep:
                    found.append(x)
            return found
        return [x for x in seq if bool(test(_item(x, parts), *args)) is keep]

    def _map_attribute(seq: Any, parts: tuple[str | int, ...], default: Any) -> list[Any]:
        if not seq:
            return []
        if default is None:
            if len(parts) == 1 and type(parts[0]) is str:
                name = parts[0]
                found = []
                for x in seq:
                    if type(x) in plain:
                        value = x._fields.get(name, missing)
                        if value is missing and type(x) is batch:
                            value = x._relation(name)
                    else:
                        value = env_getitem(x, name)
                    found.append(value)
                return found
            return [_item(x, parts) for x in seq]
        found = []
        for x in seq:
            for part in parts:
                x = x[part] if type(x) in plain and type(part) is str else env_getitem(x, part)
                if isinstance(x, Undefined):
                    x = default
            found.append(x)
        return found

    def _map_filter(seq: Any, func: Callable[..., Any], args: tuple[Any, ...]) -> list[Any]:
        if not seq:
            return []
        return [func(x, *args) for x in seq]

    def _map_filter_with(seq: Any, func: Callable[..., Any], lead: Any, args: tuple[Any, ...]) -> list[Any]:
        if not seq:
            return []
        return [func(lead, x, *args) for x in seq]

    def _attr_parts(attribute: Any) -> tuple[Any, ...]:
        """``_prepare_attribute_parts`` of Jinja, for an attribute name computed at run time."""
        if attribute is None:
            return ()
        if isinstance(attribute, str):
            return tuple(int(x) if x.isdigit() else x for x in attribute.split("."))
        return (attribute,)

    def _ns_set(ref: Any, attr: str, value: Any) -> None:
        if not isinstance(ref, Namespace):
            raise NotGenerated("an attribute set on something that is not a namespace")
        ref[attr] = value

    def _undefined(name: str) -> Any:
        return env.undefined(name=name)

    return {
        "__builtins__": {"str": str, "len": len, "list": list, "iter": iter, "enumerate": enumerate,
                         "Exception": Exception, "MemoryError": MemoryError, "RecursionError": RecursionError},
        "_ga": _ga, "_gi": _gi, "_fields_of": _fields_of, "_cm": _cm, "_ns_set": _ns_set, "_undefined": _undefined,
        "_select_truth": _select_truth, "_select_test": _select_test, "_map_attribute": _map_attribute,
        "_map_filter": _map_filter, "_attr_parts": _attr_parts, "_map_filter_with": _map_filter_with,
        "_F": {name: f for name, f in env.filters.items() if name in SUPPORTED_FILTERS},
        "_T": {name: t for name, t in env.tests.items() if name in SUPPORTED_TESTS},
        "_ENV": env, "_EVAL": EvalContext(env), "_Undefined": Undefined,
        "_L": dict(getattr(env, "lookup_tables", {})),
        "_G_namespace": env.globals["namespace"], "_G_range": env.globals["range"],
        "_as_list": as_list, "MISSING": MISSING, "_Record": Record,
    }


def iterate(value: Iterable[Any]) -> list[Any]:
    """``list(value)``: what ``define`` keeps of a filter's one-time result."""
    return list(value)
