"""Files of a batch passed on as they are (``format: file``): a product's data sheet, a picture.

Each record (or each entry of ``for_each``) names a file of the batch; it is copied into the
stage folder under a name the mapping gives, checked at once against the names of this
input's other outputs, so that the reason names the row that chose it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..mapping.model import BatchInput
from ..readers.batch import copy_batch_file
from .base import RecordAt, StagedOutput, Staging

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledFiles


class PassedOnFiles:
    """Copies the files each record names out of the batch into the stage folder."""

    needs_records = True
    rank = 1

    def __init__(self, files: CompiledFiles, position: int, staging: Staging) -> None:
        self.files = files
        self.position = position
        self.staging = staging
        spec = staging.mapping.spec.input
        # only files the batch holds as members, never one of its tables (a price list with dealers)
        self.tables = [spec.file_of(name) for name in spec.tables] if isinstance(spec, BatchInput) else []

    def write(self, record: RecordAt) -> list[StagedOutput]:
        staged = []
        staging = self.staging
        for n, item in enumerate(self.files.files_for(record.context)):
            staging.names.claim(item.name, item.row, self.files.where)
            path = staging.place(self.position, self.files.name, record.number, n)
            copy_batch_file(staging.source, staging.shown_as, item.source, path, folder=self.files.spec.folder,
                            tables=self.tables, row=item.row)
            staged.append(StagedOutput(output=self.files.name, destination=self.files.spec.to, name=item.name,
                                       path=path, rows=1))
        return staged

    def finish(self, records: int | None) -> list[StagedOutput]:
        return []

    def close(self) -> None:
        """Each copy is complete when ``write`` returns."""
