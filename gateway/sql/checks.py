"""``gateway check`` for the database flows: the queries against the mapping, then against the database.

Without connecting (every ``gateway check`` and run), for a flow whose source is a database:

* every table the mapping needs has a ``query`` (an optional one without is an empty table);
* each query is one SELECT whose columns all have names, and is ordered (ORDER BY): an unchanged
  table must read the same way every time, or an unchanged catalog would not be recognised, and
  the outputs would come in another order each run;
* every ``:parameter`` is a setting of the mapping (``:watermark`` only with ``input.watermark``);
* every column the mapping uses is selected: the ``required`` ones, the keys of relations and of
  ``group_by``, the watermark's column, and every field the templates read from a record
  (``a.Bezeichnung1``). A column left out of a query would otherwise just be empty.

With ``gateway check --online`` (:func:`online_problems`), connecting: the tables each query
names exist, each query runs and gives the columns its text names (the database's own words
when not), and a staging table has the columns its outputs write and the key table is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jinja2 import nodes

from ..errors import DeliveryError, Problem
from ..i18n import _
from .querytext import shape
from .snapshot import parameters

if TYPE_CHECKING:
    from ..config import Flow, Installation
    from ..mapping.compiler import Mapping
    from ..mapping.model import BatchInput
    from ..yamlload import Loc, YamlDocument


def check_source_mapping(flow: str, mapping: Mapping) -> list[Problem]:
    """The mapping's queries against what the mapping uses (see the module docstring)."""
    from ..mapping.model import BatchInput

    spec = mapping.spec.input
    doc = mapping.doc
    if not isinstance(spec, BatchInput):
        return [doc.problem(("input", "format"), _(
            "flow '{flow}' reads from a database: its mapping's input must be 'format: batch', with a query for each "
            "table").format(flow=flow))]
    problems: list[Problem] = []
    settings = sorted(mapping.settings)
    used = columns_used(spec, mapping)
    mark = spec.watermark
    for name, table in spec.tables.items():
        base: Loc = ("input", "tables", name)
        if table.query is None:
            if not table.optional:
                problems.append(doc.problem(base, _(
                    "flow '{flow}' reads from a database, and the table '{table}' has no 'query': give it one, or "
                    "'optional: true' to leave it empty").format(flow=flow, table=name)))
            continue
        loc: Loc = (*base, "query")
        found = shape(table.query)
        problems.extend(doc.problem(loc, _("table '{table}': {problem}").format(table=name, problem=p))
                        for p in found.problems)
        if found.problems:
            continue
        if not found.ordered:
            problems.append(doc.problem(loc, _(
                "table '{table}': the query has no ORDER BY; order it by the table's key (ORDER BY Mandant, "
                "Artikelnummer), so that an unchanged table reads the same every time and the outputs keep their "
                "order").format(table=name)))
        for param in parameters(table.query):
            if param == "watermark":
                if mark is None:
                    problems.append(doc.problem(loc, _(
                        "table '{table}': the query uses :watermark, but the input has no 'watermark' (table and "
                        "column of the change time)").format(table=name)))
            elif param not in mapping.settings:
                problems.append(doc.problem(loc, _(
                    "table '{table}': the query uses :{name}, and the mapping has no setting '{name}' (settings: "
                    "{settings})").format(table=name, name=param, settings=", ".join(settings) or _("none"))))
        selected = {c.casefold() for c in found.columns}
        for column, (where, why) in used.get(name, {}).items():
            if column.casefold() not in selected:
                problems.append(doc.problem(loc, _(
                    "table '{table}': the query does not select the column '{column}', which the mapping uses "
                    "({why}, {where}); add it to the select list").format(
                        table=name, column=column, why=why, where=mapping.where(where))))
    if mark is not None and mark.table in spec.tables:
        query = spec.tables[mark.table].query
        if query is not None and "watermark" not in parameters(query):
            problems.append(doc.problem(("input", "watermark"), _(
                "the query of table '{table}' does not use :watermark, so every run would read everything again: add "
                "a condition such as 'AND {column} > :watermark'").format(table=mark.table, column=mark.column)))
    return problems


