"""The mapping file as typed models, and loading it with every problem located.

A mapping says, for one flow: how to read the input into records, which value of a
record is its key (an order number is delivered only once), the settings an admin may
change, the lookup tables, and for each output file its columns and rows.
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..i18n import _

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputBase(Strict):
    as_: str = Field(default="record", alias="as", pattern=NAME_PATTERN)  # the record's name in templates
    label: str = "record"  # how messages name a record: "order 123-456-789"
    # Consecutive records with the same values in these fields form one record: the first
    # one's fields plus ``rows``, the list of all of them (one CSV row per position → one document).
    group_by: list[str] = Field(default_factory=list)


class XmlInput(InputBase):
    """Records are the elements at ``records`` (a path from the root, namespaces ignored)."""

    format: Literal["xml"]
    records: str = Field(pattern=r"^/?[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*)*$")


class CsvInput(InputBase):
    """Records are the rows of a CSV file with a header line; columns are found by name."""

    format: Literal["csv"]
    encoding: str = "auto"  # auto: UTF-8 (with or without BOM) if the file is valid UTF-8, else Windows-1252
    delimiter: str = ";"
    required: list[str] = Field(default_factory=list)  # columns the header must have

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return v if v == "auto" else _check_encoding(v)


class JsonInput(InputBase):
    """Records are the objects of the array at ``records`` (a dotted path; empty: the document is the array)."""

    format: Literal["json"]
    records: str = ""


class JsonLinesInput(InputBase):
    """Records are the lines of a JSON Lines file, one object per line."""

    format: Literal["jsonl"]


class FixedField(Strict):
    start: int = Field(ge=1)  # position of the first character, counted from 1
    length: int = Field(ge=1)


class FixedInput(InputBase):
    """Records are the lines of a fixed-width text file; columns are declared by position."""

    format: Literal["fixed"]
    encoding: str = "windows-1252"
    skip_lines: int = Field(default=0, ge=0)
    strict_length: bool = False
    columns: dict[str, FixedField] = Field(min_length=1)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return _check_encoding(v)


class BatchTable(Strict):
    # The file's name in the batch (ZIP or folder), e.g. artikel.csv; case does not matter. A table
    # read from the SOL database (``query``) is written into the batch under this name, by default
    # ``<table>.csv``.
    file: str | None = None
    # A SELECT that fills the table when the flow's source is a database (docs/sol-database.md);
    # ``:name`` is the setting ``name`` (and ``:watermark`` the input's watermark).
    query: str | None = None
    encoding: str = "auto"
    delimiter: str = ";"
    required: list[str] = Field(default_factory=list)
    optional: bool = False  # a missing optional file is an empty table

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return v if v == "auto" else _check_encoding(v)

    @model_validator(mode="after")
    def _file_or_query(self) -> BatchTable:
        if self.file is None and self.query is None:
            raise ValueError(_("a table needs its 'file' in the batch, or a 'query' that reads it from the database"))
        return self


class Watermark(Strict):
    """How a database flow reads only what changed since its last run: the highest ``column`` of ``table``
    seen so far is remembered and given to the queries as ``:watermark``."""

    table: str
    column: str
    type: Literal["datetime", "integer"] = "datetime"


class BatchRelation(Strict):
    table: str
    on: dict[str, str] = Field(min_length=1)  # column of this table: column of the related table


class BatchInput(InputBase):
    """Several CSV tables delivered together (a ZIP, or a folder completed by a marker file).

    Records are the rows of the table ``records``; ``relations`` make the related rows of
    other tables fields of a row (``a.varianten``), also of related rows (``v.lager``).
    """

    format: Literal["batch"]
    records: str
    tables: dict[str, BatchTable] = Field(min_length=1)
    relations: dict[str, dict[str, BatchRelation]] = Field(default_factory=dict)
    watermark: Watermark | None = None  # a database flow sends only what changed since its last run

    def file_of(self, table: str) -> str:
        """The table's file in the batch: its ``file``, or ``<table>.csv`` for a table read by a query."""
        return self.tables[table].file or f"{table}.csv"


