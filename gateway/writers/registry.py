"""The kinds of output and the row formats, each registered once.

``writer_for`` is the one way the conversion gets a writer for an output: it looks the
output's ``format`` up here and imports the writer's module on first use (a flow without
e-mails never imports the e-mail writer). ``open_rows`` does the same for the formats of
rows inside a file.

Adding an output kind ``edifact`` (a document per record in EDIFACT, say):

1. its model in ``gateway/mapping/model.py`` (``format: Literal["edifact"]``) in the
   ``OutputSpec`` union, and how the mapping compiles it in ``gateway/mapping/compiler.py``;
2. a module ``gateway/writers/edifact.py`` with a class following ``base.OutputWriter``,
   made as ``Writer(compiled_output, position, staging)``;
3. one line below: ``"edifact": ("gateway.writers.edifact", "EdifactWriter")``.

A new format of rows (``format: xlsx`` with columns like CSV) is one module with a
``base.RowFormat`` factory ``(file, compiled_output)`` and one line in ``_ROW_FORMATS``.
``tests/test_writer_registry.py`` checks that the mapping's models and this registry name
the same kinds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, cast

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledOutput
    from .base import OutputWriter, RowFormat, Staging

WriterFactory = Callable[[Any, int, "Staging"], "OutputWriter"]
RowFormatFactory = Callable[[BinaryIO, "CompiledOutput"], "RowFormat"]

# output format (``format:`` of an output in a mapping) → module and factory of its writer
_OUTPUT_KINDS: dict[str, tuple[str, str]] = {
    "csv": ("gateway.writers.rows", "rows_writer"),
    "json": ("gateway.writers.rows", "rows_writer"),
    "template": ("gateway.writers.template", "TemplateWriter"),
    "email": ("gateway.writers.email", "EmailWriter"),
    "file": ("gateway.writers.passed_on", "PassedOnFiles"),
}

# format of rows in a file → module and factory of its row format
_ROW_FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("gateway.writers.csv", "open_csv"),
    "json": ("gateway.writers.json", "open_json"),
}


def output_kinds() -> list[str]:
    """Every registered output format, for the tests that hold the models and the registry together."""
    return list(_OUTPUT_KINDS)


def row_formats() -> list[str]:
    return list(_ROW_FORMATS)


def _load(table: dict[str, tuple[str, str]], kind: str) -> Any:
    try:
        module, name = table[kind]
    except KeyError:  # the models and this table disagree: a programming error, caught by the tests
        raise LookupError(f"no writer is registered for the output format {kind!r}") from None
    return getattr(importlib.import_module(module), name)


def writer_for(out: Any, position: int, staging: Staging) -> OutputWriter:
    """The writer of the compiled output ``out``, the ``position``-th output of its mapping."""
    factory = cast(WriterFactory, _load(_OUTPUT_KINDS, out.spec.format))
    return factory(out, position, staging)


def open_rows(file: BinaryIO, out: CompiledOutput) -> RowFormat:
    """The row format of ``out`` writing into the open binary ``file`` (its header, if any, written)."""
    factory = cast(RowFormatFactory, _load(_ROW_FORMATS, out.spec.format))
    return factory(file, out)
