"""CSV written by the csv module, never by a template: quoting must be exact.

Each row is encoded as it is written, so a character the target encoding cannot hold
(a ``€`` is fine in Windows-1252, a ``ł`` is not) is reported with its record and
column instead of surfacing later from a buffer flush with no context.

Formulas. A buyer's comment ``=HYPERLINK("http://…","…")`` ends up in a cell of the SOL
import CSV, and whoever opens that file in Excel or LibreOffice runs it. So a value that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a ``'``
in front, the usual convention: spreadsheets show the text as it was and do not compute it.
A value that can only be arithmetic on numbers is left alone, since it can neither call a
function nor reach a file or another cell, and SOL must receive it unchanged: ``-12,90``,
``-1.234,50``, ``+49 30 123456``, ``+43 (0)1 234567``. The ``'`` is added as the row is
written, after the mapping's length rules. An output says ``formulas: keep`` to write
values as they are (for an importer that takes a leading ``'`` as part of the value and
whose files nobody opens in a spreadsheet).
"""

from __future__ import annotations

import csv
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MappingError
from ..i18n import _
from ..mapping.model import CsvOutput

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledOutput

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ANY_FORMULA_START = re.compile("\x00[=+@\t\r-]")  # in NUL + the row's values joined by NUL: one C-level search
_ONLY_NUMBERS = re.compile(r"[+-]?[0-9 ()./,+-]*[0-9][0-9 ()./,+-]*(?:[eE][+-]?[0-9]+)?")  # digits, signs, separators


def neutralised(value: str) -> str:
    """``value`` as a spreadsheet shows it but does not compute it (see the module's description)."""
    if value.startswith(_FORMULA_START) and not _ONLY_NUMBERS.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    def __init__(
        self,
        out: BinaryIO,
        columns: list[str],
        *,
        encoding: str = "utf-8",
        delimiter: str = ";",
        header: bool = True,
        line_end: str = "\r\n",
        replace_unencodable: bool = False,
        neutralise_formulas: bool = True,
    ) -> None:
        self.columns = columns
        self._neutralise = neutralise_formulas
        self.encoding = encoding
        self._errors = "replace" if replace_unencodable else "strict"
        self._out = out
        # The csv module writes each finished line to ``write``: here straight into a list (no Python call),
        # from which the line is encoded and written at once, so that a character the encoding lacks is
        # reported with its record and column, not later from a buffer with no context.
        self._lines: list[str] = []
        self._writer = csv.writer(SimpleNamespace(write=self._lines.append), delimiter=delimiter, quotechar='"',
                                  quoting=csv.QUOTE_MINIMAL, lineterminator=line_end)
        self.rows = 0
        if header:
            self._write(columns, "the header line")

    def write(self, values: list[str], record: str) -> None:
        if self._neutralise and _ANY_FORMULA_START.search("\x00" + "\x00".join(values)):
            values = [neutralised(v) if v[:1] in _FORMULA_START else v for v in values]
        self._writer.writerow(values)  # as _write does, without a further call for every row
        try:
            self._out.write(self._lines.pop().encode(self.encoding, self._errors))
        except UnicodeEncodeError as exc:
            self._refuse(values, record, exc)
        self.rows += 1

    def _write(self, values: list[str], record: str) -> None:
        self._writer.writerow(values)
        try:
            self._out.write(self._lines.pop().encode(self.encoding, self._errors))
        except UnicodeEncodeError as exc:
            self._refuse(values, record, exc)

    def _refuse(self, values: list[str], record: str, exc: UnicodeEncodeError) -> None:
        field, bad = self._find_unencodable(values)
        raise MappingError(_(
            "the character {character} cannot be written in {encoding}; change the text in the source system or "
            "map it to another character").format(character=repr(bad), encoding=self.encoding),
            record=record, field=field,
        ) from exc

    def close(self) -> None:
        """Nothing to finish: a CSV file is complete after its last row."""

    def _find_unencodable(self, values: list[str]) -> tuple[str | None, str]:
        for name, value in zip(self.columns, values, strict=False):
            for ch in value:
                try:
                    ch.encode(self.encoding)
                except UnicodeEncodeError:
                    return name, ch
        return None, "?"


def open_csv(out: BinaryIO, output: CompiledOutput) -> CsvWriter:
    """The row format ``csv`` (registry): a ``CsvWriter`` set up from the output's ``format: csv`` options."""
    spec = output.spec
    if not isinstance(spec, CsvOutput):  # the registry chose this format by the spec's own name
        raise TypeError(f"not a CsvOutput: {spec!r}")
    return CsvWriter(out, output.column_names, encoding=spec.encoding, delimiter=spec.delimiter, header=spec.header,
                     line_end="\r\n" if spec.line_end == "crlf" else "\n",
                     replace_unencodable=spec.unencodable == "replace",
                     neutralise_formulas=spec.formulas == "neutralise")