def columns_used(spec: BatchInput, mapping: Mapping) -> dict[str, dict[str, tuple[Loc, str]]]:
    """Per table: each column the mapping uses, with where and why (the first place it is used)."""
    used: dict[str, dict[str, tuple[Loc, str]]] = {}

    def note(table: str, column: str, loc: Loc, why: str) -> None:
        used.setdefault(table, {}).setdefault(column, (loc, why))

    for name, table in spec.tables.items():
        for column in table.required:
            note(name, column, ("input", "tables", name, "required"), _("required"))
    for source, fields in spec.relations.items():
        for field_name, relation in fields.items():
            loc: Loc = ("input", "relations", source, field_name, "on")
            for here, there in relation.on.items():
                why = _("relation {name}").format(name=f"{source}.{field_name}")
                note(source, here, loc, why)
                note(relation.table, there, loc, why)
    for column in spec.group_by:
        note(spec.records, column, ("input", "group_by"), "group_by")
    if spec.watermark is not None:
        note(spec.watermark.table, spec.watermark.column, ("input", "watermark", "column"), _("the watermark"))
    relations = set(spec.relations.get(spec.records, {})) | ({"rows"} if spec.group_by else set())
    for column, loc in _record_fields(mapping, {spec.as_, "record"}):
        if column not in relations:
            note(spec.records, column, loc, _("a field of the record"))
    return used


def _record_fields(mapping: Mapping, roots: set[str]) -> Iterator[tuple[str, Loc]]:
    """The first attribute of every ``record.x`` in the mapping's templates (``a.Bezeichnung1`` → Bezeichnung1)."""
    from ..fieldcheck import attribute_chain, mapping_templates

    for source, loc in mapping_templates(mapping.spec):
        try:
            ast = mapping.env.parse(source)
        except Exception:  # noqa: S112 - syntax errors are the compiler's to report
            continue
        for node in ast.find_all(nodes.Getattr):
            root, attrs = attribute_chain(node)
            if root in roots and attrs:
                yield attrs[0], loc


# -- online ------------------------------------------------------------------------------------------


def online_problems(inst: Installation, gateway_doc: YamlDocument) -> tuple[list[Problem], list[str]]:
    """Connect to each database a flow uses and compare (problems, notes on what was not checked)."""
    from ..sources.sql import SqlSourceConfig
    from .database import Database

    problems: list[Problem] = []
    notes: list[str] = []
    databases: dict[str, Database] = {}
    try:
        for flow in inst.flows.values():
            places: list[tuple[Loc, Any]] = [(("flows", flow.name, "source"), flow.config.source),
                                             (("flows", flow.name, "outbox"), flow.config.outbox)]
            places += [(("flows", flow.name, "destinations", d), spec) for d, spec in flow.config.destinations.items()]
            for loc, spec in places:
                if type(spec).kind != "sql" or spec.sql not in inst.databases:
                    continue
                db = databases.setdefault(spec.sql, Database(spec.sql, inst.databases[spec.sql]))
                missing = [] if _env_set(db) else [db.config.url_env]
                if missing:
                    notes.append(_("{flow}: not checked online, the environment variable {variable} is not set").format(
                        flow=flow.name, variable=missing[0]))
                    continue
                where = gateway_doc.problem(loc, "")
                try:
                    if isinstance(spec, SqlSourceConfig):
                        problems.extend(_check_queries(db, flow))
                    else:
                        problems.extend(_check_staging(db, flow, loc[-1], spec, where))
                except DeliveryError as exc:
                    problems.append(Problem(where.file, where.line, where.column, _("flow {flow}: {error}").format(
                        flow=flow.name, error=exc)))
    finally:
        for db in databases.values():
            db.close()
    return problems, notes


def _env_set(db: Any) -> bool:
    import os

    return bool(os.environ.get(db.config.url_env, "").strip())


