"""What a batch mapping asks for: the tables, which one gives the records, and how they join.

The plan is checked once, before the batch is opened: a mistake here is the caller's
(``ValueError``), not the input's. It also decides which tables are loaded into the
database (the targets of relations, and the primary table when it is grouped) and
which columns each table's header must have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..csv import _check_arguments


@dataclass(frozen=True)
class TableSpec:
    """One table of a batch: its file, how to read it, and whether the batch must have it."""

    file: str  # matched case-insensitively against the base name (or the end of the path) of each member
    encoding: str = "auto"
    delimiter: str = ";"
    required: tuple[str, ...] = ()  # columns the header must have
    optional: bool = False  # a missing optional file is an empty table; a missing required file is a ReadError


@dataclass(frozen=True)
class Relation:
    """The rows of ``table`` whose columns equal the given columns of this table's row."""

    table: str
    on: tuple[tuple[str, str], ...]  # (column of this table, column of the related table), one pair per key part


@dataclass(frozen=True)
class Plan:
    tables: Mapping[str, TableSpec]
    primary: str
    relations: dict[str, dict[str, Relation]]
    loaded: tuple[str, ...]  # tables that go into the database: the targets of relations
    columns: dict[str, tuple[str, ...]]  # per table: the columns its header must have
    group_by: tuple[str, ...] = ()  # columns of the primary table whose equal values make one record

    @classmethod
    def of(
        cls, tables: Mapping[str, TableSpec], primary: str, relations: Mapping[str, Mapping[str, Relation]],
        group_by: tuple[str, ...] = (),
    ) -> Plan:
        if primary not in tables:
            raise ValueError(f"the primary table {primary!r} is not among the tables ({', '.join(tables) or 'none'})")
        for spec in tables.values():
            _check_arguments(spec.encoding, spec.delimiter)
            if not spec.file.strip("/"):
                raise ValueError("a table's file name must not be empty")
        plain: dict[str, dict[str, Relation]] = {}
        needed: dict[str, list[str]] = {name: list(spec.required) for name, spec in tables.items()}
        loaded: list[str] = []
        for source, fields in relations.items():
            if source not in tables:
                raise ValueError(f"relations are given for the table {source!r}, which is not among the tables")
            for name, relation in fields.items():
                if not name or name.startswith("_"):
                    raise ValueError(
                        f"the relation name {name!r} of table {source!r} must not be empty or start with '_'"
                    )
                if relation.table not in tables:
                    raise ValueError(f"the relation {source}.{name} leads to the table {relation.table!r}, "
                                     "which is not among the tables")
                if not relation.on or any(len(pair) != 2 or not all(pair) for pair in relation.on):
                    raise ValueError(f"the relation {source}.{name} needs one or more pairs of column names")
                for here, there in relation.on:
                    needed[source].append(here)
                    needed[relation.table].append(there)
                if relation.table not in loaded:
                    loaded.append(relation.table)
                pairs = tuple((here, there) for here, there in relation.on)
                plain.setdefault(source, {})[name] = Relation(relation.table, pairs)
        if group_by:
            if not all(group_by):
                raise ValueError("group_by needs column names")
            needed[primary].extend(group_by)
            if primary not in loaded:
                loaded.append(primary)  # sorted by SQLite, so the rows of a group need not stand together
        columns = {name: tuple(dict.fromkeys(cols)) for name, cols in needed.items()}
        return cls(tables, primary, plain, tuple(loaded), columns, group_by)

    def index_keys(self, table: str) -> list[tuple[str, ...]]:
        """The column sets that lookups in ``table`` go by: one index each."""
        keys = [tuple(there for _, there in r.on)
                for fields in self.relations.values() for r in fields.values() if r.table == table]
        return [*keys, self.group_by] if table == self.primary and self.group_by else keys
