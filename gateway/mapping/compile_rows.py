"""One Python module per mapping: a function per kind of output, for the defined values, the skip
rules and the key, written from the values :mod:`.compile_python` translates.

The functions take a record's context (the dict ``convert.py`` builds) and give what the
run-time objects of :mod:`.runtime` would give the Jinja way: all rows of one record for an
output (``row_number`` counted across its kinds of row, the columns that are the same in every
row computed once, the length and ``required`` rules applied), a skip reason, a key, file
names. A value :mod:`.compile_python` does not translate is computed by Jinja inside the
generated function (``_jinja_value``/``_jinja_text``), the rest of the function stays Python.
A rule that fails, an empty ``split_by`` value, anything raised: the run-time object takes
the Jinja way for that record, which gives the exact message (see :mod:`.runtime`).

Why ``compile()`` is safe here (ruff's S102): the text compiled is only what this module and
:mod:`.compile_python` wrote, from Jinja's syntax tree of the mapping's values, node type by
node type, with every name and constant of the mapping written as a ``repr`` or a generated
identifier, never text read from a file or an input. It runs with the globals of
:func:`.whitelist.namespace_for` (builtins restricted to ``str``, ``len``, ``list``,
``iter``, ``enumerate``), so it can call nothing but the functions listed there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .compile_python import Names, Translator, Unsupported, dotted
from .model import Column
from .runtime import JinjaUnit, skipped_words
from .whitelist import NotGenerated, namespace_for


@dataclass
class Unit:
    """A template or expression of the mapping with its syntax tree, for translating it."""

    jinja: JinjaUnit
    tree: nodes.Template | nodes.Expr
    index: int  # in the module's table of Jinja units (``_UNITS``)

    @property
    def reads(self) -> set[str]:
        """Every name the value reads (a superset of what it takes from outside)."""
        return {n.name for n in self.tree.find_all(nodes.Name) if n.ctx == "load"} | (
            {self.tree.name} if isinstance(self.tree, nodes.Name) and self.tree.ctx == "load" else set())


@dataclass
class ColumnPlan:
    position: int
    spec: Column
    unit: Unit


@dataclass
class RowPlan:
    for_each: Unit | None
    as_: str
    and_for_each: Unit | None
    and_as: str
    when: Unit | None
    columns: list[ColumnPlan]  # the columns that differ from row to row


@dataclass
class OutputPlan:
    key: str  # the generated functions' suffix
    width: int
    shared: list[ColumnPlan]  # the columns that are the same in every row of a record
    rows: list[RowPlan]
    split: Unit | None


@dataclass
class FilesPlan:
    key: str
    for_each: Unit | None
    as_: str
    when: Unit | None
    source: Unit
    file: Unit


@dataclass
class ModulePlan:
    """Everything of one mapping that gets Python, with the names each part may use."""

    record_names: list[str]  # the record (``as``), record, settings, input
    record_relations: frozenset[str] = frozenset()  # names of the record's relations (a batch): not columns
    defines: list[tuple[str, Unit]] = field(default_factory=list)
    skip: list[tuple[Unit, Unit]] = field(default_factory=list)
    key: Unit | None = None
    outputs: list[OutputPlan] = field(default_factory=list)
    files: list[FilesPlan] = field(default_factory=list)
    texts: dict[str, Unit] = field(default_factory=dict)  # function name -> template (file names, e-mail parts)
    values: dict[str, Unit] = field(default_factory=dict)  # function name -> expression (e-mail ``when``)
    units: list[JinjaUnit] = field(default_factory=list)


def _ident(name: str) -> str:
    return f"n_{name}"


class _Writer:
    def __init__(self, env: ImmutableSandboxedEnvironment) -> None:
        self.names = Names()
        self.functions: list[str] = []
        self.translator = Translator(env, self.names, self.functions)
        self.fallbacks = 0  # values left to Jinja
        self.read: dict[str, str] = {}  # "name.attr" read once into a local of the function being written
        self.relations: frozenset[str] = frozenset()

    def hoist(self, units: Sequence[Unit | None], names: Sequence[str], pad: str, least: int = 2) -> list[str]:
        """Read the attributes of ``names`` that the units read at least ``least`` times, once, into locals.

        A record's field (or relation) is the same however often a value reads it, and reading
        it cannot fail, so the function reads it once here: ``a.Variante`` in six conditions
        costs one lookup. With ``least`` 0 (the record itself, at the start of a function) every
        column the units read is read, all in one call; its relations only when read twice.
        (Read for an entry of a loop that is not a record, an attribute may raise where Jinja
        would not have read it; then Jinja computes the record: slower, the same result.)
        """
        counts: dict[str, int] = {}
        for unit in units:
            if unit is None:
                continue
            for node in unit.tree.find_all(nodes.Getattr):
                key = dotted(node)
                if key is not None and key.split(".", 1)[0] in names and not node.attr.startswith("_"):
                    counts[key] = counts.get(key, 0) + 1
        lines = []
        for depth in (1, 2):  # the record's columns, then the fields of those (an order's client.email)
            columns: dict[str, list[tuple[str, str]]] = {}  # read all at once, per object
            for key, count in counts.items():
                parts = key.split(".")
                if key in self.read or len(parts) != depth + 1:
                    continue
                base, attr = ".".join(parts[:-1]), parts[-1]
                if least == 0 and depth == 1 and attr not in self.relations:
                    columns.setdefault(_ident(base), []).append((key, attr))
                elif least == 0 and depth == 2 and base in self.read and parts[1] not in self.relations:
                    columns.setdefault(self.read[base], []).append((key, attr))
                elif depth == 1 and count >= max(least, 2):
                    ident = self.names.fresh(f"h_{base}_{attr}")
                    self.read[key] = ident
                    lines.append(f"{pad}{ident} = _ga({_ident(base)}, {attr!r})")
            for source, found in columns.items():
                idents = [self.names.fresh("h_" + key.replace(".", "_")) for key, _ in found]
                self.read.update((key, ident) for (key, _), ident in zip(found, idents, strict=True))
                lines.append(f"{pad}({', '.join(idents)},) = _fields_of({source}, {tuple(a for _, a in found)!r})")
        return lines

    def value(self, unit: Unit, available: Sequence[str]) -> tuple[str, bool, bool]:
        """Python for an expression unit; whether it is a lazy list (see compile_python); whether Jinja computes it."""
        context = {name: _ident(name) for name in available}
        context.update((key, ident) for key, ident in self.read.items() if key.split(".", 1)[0] in context)
        try:
            if not isinstance(unit.tree, nodes.Expr):
                raise Unsupported("an expression unit without an expression")
            code = self.translator.expression(unit.tree, context)
            return code.text, code.lazy, False
        except Unsupported:
            self.fallbacks += 1
            return f"_jinja_value({unit.index}, {self._names(unit, available)})", False, True

    def plain_value(self, unit: Unit, available: Sequence[str]) -> str:
        text, lazy, _ = self.value(unit, available)
        return f"iter({text})" if lazy else text

    def text(self, unit: Unit, available: Sequence[str]) -> str:
        context = {name: _ident(name) for name in available}
        context.update((key, ident) for key, ident in self.read.items() if key.split(".", 1)[0] in context)
        try:
            if not isinstance(unit.tree, nodes.Template):
                raise Unsupported("a template unit without a template")
            return self.translator.template(unit.tree, context)
        except Unsupported:
            self.fallbacks += 1
            return f"_jinja_text({unit.index}, {self._names(unit, available)})"

    @staticmethod
    def _names(unit: Unit, available: Sequence[str]) -> str:
        used = [name for name in available if name in unit.reads]
        return "{" + ", ".join(f"{name!r}: {_ident(name)}" for name in used) + "}"

    def loads(self, units: Sequence[Unit | None], available: Sequence[str], pad: str = "    ") -> list[str]:
        """Lines reading from the context ``c`` the names the units use."""
        read: set[str] = set()
        for unit in units:
            if unit is not None:
                read |= unit.reads
        return [f"{pad}{_ident(name)} = c[{name!r}]" for name in available if name in read]


def generate(env: ImmutableSandboxedEnvironment, plan: ModulePlan) -> tuple[str, int]:
    """The module's source, and how many values are left to Jinja."""
    writer = _Writer(env)
    writer.relations = plan.record_relations
    body: list[str] = []
    names = list(plan.record_names)
    if plan.defines:
        body += _define_function(writer, plan, names)
    every = names + [name for name, _ in plan.defines]
    if plan.skip:
        body += _skip_function(writer, plan, every)
    writer.read = {}
    if plan.key is not None:
        body += [
            "def gen_key(c):",
            *writer.loads([plan.key], names),
            f"    return {writer.text(plan.key, names)}",
        ]
    for out in plan.outputs:
        body += _rows_function(writer, out, every)
    writer.read = {}
    for files in plan.files:
        body += _files_function(writer, files, every)
    for function, unit in plan.texts.items():
        available = sorted(unit.reads & (set(every) | {"split"}))
        body += [f"def {function}(c):", *writer.loads([unit], available), f"    return {writer.text(unit, available)}"]
    for function, unit in plan.values.items():
        available = sorted(unit.reads & set(every))
        body += [f"def {function}(c):", *writer.loads([unit], available),
                 f"    return {writer.plain_value(unit, available)}"]
    source = "\n\n".join(writer.functions) + "\n\n" + "\n".join(body) + "\n"
    return source, writer.fallbacks