def _check_queries(db: Any, flow: Flow) -> list[Problem]:
    from ..mapping.model import BatchInput
    from .querytext import shape
    from .staging import actual_name
    from .watermark import LOWEST

    mapping = flow.mapping
    spec = mapping.spec.input
    if not isinstance(spec, BatchInput):
        return []
    problems: list[Problem] = []
    values: dict[str, Any] = dict(flow.settings)
    if spec.watermark is not None:
        values["watermark"] = LOWEST[spec.watermark.type]
    with db.reading(_("checking the queries of flow {flow}").format(flow=flow.name)) as conn:
        for name, table in spec.tables.items():
            if table.query is None:
                continue
            loc: Loc = ("input", "tables", name, "query")
            found = shape(table.query)
            lacking = [t for t in dict.fromkeys(found.tables) if t and actual_name(conn, t) is None]
            for missing_table in lacking:
                problems.append(mapping.doc.problem(loc, _(
                    "table '{table}': the database has no table {name} (named in the query; {database})").format(
                        table=name, name=missing_table, database=db.where())))
            if lacking:
                continue
            problems.extend(_run_query(db, conn, mapping, loc, name, table.query, values, found.columns))
    return problems


def _run_query(db: Any, conn: Any, mapping: Mapping, loc: Loc, name: str, query: str, values: dict[str, Any],
               names: list[str]) -> list[Problem]:
    from sqlalchemy import bindparam, text
    from sqlalchemy.exc import SQLAlchemyError

    from .watermark import bind_type

    statement = text(query)
    used = parameters(query)
    params = {p: values[p] for p in used if p in values}
    if "watermark" in used and "watermark" in values:
        kind = "integer" if isinstance(values["watermark"], int) else "datetime"
        statement = statement.bindparams(bindparam("watermark", type_=bind_type(kind)))
    savepoint = conn.begin_nested()
    try:
        result = conn.execute(statement, params, execution_options={"stream_results": True, "yield_per": 1})
        keys = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
        result.close()
    except SQLAlchemyError as exc:
        savepoint.rollback()
        _case, reason = db.case_of(exc)
        return [mapping.doc.problem(loc, _("table '{table}': the query fails in {database}: {reason}").format(
            table=name, database=db.where(), reason=reason))]
    savepoint.commit()
    given = {k.casefold() for k in keys}
    return [mapping.doc.problem(loc, _("table '{table}': the database gives no column '{column}' for this query "
                                       "(it gives: {columns})").format(table=name, column=n, columns=", ".join(keys)))
            for n in names if n.casefold() not in given]


def _check_staging(db: Any, flow: Flow, place: Any, spec: Any, where: Problem) -> list[Problem]:
    from ..mapping.model import CsvOutput
    from .staging import find_tables

    problems: list[Problem] = []
    with db.connect(_("checking the staging table of flow {flow}").format(flow=flow.name)) as conn:
        tables = find_tables(conn, spec.table, db.config.key_table, db.where())
        conn.rollback()
    mapping = flow.mapping
    for i, out in enumerate(mapping.spec.outputs):
        if out.to != place:
            continue
        if not isinstance(out, CsvOutput):
            problems.append(mapping.doc.problem(("outputs", i, "format"), _(
                "output '{output}' goes to the table {table}: only CSV outputs can be written into a table").format(
                    output=out.name, table=spec.table)))
            continue
        written = {c.casefold() for c in out.columns}
        if spec.key_column:
            written.add(spec.key_column.casefold())
        for column in out.columns:
            if tables.column(column) is None:
                problems.append(mapping.doc.problem(("outputs", i, "columns", column), _(
                    "the staging table {table} ({database}) has no column '{column}'").format(
                        table=tables.staging.name, database=db.where(), column=column)))
        for table_column in tables.staging.columns:
            needs_value = (not table_column.nullable and table_column.server_default is None
                           and table_column.autoincrement is not True and not table_column.primary_key)
            if needs_value and str(table_column.name).casefold() not in written:
                problems.append(mapping.doc.problem(("outputs", i, "columns"), _(
                    "output '{output}' does not fill the column {column} of {table}, which needs a value").format(
                        output=out.name, column=table_column.name, table=tables.staging.name)))
    return problems
