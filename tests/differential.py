"""Generated code against Jinja, record by record: what the differential tests share.

For one record, every value a mapping computes is computed twice: by the generated function
alone (no fallback to Jinja) and the Jinja way alone. A difference in a value, or in whether
an error is raised, is a finding. Each finding names the part of the mapping and both
outcomes, so that a failing test says where the generated code went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import jinja2

from gateway.mapping.runtime import (
    CompiledEmail,
    CompiledFiles,
    CompiledOutput,
    CompiledTemplate,
    Mapping,
    as_mapping_error,
)
from gateway.mapping.values import Record

Outcome = tuple[str, Any]  # ("value", value) or ("error", words)
# A generator or other object written out shows where it lies in memory, which differs run by run.
_ADDRESS = re.compile(r"<[\w.]+ object(?: [\w.<>]+)? at 0x[0-9a-f]+>")


def outcome(compute: Callable[[], Any]) -> Outcome:
    try:
        return "value", compute()
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        try:
            return "error", str(as_mapping_error(exc))
        except (MemoryError, RecursionError):  # pragma: no cover
            raise


def comparable(value: Any) -> Any:
    """A value as both ways must agree on it: records by identity, undefined values by their words."""
    if isinstance(value, jinja2.Undefined):
        return ("undefined", type(value).__name__, _ADDRESS.sub("<object>", str(value._undefined_hint)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [comparable(v) for v in value])
    if isinstance(value, Record):
        return ("record", id(value))
    if isinstance(value, Iterator):
        return ("iterator",)
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, str):
        return (type(value).__name__, _ADDRESS.sub("<object>", value))
    return (type(value).__name__, value)


def same(generated: Outcome, jinja: Outcome) -> bool:
    if generated[0] != jinja[0]:
        return False
    if generated[0] == "error":
        return True  # the generated way's words do not count: Jinja's are the ones shown
    return bool(comparable(generated[1]) == comparable(jinja[1]))


def jinja_context(mapping: Mapping, record: Record, info: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
    context = mapping.context(record, info, settings)
    for index, definition in enumerate(mapping.defines):
        context[definition.name] = mapping.define_with_jinja(index, context)
    return context


def compare_record(mapping: Mapping, record: Record, info: dict[str, Any], settings: dict[str, str]) -> list[str]:
    """Every difference between the generated code and Jinja for one record (empty: none)."""
    findings: list[str] = []

    def check(part: str, generated: Callable[[], Any], jinja: Callable[[], Any]) -> None:
        got, want = outcome(generated), outcome(jinja)
        if not same(got, want):
            findings.append(f"{part}: generated {got!r}, Jinja {want!r}")

    context = jinja_context(mapping, record, info, settings)
    generated_define = mapping.generated.get("define")
    if generated_define is not None:
        ours = mapping.context(record, info, settings)
        generated_define(ours)
        for definition in mapping.defines:
            check(f"define {definition.name}", lambda n=definition.name: ours[n], lambda n=definition.name: context[n])
    skip = mapping.generated.get("skip")
    if skip is not None:
        check("skip", lambda: skip(context), lambda: _jinja_skip(mapping, context))
    key = mapping.generated.get("key")
    if key is not None and mapping.key_unit is not None:
        unit = mapping.key_unit
        check("key", lambda: key(context), lambda: unit.render(context))
    for out in mapping.outputs:
        _compare_output(out, context, check)
    return findings


def _compare_output(out: CompiledOutput | CompiledEmail | CompiledFiles | CompiledTemplate, context: dict[str, Any],
                    check: Callable[[str, Callable[[], Any], Callable[[], Any]], None]) -> None:
    """The generated code of one output against Jinja (see ``compare_record``)."""
    if isinstance(out, CompiledOutput):
        rows = out.generated_rows
        if rows is not None:
            check(f"rows of {out.name}", lambda r=rows: r(context), lambda o=out: _jinja_rows(o, context))
        if out.spec.per == "record" and out.generated_file is not None:
            check(f"file of {out.name}", lambda o=out: o.generated_file(context),  # type: ignore[misc]
                  lambda o=out: o.file_unit.render(context))
    elif isinstance(out, CompiledEmail):
        for part, unit in (("file", out.file_unit), ("recipient", out.recipient), ("subject", out.subject)):
            function = out.generated.get(part)
            if function is not None:
                check(f"{part} of {out.name}", lambda f=function: f(context), lambda u=unit: u.render(context))
        when = out.generated.get("when")
        if when is not None and out.when is not None:
            check(f"when of {out.name}", lambda f=when: f(context), lambda u=out.when: u(**context))
    elif isinstance(out, CompiledFiles) and out.generated is not None:
        check(f"files of {out.name}", lambda o=out: [(s, n) for s, n, _ in o.generated(context)],
              lambda o=out: [(p.source, p.name) for p in o._jinja_files(context)])
    elif isinstance(out, CompiledTemplate) and out.generated_file is not None:
        check(f"file of {out.name}", lambda o=out: o.generated_file(context),  # type: ignore[misc]
              lambda o=out: o.file_unit.render(context))


def _jinja_skip(mapping: Mapping, context: dict[str, Any]) -> str | None:
    for rule in mapping.skip_rules:
        if rule.when(**context):
            return rule.reason.render(context).strip() or "skipped by the mapping"
    return None


def _jinja_rows(out: CompiledOutput, context: dict[str, Any]) -> list[Any]:
    if out.split is None:
        return [values for _, values in out._rows(context)]
    return list(out.split_rows_for_jinja(context))