def _define_function(writer: _Writer, plan: ModulePlan, names: list[str]) -> list[str]:
    units = [unit for _, unit in plan.defines]
    writer.read = {}
    lines = ["def gen_define(c):", *writer.loads(units, names), *writer.hoist(units, plan.record_names[:2], "    ", 0)]
    known = list(names)
    for index, (name, unit) in enumerate(plan.defines):
        code, lazy, by_jinja = writer.value(unit, known)
        if by_jinja:
            lines.append(f"    {_ident(name)} = _define_jinja({index}, c)")
        else:
            lines += [
                "    try:",
                f"        {_ident(name)} = {code if lazy else f'_kept({code})'}",
                "    except (MemoryError, RecursionError):",
                "        raise",
                "    except Exception:",
                f"        {_ident(name)} = _define_jinja({index}, c)",
            ]
        lines.append(f"    c[{name!r}] = {_ident(name)}")
        known.append(name)
    return lines


def _skip_function(writer: _Writer, plan: ModulePlan, every: list[str]) -> list[str]:
    units = [u for rule in plan.skip for u in rule]
    writer.read = {}
    lines = ["def gen_skip(c):", *writer.loads(units, every), *writer.hoist(units, every[:2], "    ", 0)]
    for when, reason in plan.skip:
        lines.append(f"    if {writer.plain_value(when, every)}:")
        lines.append(f"        return ({writer.text(reason, every)}).strip() or _skipped_words()")
    lines.append("    return None")
    return lines


