"""The input formats, each registered once: its name, its input model, and the module that reads it.

Start here. A *reader* turns one input (a file, or a batch folder) into a stream of records;
every reader has the same signature, the ``Reader`` protocol below, so the rest of the
gateway never asks which format it holds. ``read_records`` is the one way in: it looks the
format up here, imports its module on first use (the XML reader brings lxml, the batch
reader SQLite and zipfile: a flow that reads CSV pays for neither), and groups the records
when the mapping asks for ``group_by``.

Adding a format ``edi``:

1. its input model in ``gateway/mapping/model.py`` (``class EdiInput(InputBase)`` with
   ``format: Literal["edi"]``), added to the ``InputSpec`` union there, which is what
   ``gateway check`` validates mappings against;
2. a module ``gateway/readers/edi.py`` with ``def read(source, shown_as, spec, room)``;
3. one line below: ``register("edi", EdiInput, "gateway.readers.edi")``.

(The models stay in ``mapping/model.py`` because the mapping's typed model, and the
messages of ``gateway check``, are built from that union.)

``tests/test_reader_registry.py`` checks that the union and this registry name the same formats.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import InputError
from ..mapping.model import (
    BatchInput,
    CsvInput,
    FixedInput,
    InputBase,
    JsonInput,
    JsonLinesInput,
    XmlInput,
)
from ..mapping.values import Record
from .grouping import group_records

if TYPE_CHECKING:
    from .batch import BatchDatabase

Spec = TypeVar("Spec", bound=InputBase, contravariant=True)


@dataclass(frozen=True)
class ReadRoom:
    """What a reader may use besides its input.

    ``folder`` is a private folder for the reader's own files (a batch's unpacked members
    and join database); the caller removes it after the input. ``None`` means the caller
    has none to give: ``read_records`` then makes a temporary one for a format registered
    with ``needs_folder`` and removes it when the records end.

    ``database`` holds a batch's database from the first pass over an input, so that a
    second pass over the same input (a template output after the row outputs) reads it
    again instead of loading the tables twice. The caller closes it when the input is done.
    """

    folder: Path | None = None
    database: BatchDatabase | None = None


class Reader(Protocol[Spec]):
    """The contract of every reader: ``read(source, shown_as, spec, room)`` in its module.

    - ``source`` is the input as it lies in the work folder (a file, or a batch folder);
    - ``shown_as`` is the input's name as the admin knows it, used in every message;
    - ``spec`` is the mapping's ``input`` section, already validated (its model is the one
      registered with the format);
    - ``room`` is where the reader may keep files, see ``ReadRoom``.

    It returns an iterator of ``Record``: one per record, streamed, so memory does not grow
    with the input. A fault of the input raises ``ReadError`` (an ``InputError``) naming the
    file, the line or member, and what was expected, in plain words; the records before it
    have been handed on by then. Readers are generators: a caller that stops early closes
    the iterator, which closes the reader's files.
    """

    def __call__(self, source: Path, shown_as: str, spec: Spec, room: ReadRoom) -> Iterator[Record]: ...


@dataclass(frozen=True)
class InputFormat:
    """One registered input format."""

    name: str  # the value of ``input.format`` in a mapping
    model: type[InputBase]  # its section of the mapping
    module: str  # the module that reads it, imported on first use
    function: str = "read"  # the reader in that module
    needs_folder: bool = False  # the reader keeps files of its own (``ReadRoom.folder`` is then never None)
    groups_itself: bool = False  # the reader applies ``group_by`` itself (a batch sorts in its database)


FORMATS: dict[str, InputFormat] = {}


def register(name: str, model: type[InputBase], module: str, function: str = "read", *,
             needs_folder: bool = False, groups_itself: bool = False) -> None:
    """Make ``input.format: name`` read by ``module.function``; a name is registered once."""
    if name in FORMATS:
        raise ValueError(f"the input format {name!r} is registered twice")
    FORMATS[name] = InputFormat(name, model, module, function, needs_folder, groups_itself)


register("xml", XmlInput, "gateway.readers.xml")
register("csv", CsvInput, "gateway.readers.csv")
register("json", JsonInput, "gateway.readers.json")
register("jsonl", JsonLinesInput, "gateway.readers.json", "read_lines")
register("fixed", FixedInput, "gateway.readers.fixed")
register("batch", BatchInput, "gateway.readers.batch", needs_folder=True, groups_itself=True)


def format_of(spec: InputBase) -> InputFormat:
    """The registered format of ``spec``; an unknown one is an error, never a fall-through to another reader."""
    name = getattr(spec, "format", None)
    found = FORMATS.get(name) if isinstance(name, str) else None
    if found is None or not isinstance(spec, found.model):
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"no reader is registered for the input format {name!r} of {type(spec).__name__} "
                         f"(registered: {known})")
    return found


def reader_for(spec: InputBase) -> Reader[Any]:
    """The reader of ``spec``'s format, its module imported now if it was not yet."""
    fmt = format_of(spec)
    reader: Reader[Any] = getattr(importlib.import_module(fmt.module), fmt.function)
    return reader


def read_records(source: Path, shown_as: str, spec: InputBase, room: ReadRoom | None = None) -> Iterator[Record]:
    """The records of ``source`` as ``spec`` describes them, grouped by ``spec.group_by`` if it is given.

    Every ``InputError`` raised while reading names ``shown_as`` as its file, also one
    raised deep inside a reader that did not know the name.
    """
    fmt = format_of(spec)
    reader = reader_for(spec)
    room = room or ReadRoom()
    if room.folder is None and fmt.needs_folder:
        return _naming_the_file(_in_temporary_folder(reader, source, shown_as, spec, room.database), shown_as)
    records = reader(source, shown_as, spec, room)
    if spec.group_by and not fmt.groups_itself:
        records = group_records(records, spec.group_by, shown_as, spec.label)
    return _naming_the_file(records, shown_as)


def _in_temporary_folder(reader: Reader[Any], source: Path, shown_as: str, spec: InputBase,
                         database: BatchDatabase | None) -> Iterator[Record]:
    with tempfile.TemporaryDirectory(prefix="gateway-read-") as folder:
        yield from reader(source, shown_as, spec, ReadRoom(Path(folder), database))


def _naming_the_file(records: Iterator[Record], shown_as: str) -> Iterator[Record]:
    try:
        yield from records
    except InputError as exc:
        raise exc.located(file=shown_as) from None
