"""The mapping file as typed models, and loading it with every problem located.

A mapping says, for one flow: how to read the input into records, which value of a
record is its key (an order number is delivered only once), the settings an admin may
change, the lookup tables, and for each output file its columns and rows.
"""

from __future__ import annotations

import codecs
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class XmlInput(Strict):
    """Records are the elements at ``records`` (a path from the root, namespaces ignored)."""

    format: Literal["xml"]
    records: str = Field(pattern=r"^/?[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*)*$")
    as_: str = Field(default="record", alias="as", pattern=NAME_PATTERN)
    label: str = "record"


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


ColumnSpec = str | Column


class RowSpec(Strict):
    """A kind of row: one per entry of ``for_each`` (or one per record), if ``when`` holds."""

    for_each: str | None = None
    as_: str = Field(default="item", alias="as", pattern=NAME_PATTERN)
    when: str | None = None
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)


class Lookup(Strict):
    values: dict[str, str]
    default: str | None = None  # without a default (or keep_unknown), an unknown value is an error
    keep_unknown: bool = False  # an unknown value passes through unchanged


def _check_encoding(v: str) -> str:
    try:
        codecs.lookup(v)
    except LookupError:
        raise ValueError(f"unknown encoding '{v}' (use e.g. windows-1252, iso-8859-1, utf-8)") from None
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
    columns: dict[str, ColumnSpec]
    rows: list[RowSpec] = Field(default_factory=lambda: [RowSpec()])

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        return _check_encoding(v)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("the delimiter must be one character, such as ';'")
        return v


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


OutputSpec = Annotated[CsvOutput | TemplateOutput, Field(discriminator="format")]


class MappingSpec(Strict):
    description: str = ""
    input: XmlInput
    key: KeySpec | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    outputs: list[OutputSpec] = Field(min_length=1)