_LOOKUP_CALL = re.compile(r"_L\[('(?:[^'\\]|\\.)*')\]\(((?:v\d+|n|_c\d+)_\w*)\)")


def _shared_lookups(pad: str, code: str, names: Names) -> tuple[list[str], str]:
    """The same lookup of the same local read once: ``_L['artikel'](x)`` in three columns of a row costs one.

    A table's lookup only reads its table, so computing it once before the row gives what each
    use would; a lookup that raises before the row where a use would not have been reached makes
    the record take the Jinja way, which gives the same result. (Repeated until no lookup of a
    lookup repeats either.)
    """
    lines: list[str] = []
    while True:
        counts: dict[str, int] = {}
        for match in _LOOKUP_CALL.finditer(code):
            counts[match.group(0)] = counts.get(match.group(0), 0) + 1
        repeated = [call for call, count in counts.items() if count > 1]
        if not repeated:
            return lines, code
        for call in repeated:
            ident = "_c" + names.fresh("l").split("_", 1)[0][1:] + "_"
            lines.append(f"{pad}{ident} = {call}")
            code = code.replace(call, ident)


def _ruled(code: str, spec: Column) -> str:
    if spec.required:
        code = f"_required({code})"
    if spec.max_length is not None:
        code = f"({code})[:{spec.max_length}]" if spec.too_long == "cut" else f"_at_most({code}, {spec.max_length})"
    return code