InputSpec = Annotated[
    XmlInput | CsvInput | JsonInput | JsonLinesInput | FixedInput | BatchInput, Field(discriminator="format")
]


class KeySpec(Strict):
    """The value that identifies a record for good, such as an order number."""

    value: str
    label: str = "key"
    scope: str | None = None  # flows sharing a scope share their memory of delivered keys


class Column(Strict):
    value: str
    required: bool = False
    max_length: int | None = Field(default=None, ge=1)
    too_long: Literal["cut", "error"] = "error"
    type: Literal["text", "number", "integer", "boolean"] = "text"  # how a JSON output writes the value


ColumnSpec = str | Column


class RowSpec(Strict):
    """A kind of row: one per entry of ``for_each`` (or one per record), if ``when`` holds.

    ``and_for_each`` repeats the row once more for each of its entries inside each entry of
    ``for_each`` (each variant × each tier price): two lists, without a program.
    """

    for_each: str | None = None
    as_: str = Field(default="item", alias="as", pattern=NAME_PATTERN)
    and_for_each: str | None = None
    and_as: str = Field(default="item2", pattern=NAME_PATTERN)
    when: str | None = None
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _inner_needs_outer(self) -> RowSpec:
        if self.and_for_each is not None and self.for_each is None:
            raise ValueError(_("'and_for_each' repeats rows inside 'for_each'; give 'for_each' first"))
        return self


class Lookup(Strict):
    values: dict[str, str] = Field(default_factory=dict)
    file: str | None = None  # a CSV file (relative to the installation) with more values; inline values win
    key: str | None = None  # its column holding the value looked up
    value: str | None = None  # its column holding the result
    default: str | None = None  # without a default (or keep_unknown), an unknown value is an error
    keep_unknown: bool = False  # an unknown value passes through unchanged


class SkipRule(Strict):
    """Records for which ``when`` holds are not converted; the journal lists them with ``reason``."""

    when: str
    reason: str


def _check_encoding(v: str) -> str:
    try:
        codecs.lookup(v)
    except LookupError:
        raise ValueError(_("unknown encoding '{name}' (use e.g. windows-1252, iso-8859-1, utf-8)").format(
            name=v)) from None
    return v


