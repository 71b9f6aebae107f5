"""Outputs of rows (``format: csv`` and ``format: json``): one file per input, per record, or per value.

The mapping turns each record into rows (``CompiledOutput.rows_for``); the output's row
format (registry: CSV or JSON) turns rows into bytes. Three shapes share that:

- ``per: input`` (the default): one file for all records, open from the first record to the
  last and returned by ``finish``; a file without rows is removed and not returned;
- ``split_by``: one such file per value (a language, a country), opened when its first row
  comes; the values must be few, see ``MAX_SPLIT_FILES``;
- ``per: record``: a file of its own for each record, complete when ``write`` returns.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MappingError
from ..i18n import _
from .base import OutputWriter, RecordAt, RowFormat, StagedOutput, Staging
from .registry import open_rows

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledOutput

MAX_SPLIT_FILES = 100  # files one output may be divided into by ``split_by`` (languages, countries)


class RowFile:
    """One staged file of rows being written."""

    def __init__(self, out: CompiledOutput, path: Path, name: str) -> None:
        self.out = out
        self.path = path
        self.name = name
        self.file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in finish() or close()
        try:
            self.writer: RowFormat = open_rows(self.file, out)
        except BaseException:
            self.file.close()  # the header could not be written: nobody else holds the file yet
            raise

    def write(self, record: RecordAt) -> None:
        write = self.writer.write
        for row in self.out.rows_for(record.context):
            write(row, record.name)

    def finish(self) -> StagedOutput | None:
        """Close the file (flushed to disk); ``None`` (and no file) when it got no rows."""
        self.writer.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if self.writer.rows == 0:
            self.path.unlink()
            return None
        return StagedOutput(output=self.out.name, destination=self.out.spec.to, name=self.name,
                            path=self.path, rows=self.writer.rows)

    def close(self) -> None:
        with suppress(OSError):
            self.file.close()


class RowsPerInput:
    """``per: input``: every record's rows in one file."""

    needs_records = True
    rank = 0

    def __init__(self, out: CompiledOutput, position: int, staging: Staging) -> None:
        name = out.file_name(staging.base_context)
        self.file = RowFile(out, staging.place(position, out.name), name)
        self._rows_for, self._write = out.rows_for, self.file.writer.write  # bound once: called for every record
        staging.names.add(name)

    def write(self, record: RecordAt) -> list[StagedOutput]:
        write, name = self._write, record.name
        for row in self._rows_for(record.context):
            write(row, name)
        return []

    def finish(self, records: int | None) -> list[StagedOutput]:
        staged = self.file.finish()
        return [staged] if staged is not None else []

    def close(self) -> None:
        self.file.close()


class RowsSplit:
    """``split_by``: a file per value of the split expression, each opened when its first row comes."""

    needs_records = True
    rank = 0

    def __init__(self, out: CompiledOutput, position: int, staging: Staging) -> None:
        self.out = out
        self.place = staging.place(position, out.name)
        self.base_context = staging.base_context
        self.files: dict[str, RowFile] = {}

    def write(self, record: RecordAt) -> list[StagedOutput]:
        for value, row in self.out.split_rows_for(record.context):
            handle = self.files.get(value)
            if handle is None:
                handle = self._open(value)
            handle.writer.write(row, record.name)
        return []

    def _open(self, value: str) -> RowFile:
        if len(self.files) >= MAX_SPLIT_FILES:
            raise MappingError(_(
                "'split_by' would divide the output into more than {count} files; it is meant for values with few "
                "possibilities, such as a language").format(count=MAX_SPLIT_FILES), field="split_by", value=value,
                mapping=self.out.where)
        name = self.out.file_name({**self.base_context, "split": value})
        handle = RowFile(self.out, self.place.with_name(f"{self.place.name}-{len(self.files)}"), name)
        self.files[value] = handle
        return handle

    def finish(self, records: int | None) -> list[StagedOutput]:
        return [staged for handle in self.files.values() if (staged := handle.finish()) is not None]

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


class RowsPerRecord:
    """``per: record``: a file of its own for each record (none for a record without rows)."""

    needs_records = True
    rank = 0

    def __init__(self, out: CompiledOutput, position: int, staging: Staging) -> None:
        self.out = out
        self.position = position
        self.staging = staging

    def write(self, record: RecordAt) -> list[StagedOutput]:
        path = self.staging.place(self.position, self.out.name, record.number)
        handle = RowFile(self.out, path, self.out.file_name(record.context))
        try:
            handle.write(record)
        except BaseException:
            handle.close()
            raise
        staged = handle.finish()
        return [staged] if staged is not None else []

    def finish(self, records: int | None) -> list[StagedOutput]:
        return []

    def close(self) -> None:
        """Nothing stays open between records."""


def rows_writer(out: CompiledOutput, position: int, staging: Staging) -> OutputWriter:
    """The writer for an output of rows, by its shape."""
    if out.spec.per == "record":
        return RowsPerRecord(out, position, staging)
    if out.split is not None:
        return RowsSplit(out, position, staging)
    return RowsPerInput(out, position, staging)
