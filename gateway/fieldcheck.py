"""Fields a mapping uses that its example input does not have: likely typos.

A missing field is empty, by design (Rakuten leaves out optional elements), so a typo
such as ``order.client.citty`` would silently give an empty column. Where a flow has a
golden example, ``gateway check`` reads the example's records and warns about every
field name the mapping uses on a record that appears nowhere in them. It is a warning,
not an error: a field may be legitimately absent from every example.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import nodes

from .config import Flow
from .errors import GatewayError, Problem
from .i18n import _
from .mapping.model import BatchInput, Column, EmailOutput, FileOutput, MappingSpec, TemplateOutput
from .mapping.values import Record
from .yamlload import Loc

SAMPLE_RECORDS = 200


def _names_in(value: Any, found: set[str]) -> None:
    if isinstance(value, Record):
        for key, inner in value._fields.items():
            found.add(key)
            _names_in(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _names_in(inner, found)


def sample_fields(flow: Flow, example: Path) -> set[str]:
    """Every field name that occurs in the first records of ``example`` (and a batch's relations)."""
    found: set[str] = {"rows"} if flow.mapping.spec.input.group_by else set()
    spec = flow.mapping.spec.input
    if isinstance(spec, BatchInput):
        for fields in spec.relations.values():
            found.update(fields)
    for record in itertools.islice(flow.mapping.records(example, example.name), SAMPLE_RECORDS):
        _names_in(record, found)
    return found


def _templates(flow: Flow) -> Iterator[tuple[str, Loc]]:
    return mapping_templates(flow.mapping.spec)


def mapping_templates(spec: MappingSpec) -> Iterator[tuple[str, Loc]]:
    """Every template and expression of a mapping that sees its records, with where it was written."""
    if spec.key is not None:
        yield spec.key.value, ("key", "value")
    for name, source in spec.define.items():
        yield "{{ " + source + " }}", ("define", name)
    for i, rule in enumerate(spec.skip):
        yield "{{ " + rule.when + " }}", ("skip", i, "when")
        yield rule.reason, ("skip", i, "reason")
    for i, out in enumerate(spec.outputs):
        if isinstance(out, (TemplateOutput, EmailOutput, FileOutput)):
            continue
        for name, col in out.columns.items():
            yield (col.value if isinstance(col, Column) else col), ("outputs", i, "columns", name)
        if out.split_by:
            yield out.split_by, ("outputs", i, "split_by")
        for j, row in enumerate(out.rows):
            if row.for_each:
                yield "{{ " + row.for_each + " }}", ("outputs", i, "rows", j, "for_each")
            if row.and_for_each:
                yield "{{ " + row.and_for_each + " }}", ("outputs", i, "rows", j, "and_for_each")
            if row.when:
                yield "{{ " + row.when + " }}", ("outputs", i, "rows", j, "when")
            for name, col in row.columns.items():
                yield (col.value if isinstance(col, Column) else col), ("outputs", i, "rows", j, "columns", name)


def _record_names(flow: Flow) -> set[str]:
    spec = flow.mapping.spec
    names = {spec.input.as_, "record"}
    for out in spec.outputs:
        if not isinstance(out, (TemplateOutput, EmailOutput, FileOutput)):
            names |= {row.as_ for row in out.rows if row.for_each}
            names |= {row.and_as for row in out.rows if row.and_for_each}
    return names


def attribute_chain(node: nodes.Getattr) -> tuple[str | None, list[str]]:
    """``a.gruppe.Bezeichnung`` → (``a``, [``gruppe``, ``Bezeichnung``])."""
    attrs: list[str] = []
    current: nodes.Node = node
    while isinstance(current, nodes.Getattr):
        attrs.append(current.attr)
        current = current.node
    attrs.reverse()
    return (current.name if isinstance(current, nodes.Name) else None), attrs


def unknown_fields(flow: Flow, example: Path) -> list[Problem]:
    """Warnings for field names used on records that the example input never has."""
    if isinstance(flow.mapping.spec.input, BatchInput):
        return []  # a batch's rows reach other tables' columns through relations: no single header to check
    try:
        known = sample_fields(flow, example)
    except GatewayError:
        return []  # a broken example is reported by ``gateway test``
    roots = _record_names(flow)
    doc = flow.mapping.doc
    problems: list[Problem] = []
    for source, loc in _templates(flow):
        try:
            ast = flow.mapping.env.parse(source)
        except Exception:  # noqa: S112 - syntax errors are reported by the compiler
            continue
        for node in ast.find_all(nodes.Getattr):
            root, attrs = attribute_chain(node)
            if root not in roots:
                continue
            for attr in attrs:
                if attr not in known and attr not in ("grouper", "list"):
                    close = difflib.get_close_matches(attr, sorted(known), n=1)
                    shown = f"{example.parent.parent.name}/{example.name}"
                    if close:
                        message = _("warning: the field '{field}' does not occur in the example {example} (did you "
                                    "mean '{name}'?)").format(field=attr, example=shown, name=close[0])
                    else:
                        message = _("warning: the field '{field}' does not occur in the example {example}").format(
                            field=attr, example=shown)
                    problem = doc.problem(loc, message)
                    if problem not in problems:
                        problems.append(problem)
    return problems