class CsvOutput(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    file: str
    to: str = "outbox"
    format: Literal["csv"]
    encoding: str = "utf-8"
    delimiter: str = ";"
    header: bool = True
    line_end: Literal["crlf", "lf"] = "crlf"
    unencodable: Literal["error", "replace"] = "error"  # replace: a character the encoding lacks becomes '?'
    # neutralise: a value starting with = + - @ (a spreadsheet formula) is written with a ' in front,
    # unless it is only a number (-12,90) or a phone number; keep: written as it is (see writers/csv.py)
    formulas: Literal["neutralise", "keep"] = "neutralise"
    per: Literal["input", "record"] = "input"  # one file per input, or one per record
    split_by: str | None = None  # a template: rows with another value go to another file ({{ split }} in "file")
    columns: dict[str, ColumnSpec]
    rows: list[RowSpec] = Field(default_factory=lambda: [RowSpec()])

    @model_validator(mode="after")
    def _split_per_input(self) -> CsvOutput:
        _check_split(self.split_by, self.per)
        return self

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return _check_encoding(v)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError(_("the delimiter must be one character, such as ';'"))
        return v


class JsonOutput(Strict):
    """Rows written as JSON objects by the json module: an array, or one object per line."""

    name: str = Field(pattern=NAME_PATTERN)
    file: str
    to: str = "outbox"
    format: Literal["json"]
    layout: Literal["array", "lines"] = "array"
    per: Literal["input", "record"] = "input"
    split_by: str | None = None
    columns: dict[str, ColumnSpec]
    rows: list[RowSpec] = Field(default_factory=lambda: [RowSpec()])

    @model_validator(mode="after")
    def _split_per_input(self) -> JsonOutput:
        _check_split(self.split_by, self.per)
        return self

    @property
    def encoding(self) -> str:
        return "utf-8"


def _check_split(split_by: str | None, per: str) -> None:
    if split_by is not None and per != "input":
        raise ValueError(_("'split_by' divides the rows of an input among files; it does not go with "
                           "'per: record'"))


class TemplateOutput(Strict):
    """An output written by a Jinja template file (XML, text, JSON), streamed over all records.

    The template sees ``records`` (the input's records, already without the ones whose key
    was delivered before), ``settings`` and ``input``. Templates whose name ends in
    ``.xml.j2`` or ``.html.j2`` escape values; the XML is parsed (and validated against
    ``schema`` when given) before it is released.
    """

    name: str = Field(pattern=NAME_PATTERN)
    file: str
    to: str = "outbox"
    format: Literal["template"]
    template: str  # path relative to the installation folder, e.g. templates/auftrag.xml.j2
    encoding: str = "utf-8"
    schema_: str | None = Field(default=None, alias="schema")  # an XSD, relative to the installation folder

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return _check_encoding(v)


class EmailOutput(Strict):
    """One e-mail per record (tracking codes, payment requests), built from templates.

    ``recipient`` and ``subject`` are one-line templates; ``text`` and ``html`` name
    template files. Records for which ``when`` is false get no e-mail. The message goes
    to the destination ``to`` (an SMTP server, or a folder that collects .eml files).
    """

    name: str = Field(pattern=NAME_PATTERN)
    format: Literal["email"]
    to: str = "mail"
    file: str  # the message's name while staged or in a folder destination: "zahlung_{{ order.order_no }}.eml"
    when: str | None = None
    recipient: str
    subject: str
    text: str  # a template file, e.g. templates/zahlung.txt.j2
    html: str | None = None  # a template file, e.g. templates/zahlung.html.j2
    sender: str | None = None  # default: smtp.sender of gateway.yaml
    reply_to: str | None = None


class FileOutput(Strict):
    """Files of a batch passed on as they are (PDF data sheets, invoices): one per record, or one per
    entry of ``for_each``; ``source`` names the file in the batch, ``file`` its name at the destination.

    The names in ``source`` come from the export's rows, so they are not trusted: only files in
    ``folder`` (a folder of the batch, ``/`` for all of it) are passed on, never one of the
    batch's tables, and the name at the destination is the mapping's, with the input's number
    in it (``{{ input.id }}``), so that the same document in a later export gets a name of its own.
    """

    name: str = Field(pattern=NAME_PATTERN)
    format: Literal["file"]
    to: str = "outbox"
    folder: str  # the folder of the batch whose files may be passed on, e.g. dokumente; "/" for the whole batch
    for_each: str | None = None
    as_: str = Field(default="item", alias="as", pattern=NAME_PATTERN)
    when: str | None = None
    source: str
    file: str

    @field_validator("folder")
    @classmethod
    def _plain_folder(cls, v: str) -> str:
        if v == "/":
            return v
        parts = v.strip("/").split("/")
        if not v.strip("/") or "\\" in v or ":" in v or any(part in ("", ".", "..") for part in parts):
            raise ValueError(_("'{folder}' is not a folder inside the batch: write it like dokumente or belege/pdf "
                               "(or / for the whole batch)").format(folder=v))
        return "/".join(parts)


OutputSpec = Annotated[
    CsvOutput | JsonOutput | TemplateOutput | EmailOutput | FileOutput, Field(discriminator="format")
]
RowOutput = CsvOutput | JsonOutput


class MappingSpec(Strict):
    description: str = ""
    input: InputSpec
    key: KeySpec | None = None
    # Names for values computed once per record (in this order, each may use the ones before),
    # for everything below except the key: "shop_preise: a.preise | selectattr(…) | list".
    define: dict[str, str] = Field(default_factory=dict)
    skip: list[SkipRule] = Field(default_factory=list)
    settings: dict[str, str] = Field(default_factory=dict)
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    outputs: list[OutputSpec] = Field(min_length=1)

    @field_validator("define")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(_("'{name}' cannot be a name: use letters, digits and '_', not starting with a "
                                   "digit").format(name=name))
        return v
