"""The contract of the output writers: start here to add a kind of output.

A mapping's ``outputs`` are of a few kinds (``format:`` in the mapping): rows in a file
(``csv``, ``json``), a document rendered by a template (``template``), one e-mail per
record (``email``) and files of a batch passed on (``file``). The conversion does not ask
which kind an output is: it asks the registry (``registry.py``) for the output's writer and
talks to every writer through ``OutputWriter`` below. Each writer only stages files in the
input's stage folder; nothing is published here (the engine commits, then delivers).

Underneath, rows become bytes through a *row format* (``RowFormat``: CSV, JSON), also
registered once, so that a new file format is one module and one line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import InputError
from ..i18n import _
from ..timelimit import DEFAULT_SECONDS

if TYPE_CHECKING:
    from ..mapping.compiler import Mapping
    from ..readers.batch import BatchDatabase
    from .email import MailSettings


@dataclass(frozen=True)
class StagedOutput:
    """One complete file in the stage folder, with the name it gets at its destination."""

    output: str  # the output's name in the mapping
    destination: str
    name: str  # the file name it gets at the destination
    path: Path  # the complete file in the work folder
    rows: int


class RecordAt(NamedTuple):
    """One record as every writer gets it: after the mapping decided to keep it.

    ``context`` is what the mapping's templates see (the record, ``settings``, ``input`` and
    the defined values); ``name`` is how messages name the record (its key, or its number);
    ``number`` its position in the input, counted from 1, which keeps per-record files apart.
    """

    context: dict[str, Any]
    name: str
    number: int


@dataclass
class Staging:
    """What all writers of one input share: where they stage, and what they may need to know.

    ``skipped`` fills while the records pass: writers that read the input a second time (a
    template over all records) leave those records out. ``names`` holds the file names given
    so far, so that a file passed on cannot take another output's name.
    """

    mapping: Mapping
    source: Path
    shown_as: str
    stage: Path  # the input's stage folder; each writer stages under ``<position>-<output name>``
    input_info: dict[str, Any]
    settings: dict[str, str]
    base_context: dict[str, Any]  # the context without a record: for names of per-input files
    mail: MailSettings
    database: BatchDatabase | None = None
    record_seconds: float = DEFAULT_SECONDS
    skipped: set[int] = field(default_factory=set)
    names: OutputNames = field(default_factory=lambda: OutputNames(()))

    def place(self, position: int, name: str, *parts: object) -> Path:
        """Where an output stages a file: unique per output position, and per record where given."""
        return self.stage / "-".join([f"{position:02d}", name, *(str(p) for p in parts)])


class OutputWriter(Protocol):
    """The contract of every kind of output.

    A writer is made before the first record (``registry.writer_for``) and then:

    - ``write(record)`` for each record the mapping keeps, in order. It returns the files
      that are complete at once (a file per record, an e-mail, a file passed on); files
      kept open for the whole input are returned by ``finish``.
    - ``finish(records)`` after the last record, with how many were kept; ``None`` when the
      conversion made no pass over the records because no writer needs one (then a writer
      that reads the input itself, a template, does so alone).
    - ``close()`` always, last, also after an error: it closes what is still open without
      finishing it (the stage folder is thrown away after a failure).

    A fault of the data raises ``InputError``/``MappingError`` naming the field; the
    conversion adds the file, line and record.
    """

    #: whether the writer needs the conversion's pass over the records (a template makes its own)
    needs_records: bool
    #: the order among writers: outputs of one record are staged by rank, then by position
    rank: int

    def write(self, record: RecordAt) -> list[StagedOutput]: ...

    def finish(self, records: int | None) -> list[StagedOutput]: ...

    def close(self) -> None: ...


class RowFormat(Protocol):
    """The contract of a row format (CSV, JSON): rows of text values in, bytes out.

    Made with the open binary file and the compiled output (columns, encoding, layout);
    ``write`` takes one row's values in column order and the record's name for messages;
    ``close`` writes what ends the file (JSON's closing bracket), not closing the file.
    """

    rows: int

    def write(self, values: list[str], record: str) -> None: ...

    def close(self) -> None: ...


def folded(name: str) -> str:
    """A file name as a share or Mac folder compares it: case and the spelling of accents do not count."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


class OutputNames:
    """The output names of one input so far, to refuse a passed-on file that would take one of them."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = {folded(name): name for name in names}

    def add(self, name: str) -> None:
        """A name an output will certainly take (a per-input file, known before the records)."""
        self._names[folded(name)] = name

    def claim(self, name: str, row: str | None, mapping: str) -> None:
        folded_name = folded(name)
        other = self._names.get(folded_name)
        if other is None:
            self._names[folded_name] = name
        else:
            if other == name:
                words = _("the file passed on as '{name}' for {row} would have the same name as the output '{other}' "
                          "of this input; the names of files passed on must differ from every other output's") if row \
                    else _("the file passed on as '{name}' would have the same name as the output '{other}' of this "
                           "input; the names of files passed on must differ from every other output's")
            else:
                words = _("the file passed on as '{name}' for {row} would have a name that is the same on Windows and "
                          "Mac shares as the output '{other}' of this input; the names of files passed on must differ "
                          "from every other output's") if row else _(
                          "the file passed on as '{name}' would have a name that is the same on Windows and Mac shares "
                          "as the output '{other}' of this input; the names of files passed on must differ from every "
                          "other output's")
            raise InputError(words.format(name=name, row=row, other=other), mapping=mapping)
