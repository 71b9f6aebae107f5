"""Everything that can go wrong, and what the admin needs to read about it.

The tree::

    GatewayError
    ├── ConfigError          gateway.yaml or a mapping is wrong; nothing moves (exit 2)
    ├── InputError           an input is at fault; it is quarantined, the rest goes on
    │   ├── ReadError        the file cannot be read as its format (broken XML, wrong encoding)
    │   └── MappingError     a record cannot be converted (missing field, unknown lookup value)
    └── DeliveryError        an output could not be delivered; the input stays and is tried again

An ``InputError`` is the input's own fault and never the result of a crash or an
unreachable destination: those raise ``DeliveryError`` or are recovered, so that an
input is quarantined only for something the admin can fix in the file or mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import _


@dataclass(frozen=True)
class Problem:
    """One configuration problem, located where the admin has to look."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class GatewayError(Exception):
    """Base of every error the gateway reports in words instead of a traceback."""


class ConfigError(GatewayError):
    """The configuration is refused; ``problems`` lists every finding, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        # a mapping used by two flows is checked twice: the admin reads each problem once
        unique: dict[str, Problem] = {}
        for problem in problems:
            unique.setdefault(str(problem), problem)
        self.problems = list(unique.values())
        super().__init__("\n".join(str(p) for p in problems))


class InputError(GatewayError):
    """An input cannot be processed because of its content.

    The message is assembled from parts so that every report names the file, the place
    in it, the field and what was expected, in the same order.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        record: str | None = None,
        field: str | None = None,
        value: str | None = None,
        mapping: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.record = record
        self.field = field
        self.value = value
        self.mapping = mapping
        super().__init__(message)

    def located(self, **where: str | int | None) -> InputError:
        """Fill in location details that the raising code did not know; keeps what it knew."""
        for key, val in where.items():
            if getattr(self, key) is None and val is not None:
                setattr(self, key, val)
        return self

    #: The parts of an error's location, in the order a reader looks for them.
    WHERE = ("file", "line", "column", "record", "field", "value", "mapping")

    def where(self) -> dict[str, str | int]:
        """The known parts of the location, for the journal: the console shows line and field on their own."""
        return {k: v for k in self.WHERE if (v := getattr(self, k)) is not None}

    def __str__(self) -> str:
        place = []
        if self.file:
            place.append(self.file)
        if self.line is not None:
            place.append(_("line {line}, column {column}").format(line=self.line, column=self.column) if self.column
                         else _("line {line}").format(line=self.line))
        if self.record:
            place.append(self.record)
        if self.field:
            place.append(_("field '{field}'").format(field=self.field))
        text = ", ".join(place)
        text = f"{text}: {self.message}" if text else self.message
        if self.value is not None:
            text = _("{text} (the value was {value})").format(text=text, value=repr(self.value))
        if self.mapping:
            text = _("{text} [mapping {mapping}]").format(text=text, mapping=self.mapping)
        return text


class ReadError(InputError):
    """The input is not valid in its declared format."""


class MappingError(InputError):
    """A record could not be converted by the mapping."""


class DeliveryError(GatewayError):
    """A destination refused or failed; the output is kept and delivery is tried again later."""