def _rows_function(writer: _Writer, out: OutputPlan, every: list[str]) -> list[str]:
    units: list[Unit | None] = [*(c.unit for c in out.shared), out.split]
    for row in out.rows:
        units += [row.for_each, row.and_for_each, row.when, *(c.unit for c in row.columns)]
    writer.read = {}
    head = [f"def gen_rows_{out.key}(c):", *writer.loads(units, every), *writer.hoist(units, every[:2], "    ", 0)]
    only = out.rows[0] if len(out.rows) == 1 else None
    if only is not None and only.for_each is None and only.when is None:  # one row per record, always
        columns = {c.position: _ruled(writer.text(c.unit, every), c.spec) for c in out.shared}
        columns.update((c.position, _ruled(writer.text(c.unit, [*every, "row_number"]), c.spec)) for c in only.columns)
        text = ", ".join(columns[p] for p in range(out.width))
        if out.split is not None:
            split = writer.text(out.split, [*every, "row_number"])
            return [*head, "    n_row_number = 1", f"    return [(_split_value({split}), [{text}])]"]
        return [*head, "    n_row_number = 1", f"    return [[{text}]]"]
    lines = [*head, "    _rows = []", "    n_row_number = 0", "    _shared = None"]
    shared_at = {c.position: k for k, c in enumerate(out.shared)}
    for row in out.rows:
        pad = "    "
        names = list(every)
        outer = dict(writer.read)  # what the function read for all its kinds of row
        kind_units = [row.and_for_each, row.when, *(c.unit for c in row.columns)]
        if row.for_each is not None:
            lines.append(f"{pad}for {_ident(row.as_)} in _as_list({writer.plain_value(row.for_each, names)}):")
            names.append(row.as_)
            pad += "    "
            lines += writer.hoist(kind_units, [row.as_], pad)
            if row.and_for_each is not None:
                lines.append(f"{pad}for {_ident(row.and_as)} in _as_list("
                             f"{writer.plain_value(row.and_for_each, names)}):")
                names.append(row.and_as)
                pad += "    "
                lines += writer.hoist(kind_units[1:], [row.and_as], pad)
        if row.when is not None:
            lines.append(f"{pad}if {writer.plain_value(row.when, names)}:")
            pad += "    "
        lines.append(f"{pad}n_row_number += 1")
        if out.shared:  # the whole row with the shared columns filled in, made at the first row of a record
            lines.append(f"{pad}if _shared is None:")
            shared = {c.position: _ruled(writer.text(c.unit, every), c.spec) for c in out.shared}
            template = ", ".join(shared.get(p, "''") for p in range(out.width))
            computed, code = _shared_lookups(pad + "    ", f"    _shared = [{template}]", writer.names)
            lines += [*computed, pad + code]
        row_names = [*names, "row_number"]
        own = {c.position: _ruled(writer.text(c.unit, row_names), c.spec) for c in row.columns}
        if out.shared and len(own) < len(shared_at):  # copy the shared row, put this row's own values in
            statements = ["_r = _shared.copy()", *(f"_r[{p}] = {code}" for p, code in own.items())]
            row_value = "_r"
        else:
            statements = []
            row_value = "[" + ", ".join(f"_shared[{p}]" if p in shared_at else own[p] for p in range(out.width)) + "]"
        if out.split is None:
            statements.append(f"_rows.append({row_value})")
        else:
            split = writer.text(out.split, row_names)
            statements.append(f"_rows.append((_split_value({split}), {row_value}))")
        computed, code = _shared_lookups(pad, "\n".join(statements), writer.names)
        lines += [*computed, *(pad + statement for statement in code.split("\n"))]
        writer.read = outer
    lines.append("    return _rows")
    return lines


def _files_function(writer: _Writer, files: FilesPlan, every: list[str]) -> list[str]:
    lines = [f"def gen_files_{files.key}(c):",
             *writer.loads([files.for_each, files.when, files.source, files.file], every), "    _found = []"]
    names = list(every)
    pad = "    "
    entry = "None"
    if files.for_each is not None:
        lines.append(f"{pad}for {_ident(files.as_)} in _as_list({writer.plain_value(files.for_each, names)}):")
        names.append(files.as_)
        entry = _ident(files.as_)
        pad += "    "
        if files.when is not None:
            lines += [f"{pad}if not ({writer.plain_value(files.when, names)}):", f"{pad}    continue"]
    elif files.when is not None:
        lines += [f"{pad}if not ({writer.plain_value(files.when, names)}):", f"{pad}    return _found"]
    lines.append(f"{pad}_source = ({writer.text(files.source, names)}).strip()")
    lines.append(f"{pad}if _source:")
    lines.append(f"{pad}    _found.append((_source, ({writer.text(files.file, names)}).strip(), {entry}))")
    lines.append("    return _found")
    return lines


def load(env: ImmutableSandboxedEnvironment, source: str, plan: ModulePlan, shown_as: str,
         batch_record: type | None, define_jinja: Any, row_fields: type | None = None) -> dict[str, Any]:
    """Compile the generated ``source`` (see the module docstring) and give its functions by name."""
    namespace = namespace_for(env, batch_record, row_fields)
    units = plan.units

    def _jinja_value(index: int, context: dict[str, Any]) -> Any:
        return units[index](**context)

    def _jinja_text(index: int, context: dict[str, Any]) -> str:
        return units[index].render(context)

    namespace.update(_jinja_value=_jinja_value, _jinja_text=_jinja_text, _define_jinja=define_jinja,
                     _kept=_kept, _required=_required, _at_most=_at_most, _split_value=_split_value,
                     _skipped_words=skipped_words)
    code = compile(source, f"<generated from {shown_as}>", "exec")
    exec(code, namespace)  # noqa: S102 - our own text from the whitelisted syntax tree, see the module docstring
    return {name: value for name, value in namespace.items() if name.startswith("gen_")}


def _kept(value: Any) -> Any:
    """What ``define`` keeps: a one-time iterator read into a list (as the Jinja way does)."""
    return list(value) if isinstance(value, Iterator) else value


def _required(value: str) -> str:
    if not value.strip():
        raise NotGenerated("a required value came out empty")  # the Jinja way says so, with the column
    return value


def _at_most(value: str, length: int) -> str:
    if len(value) > length:
        raise NotGenerated("a value is too long")  # the Jinja way says so, with the column
    return value


def _split_value(text: str) -> str:
    value = text.strip()
    if not value:
        raise NotGenerated("the split_by value is empty")
    return value
