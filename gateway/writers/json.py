"""JSON written by the json module: every row an object, in an array or one per line.

Column values come out of the mapping as text; a column declared ``type: number``,
``integer`` or ``boolean`` is written as a JSON number or true/false, so that a shop's
importer gets ``12.9`` rather than ``"12,90"``. An empty value is ``null``.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MappingError
from ..i18n import _
from ..mapping.model import JsonOutput
from ..mapping.values import to_decimal

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledOutput

_TRUE = {"1", "-1", "true", "yes", "ja", "y", "j", "wahr"}
_FALSE = {"0", "false", "no", "nein", "n", "falsch"}


def _json_value(text: str, kind: str, column: str) -> str:
    if kind == "text":
        return json.dumps(text, ensure_ascii=False)
    if not text.strip():
        return "null"
    if kind == "boolean":
        word = text.strip().lower()
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
        raise MappingError(_("expected yes or no (1/0, -1/0, true/false)"), field=column, value=text)
    try:
        number = to_decimal(text.strip(), german="," in text)
    except MappingError as exc:
        raise exc.located(field=column) from None
    if kind == "integer":
        if number != number.to_integral_value():
            raise MappingError(_("expected a whole number"), field=column, value=text)
        return str(int(number))
    try:
        return _plain_decimal(number)
    except InvalidOperation:  # pragma: no cover - to_decimal gives finite numbers
        raise MappingError(_("expected a number"), field=column, value=text) from None


def _plain_decimal(number: Decimal) -> str:
    text = format(number, "f")
    return text


class JsonWriter:
    def __init__(self, out: BinaryIO, columns: list[str], types: list[str], *, layout: str = "array") -> None:
        self.out = out
        self.columns = columns
        self.types = types
        self.layout = layout
        self.keys = [json.dumps(c, ensure_ascii=False) for c in columns]
        self.rows = 0
        if layout == "array":
            self.out.write(b"[")

    def write(self, values: list[str], record: str) -> None:
        try:
            body = ", ".join(
                f"{key}: {_json_value(value, kind, column)}"
                for key, value, kind, column in zip(self.keys, values, self.types, self.columns, strict=True)
            )
        except MappingError as exc:
            raise exc.located(record=record) from None
        prefix = b"" if self.layout == "lines" else (b"\n  " if self.rows == 0 else b",\n  ")
        self.out.write(prefix + ("{" + body + "}").encode("utf-8") + (b"\n" if self.layout == "lines" else b""))
        self.rows += 1

    def close(self) -> None:
        if self.layout == "array":
            self.out.write(b"\n]\n" if self.rows else b"]\n")


def open_json(out: BinaryIO, output: CompiledOutput) -> JsonWriter:
    """The row format ``json`` (registry): a ``JsonWriter`` with the output's column types and layout."""
    spec = output.spec
    if not isinstance(spec, JsonOutput):  # the registry chose this format by the spec's own name
        raise TypeError(f"not a JsonOutput: {spec!r}")
    return JsonWriter(out, output.column_names, output.column_types, layout=spec.layout)
