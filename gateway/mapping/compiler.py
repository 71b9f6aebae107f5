"""A mapping compiled once, run for every record.

Columns are compiled into *blocks*: one template that renders several columns at once
(separated by a unit-separator character), so a row costs one render, not one per
column. Columns that are the same for every row of a record (the order header of an
order import: customer, addresses, payment) form the record block, rendered once per
record; the rest form one block per kind of row. When a block fails, its columns are
rendered one by one to find out which column and which mapping line the admin has to
look at: the slow path is the error path.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import ConfigError, InputError, MappingError, Problem
from ..readers.registry import ReadRoom, read_records
from ..validation import validate
from ..yamlload import Loc, YamlDocument, load_yaml
from .fastpath import compile_fast, compile_fast_expression
from .model import (
    BatchInput,
    Column,
    ColumnSpec,
    CsvOutput,
    EmailOutput,
    FileOutput,
    JsonOutput,
    Lookup,
    MappingSpec,
    TemplateOutput,
)
from .templating import make_environment
from .values import MISSING, Record, as_list, row_place

if TYPE_CHECKING:
    from ..readers.batch import BatchDatabase

SEP = "\x1f"  # ASCII unit separator: never part of real text; values containing it take the slow path


@dataclass
class CompiledColumn:
    name: str
    spec: Column
    where: str
    template: jinja2.Template


@dataclass
class Block:
    """Columns rendered together; ``positions`` are their places in the output row.

    ``fast`` holds, per column, a plain function when the column needs no Jinja (see
    ``fastpath``); the other columns are joined into ``template`` and rendered at once.
    """

    columns: list[CompiledColumn]
    positions: list[int]
    template: jinja2.Template | None
    fast: list[Callable[[dict[str, Any]], str] | None]

    def render(self, local: dict[str, Any]) -> list[str]:
        try:
            values = self._render(local)
        except Exception:
            values = [_render_one(col, local) for col in self.columns]  # locates the error
        return [_apply_rules(col, value) for col, value in zip(self.columns, values, strict=True)]

    def _render(self, local: dict[str, Any]) -> list[str]:
        slow: list[str] = []
        if self.template is not None:
            slow = self.template.render(local).split(SEP)
            if len(slow) != sum(f is None for f in self.fast):
                raise ValueError("a value contains the separator character")
        values: list[str] = []
        rest = iter(slow)
        for fn in self.fast:
            values.append(fn(local) if fn is not None else next(rest))
        return values


def _with_fallback(fast: Callable[..., Any] | None, jinja: Callable[..., Any]) -> Callable[..., Any]:
    """The fast expression, or Jinja's where it fails: Jinja's exception is the one that explains."""
    if fast is None:
        return jinja
    quick = fast

    def evaluate(**context: Any) -> Any:
        try:
            return quick(**context)
        except Exception:
            return jinja(**context)

    return evaluate


def _render_one(col: CompiledColumn, local: dict[str, Any]) -> str:
    try:
        return col.template.render(local)
    except Exception as exc:
        raise _as_mapping_error(exc).located(field=col.name, mapping=col.where) from None


@dataclass
class CompiledRow:
    for_each: Callable[..., Any] | None
    as_: str
    when: Callable[..., Any] | None
    block: Block  # the columns that differ from row to row
    where: str
    and_for_each: Callable[..., Any] | None = None
    and_as: str = "item2"

    def entries(self, context: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The names each row of this kind sees: the record's, plus the loop entries."""
        if self.for_each is None:
            yield dict(context)
            return
        for entry in self._list(self.for_each, context, "for_each"):
            local = dict(context)
            local[self.as_] = entry
            if self.and_for_each is None:
                yield local
                continue
            for inner in self._list(self.and_for_each, local, "and_for_each"):
                both = dict(local)
                both[self.and_as] = inner
                yield both

    def _list(self, expression: Callable[..., Any], context: dict[str, Any], field: str) -> list[Any]:
        try:
            return as_list(expression(**context))
        except Exception as exc:
            raise _as_mapping_error(exc).located(field=field, mapping=self.where) from None


@dataclass
class CompiledOutput:
    spec: CsvOutput | JsonOutput
    file_template: jinja2.Template
    where: str
    rows: list[CompiledRow]
    record_block: Block  # the columns that are the same in every row of a record
    split: jinja2.Template | None = None  # ``split_by``: which file of the output a row goes to
    split_where: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def column_names(self) -> list[str]:
        return list(self.spec.columns)

    @property
    def column_types(self) -> list[str]:
        return [c.type if isinstance(c, Column) else "text" for c in self.spec.columns.values()]

    def file_name(self, context: dict[str, Any]) -> str:
        return _output_file_name(self.file_template, context, self.where)

    def rows_for(self, context: dict[str, Any]) -> Iterator[list[str]]:
        """The rows one record produces, numbered across all kinds of row (``row_number``)."""
        for _, values in self._rows(context):
            yield values

    def split_rows_for(self, context: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
        """The rows of one record, each with the value of ``split_by`` that chooses its file."""
        split = self.split
        for local, values in self._rows(context):
            value = ""
            if split is not None:
                try:
                    value = split.render(local).strip()
                except Exception as exc:
                    raise _as_mapping_error(exc).located(field="split_by", mapping=self.split_where) from None
                if not value:
                    raise MappingError("the value that chooses this row's file ('split_by') came out empty; "
                                       "leave such rows out with 'when'", field="split_by", mapping=self.split_where)
            yield value, values

    def _rows(self, context: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[str]]]:
        counter = itertools.count(1)
        shared: list[str] | None = None
        width = len(self.spec.columns)
        for row in self.rows:
            for local in row.entries(context):
                if row.when is not None:
                    try:
                        keep = row.when(**local)
                    except Exception as exc:
                        raise _as_mapping_error(exc).located(field="when", mapping=row.where) from None
                    if not keep:
                        continue
                local["row_number"] = next(counter)
                if shared is None:  # rendered once per record, when its first row is made
                    shared = [""] * width
                    for pos, value in zip(self.record_block.positions, self.record_block.render(context), strict=True):
                        shared[pos] = value
                values = list(shared)
                for pos, value in zip(row.block.positions, row.block.render(local), strict=True):
                    values[pos] = value
                yield local, values


@dataclass
class CompiledEmail:
    """An output of one e-mail per record."""

    spec: EmailOutput
    file_template: jinja2.Template
    when: Callable[..., Any] | None
    recipient: jinja2.Template
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template | None
    where: str

    @property
    def name(self) -> str:
        return self.spec.name

    def file_name(self, context: dict[str, Any]) -> str:
        return _output_file_name(self.file_template, context, self.where)

    def wanted(self, context: dict[str, Any]) -> bool:
        if self.when is None:
            return True
        try:
            return bool(self.when(**context))
        except Exception as exc:
            raise _as_mapping_error(exc).located(field="when", mapping=self.where) from None

    def render(self, part: str, context: dict[str, Any]) -> str:
        template = {"recipient": self.recipient, "subject": self.subject, "text": self.text, "html": self.html}[part]
        if template is None:
            return ""
        try:
            return template.render(context)
        except Exception as exc:
            raise _as_mapping_error(exc).located(field=part, mapping=self.where) from None


@dataclass
class CompiledFiles:
    """An output that passes files of a batch on, one per record or per ``for_each`` entry."""

    spec: FileOutput
    for_each: Callable[..., Any] | None
    when: Callable[..., Any] | None
    source: jinja2.Template
    file_template: jinja2.Template
    where: str

    @property
    def name(self) -> str:
        return self.spec.name

    def files_for(self, context: dict[str, Any]) -> Iterator[PassedOn]:
        """The files one record passes on: where each is in the batch, and its name at the destination."""
        try:
            entries = [None] if self.for_each is None else as_list(self.for_each(**context))
        except Exception as exc:
            raise _as_mapping_error(exc).located(field="for_each", mapping=self.where) from None
        for entry in entries:
            local = dict(context)
            row = None
            if self.for_each is not None:
                local[self.spec.as_] = entry
                row = row_place(entry)
            try:
                if self.when is not None and not self.when(**local):
                    continue
                source = self.source.render(local).strip()
                if source:
                    yield PassedOn(source, _output_file_name(self.file_template, local, self.where), row)
            except Exception as exc:
                error = _as_mapping_error(exc).located(mapping=self.where)
                if row is not None:
                    error.message = f"{error.message} ({row})"
                raise error from None


class PassedOn(NamedTuple):
    """A file a record passes on."""

    source: str  # its name in the batch, as the row gives it
    name: str  # the name it gets at the destination
    row: str | None  # the row of the related table that named it, in words; None when the record did


@dataclass
class CompiledTemplate:
    """An output rendered by a template file over all records of the input."""

    spec: TemplateOutput
    file_template: jinja2.Template
    template: jinja2.Template
    where: str
    schema: Path | None

    @property
    def name(self) -> str:
        return self.spec.name

    def file_name(self, context: dict[str, Any]) -> str:
        return _output_file_name(self.file_template, context, self.where)


def _output_file_name(template: jinja2.Template, context: dict[str, Any], where: str) -> str:
    """An output's file name; it must stay inside its outbox."""
    try:
        name = template.render(context).strip()
    except Exception as exc:
        raise _as_mapping_error(exc).located(field="file", mapping=where) from None
    if not name or name.startswith(".") or any(c in name for c in '/\\:*?"<>|') or any(ord(c) < 32 for c in name):
        raise MappingError(
            "the output file name must be a plain name without folders, not starting with '.'",
            field="file", value=name, mapping=where,
        )
    hidden = next((c for c in name if unicodedata.category(c) in _INVISIBLE), None)
    if hidden is not None:
        raise MappingError(
            f"the output file name contains the invisible character U+{ord(hidden):04X}; such characters make a "
            "name look other than it is (a right-to-left mark turns 'rechnung\u202efdp.exe' into what reads as "
            "'rechnungexe.pdf'), so file names must not have them",
            field="file", value=name, mapping=where,
        )
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise MappingError(
            f"the output file name is {size} bytes long (in UTF-8); file systems take 255 at most, and the "
            f"gateway adds a few while it writes the file, so at most {MAX_NAME_BYTES} are allowed",
            field="file", value=name, mapping=where,
        )
    return name


MAX_NAME_BYTES = 240  # '.' + name + '.part' (while written) must fit the 255 bytes file systems allow
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")  # control and format characters (bidi marks, zero widths), line separators


def _apply_rules(col: CompiledColumn, value: str) -> str:
    spec = col.spec
    if spec.required and not value.strip():
        raise MappingError("a value is required here, but it came out empty", field=col.name, mapping=col.where)
    if spec.max_length is not None and len(value) > spec.max_length:
        if spec.too_long == "cut":
            return value[: spec.max_length]
        raise MappingError(
            f"the value is {len(value)} characters long, at most {spec.max_length} are allowed",
            field=col.name, value=value, mapping=col.where,
        )
    return value


# Words templates give a meaning of their own: a value named so would never be read.
_TEMPLATE_WORDS = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                             "else", "loop", "self", "caller", "varargs", "kwargs"})


class DefinitionFailed(jinja2.UndefinedError):
    """A ``define`` value that could not be computed for the record is used."""


def _as_mapping_error(exc: BaseException) -> InputError:
    if isinstance(exc, (MemoryError, RecursionError)):
        raise exc  # a limit of the process, not a value: the worker process reports it in words
    if isinstance(exc, InputError):
        return exc
    if isinstance(exc, DefinitionFailed):
        return MappingError(exc.message or "a defined value could not be computed")
    if isinstance(exc, jinja2.UndefinedError):
        return MappingError(f"the mapping uses something that does not exist: {exc.message}")
    if isinstance(exc, SecurityError):
        return MappingError(f"the mapping tried something that is not allowed: {exc}")
    if isinstance(exc, (TypeError, ValueError, ArithmeticError)):
        return MappingError(f"the value could not be computed: {exc}")
    return MappingError(f"the value could not be computed: {type(exc).__name__}: {exc}")


@dataclass
class Mapping:
    """A runnable mapping: read records, key them, and render each output's rows."""

    spec: MappingSpec
    shown_as: str
    doc: YamlDocument
    env: ImmutableSandboxedEnvironment
    key_template: jinja2.Template | None
    outputs: list[CompiledOutput | CompiledTemplate | CompiledEmail | CompiledFiles]
    settings: dict[str, str] = field(default_factory=dict)
    skip_rules: list[tuple[Callable[..., Any], jinja2.Template, str]] = field(default_factory=list)
    defines: list[tuple[str, Callable[..., Any], str]] = field(default_factory=list)  # name, expression, where

    def define(self, context: dict[str, Any]) -> None:
        """Add the mapping's ``define`` values for this record to ``context``.

        A value that cannot be computed for this record (the first price of an article that
        has none) is not an error yet: the record may be skipped, or the value never used.
        It becomes one, naming the definition and why, where a template uses it.
        """
        for name, expression, where in self.defines:
            try:
                value = expression(**context)
                if isinstance(value, Iterator):  # a filter's result: read it once, or a second use would find it empty
                    value = list(value)
                context[name] = value
            except Exception as exc:  # kept, and raised where the value is used
                reason = str(_as_mapping_error(exc))  # with the value, where the error names one
                context[name] = jinja2.StrictUndefined(
                    hint=f"'{name}' (defined at {where}) could not be computed for this record: {reason}",
                    exc=DefinitionFailed)

    def __post_init__(self) -> None:
        self._fast_key = compile_fast(self.env, self.spec.key.value) if self.spec.key is not None else None

    def records(self, path: Path, shown_as: str, work_dir: Path | None = None,
                keep: BatchDatabase | None = None) -> Iterator[Record]:
        """The input's records, streamed by the reader registered for its ``input.format`` (grouped if asked).

        ``work_dir`` is a private folder for readers that need room (a batch's join database);
        ``keep`` holds a batch's database for a further pass over the same input.
        """
        return read_records(path, shown_as, self.spec.input, ReadRoom(work_dir, keep))

    def skip_reason(self, context: dict[str, Any]) -> str | None:
        """Why the record is not to be converted, by the mapping's ``skip`` rules; ``None`` to convert it."""
        for when, reason, where in self.skip_rules:
            try:
                if when(**context):
                    return reason.render(context).strip() or "skipped by the mapping"
            except Exception as exc:
                raise _as_mapping_error(exc).located(field="skip", mapping=where) from None
        return None

    def context(self, record: Record, input_info: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
        return {
            self.spec.input.as_: record,
            "record": record,
            "settings": Record(dict(settings)),
            "input": Record(dict(input_info)),
        }

    def key_of(self, context: dict[str, Any]) -> str | None:
        if self.key_template is None:
            return None
        try:
            key = None
            if self._fast_key is not None:
                try:
                    key = self._fast_key(context)
                except Exception:  # Jinja says what is wrong, below
                    key = None
            if key is None:
                key = self.key_template.render(context)
            key = key.strip()
        except Exception as exc:
            raise _as_mapping_error(exc).located(field=self._key_label, mapping=self.where(("key", "value"))) from None
        if not key:
            raise MappingError(f"the {self._key_label} is empty", mapping=self.where(("key", "value")))
        return key

    def describe(self, key: str | None, index: int) -> str:
        """How messages name a record: ``order 123-456-789``, or ``order no. 2 in the file`` without a key.

        The line is not part of it: errors carry the line separately.
        """
        label = self.spec.input.label
        return f"{label} {key}" if key else f"{label} no. {index} in the file"

    def where(self, loc: Loc) -> str:
        line, _ = self.doc.where(loc)
        return f"{self.doc.file_of(loc)}:{line}"

    @property
    def _key_label(self) -> str:
        return self.spec.key.label if self.spec.key else "key"

    @property
    def key_scope(self) -> str | None:
        if self.spec.key is None:
            return None
        return self.spec.key.scope


def load_mapping(path: Path, shown_as: str, root: Path | None = None) -> Mapping:
    """Load, validate and compile one mapping file; raise ``ConfigError`` with every problem.

    ``root`` is the installation folder that template and schema paths are relative to
    (by default the folder above the mapping's, as in the shipped layout).
    """
    doc = load_yaml(path, shown_as)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "a mapping must be a group of 'name: value' lines")])
    root = root or path.resolve().parent.parent
    if "based_on" in doc.data:
        from .based_on import merge_based_on

        doc = merge_based_on(doc, path, root)
    spec = validate(MappingSpec, doc)
    return compile_mapping(spec, doc, root)


class _Compiler:
    """Compiles every expression and template of a mapping, collecting all problems."""

    def __init__(self, spec: MappingSpec, doc: YamlDocument, root: Path) -> None:
        self.spec = spec
        self.doc = doc
        self.root = root
        self.problems: list[Problem] = []
        tables = {name: self._lookup_values(name, t) for name, t in spec.lookups.items()}
        self.env = make_environment({name: _make_lookup(name, t, tables[name]) for name, t in spec.lookups.items()},
                                    root)

    def _lookup_values(self, name: str, table: Lookup) -> dict[str, str]:
        """The table's values: those of its CSV file (if any), then the inline ones."""
        values: dict[str, str] = {}
        if table.file is not None:
            loc: Loc = ("lookups", name, "file")
            if not table.key or not table.value:
                self.problems.append(self.doc.problem(loc, "a lookup file needs 'key' and 'value': the column names"))
                return dict(table.values)
            path = (self.root / table.file).resolve()
            if not path.is_relative_to(self.root.resolve()):
                self.problems.append(self.doc.problem(loc, f"the lookup file {table.file} is outside the installation "
                                                           "folder; keep lookup files inside it (e.g. lookups/)"))
                return dict(table.values)
            if not path.is_file():
                self.problems.append(self.doc.problem(loc, f"the lookup file {table.file} does not exist"))
                return dict(table.values)
            from ..readers.csv import read_csv_records

            try:
                for row in read_csv_records(path, table.file, required=(table.key, table.value)):
                    key = str(row[table.key])
                    if key in values:
                        self.problems.append(self.doc.problem(
                            loc, f"{table.file} line {row.line}: '{key}' is in the table twice"))
                    values[key] = str(row[table.value])
            except InputError as exc:
                self.problems.append(self.doc.problem(loc, str(exc)))
        values.update(table.values)
        return values

    def check_batch(self) -> None:
        spec = self.spec.input
        if not isinstance(spec, BatchInput):
            return
        known = ", ".join(spec.tables)
        if spec.records not in spec.tables:
            self.problems.append(self.doc.problem(("input", "records"),
                                                  f"there is no table '{spec.records}' (tables: {known})"))
        for table, fields in spec.relations.items():
            if table not in spec.tables:
                self.problems.append(self.doc.problem(("input", "relations", table),
                                                      f"there is no table '{table}' (tables: {known})"))
            for field_name, rel in fields.items():
                if rel.table not in spec.tables:
                    self.problems.append(self.doc.problem(("input", "relations", table, field_name, "table"),
                                                          f"there is no table '{rel.table}' (tables: {known})"))
        if spec.watermark is not None and spec.watermark.table not in spec.tables:
            self.problems.append(self.doc.problem(("input", "watermark", "table"),
                                                  f"there is no table '{spec.watermark.table}' (tables: {known})"))

    def record_names(self) -> set[str]:
        """The names every per-record template knows: the record, settings, input and the defined values."""
        return {self.spec.input.as_, "record", "settings", "input", *self.spec.define}

    def defines(self) -> list[tuple[str, Callable[..., Any], str]]:
        known = {self.spec.input.as_, "record", "settings", "input"}
        compiled = []
        for name, source in self.spec.define.items():
            loc: Loc = ("define", name)
            if name in known or name == "row_number" or name in self.env.globals or name in _TEMPLATE_WORDS:
                self.problems.append(self.doc.problem(
                    loc, f"'{name}' is already a name here; choose another name for this value"))
                continue
            expression = self.expression(source, loc, known)
            known.add(name)
            if expression is not None:
                compiled.append((name, expression, self.where(loc)))
        return compiled

    def skip_rules(self) -> list[tuple[Callable[..., Any], jinja2.Template, str]]:
        names = self.record_names()
        rules = []
        for i, rule in enumerate(self.spec.skip):
            when = self.expression(rule.when, ("skip", i, "when"), names)
            reason = self.template(rule.reason, ("skip", i, "reason"), names)
            if when is not None and reason is not None:
                rules.append((when, reason, self.where(("skip", i, "when"))))
        return rules

    def where(self, loc: Loc) -> str:
        line, _ = self.doc.where(loc)
        return f"{self.doc.file_of(loc)}:{line}"

    def template(self, source: str, loc: Loc, names: set[str]) -> jinja2.Template | None:
        return self._compile(source, loc, names, expression=False)  # type: ignore[return-value]

    def expression(self, source: str, loc: Loc, names: set[str]) -> Callable[..., Any] | None:
        return self._compile(source, loc, names, expression=True)  # type: ignore[return-value]

    def _compile(self, source: str, loc: Loc, names: set[str], expression: bool) -> object | None:
        text = "{{ " + source + " }}" if expression else source
        try:
            ast = self.env.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            line, col = self.doc.where(loc)
            self.problems.append(Problem(self.doc.file_of(loc), line + (exc.lineno or 1) - 1, col,
                                         f"template syntax: {exc.message}"))
            return None
        before = len(self.problems)
        self._check_names(ast, loc, names)
        if len(self.problems) > before:
            return None  # already explained; compiling would only fail again in Jinja's words
        try:
            if expression:
                jinja = self.env.compile_expression(source, undefined_to_none=False)
                return _with_fallback(compile_fast_expression(self.env, source), jinja)
            return self.env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            line, col = self.doc.where(loc)
            self.problems.append(Problem(self.doc.file_of(loc), line + (exc.lineno or 1) - 1, col,
                                         f"template syntax: {exc.message}"))
            return None

    def _check_names(self, ast: nodes.Template, loc: Loc, names: set[str]) -> None:
        try:
            undeclared = meta.find_undeclared_variables(ast)
        except jinja2.TemplateSyntaxError:
            undeclared = set()  # an unknown filter; reported below in the admin's words
        for name in sorted(undeclared - names):
            self.problems.append(self.doc.problem(
                loc, f"unknown name '{name}' (known here: {', '.join(sorted(names))})"))
        for attr in ast.find_all(nodes.Getattr):
            if attr.attr.startswith("_"):
                self.problems.append(self.doc.problem(
                    loc, f"'{attr.attr}': names starting with '_' are not allowed in templates (Python internals)"))
        for node in ast.find_all(nodes.Getattr):
            is_setting = isinstance(node.node, nodes.Name) and node.node.name == "settings"
            if is_setting and node.attr not in self.spec.settings:
                known = ", ".join(self.spec.settings) or "none"
                self.problems.append(self.doc.problem(loc, f"unknown setting '{node.attr}' (settings: {known})"))
        for filt in ast.find_all(nodes.Filter):
            if filt.name not in self.env.filters:
                self.problems.append(self.doc.problem(
                    loc, f"unknown filter '{filt.name}' (filters: {', '.join(sorted(self.env.filters))})"))
            if filt.name == "lookup" and filt.args and isinstance(filt.args[0], nodes.Const):
                table = filt.args[0].value
                if table not in self.spec.lookups:
                    known = ", ".join(self.spec.lookups) or "none"
                    self.problems.append(self.doc.problem(loc, f"unknown lookup table '{table}' (tables: {known})"))

    def column(self, name: str, spec: ColumnSpec, loc: Loc, names: set[str]) -> CompiledColumn | None:
        column = spec if isinstance(spec, Column) else Column(value=spec)
        value_loc = (*loc, "value") if isinstance(spec, Column) else loc
        template = self.template(column.value, value_loc, names)
        if template is None:
            return None
        return CompiledColumn(name=name, spec=column, where=self.where(value_loc), template=template)

    def template_output(self, index: int, out: TemplateOutput) -> CompiledTemplate | None:
        base: Loc = ("outputs", index)
        file_template = self.template(out.file, (*base, "file"), {"settings", "input"})
        path = (self.root / out.template).resolve()
        template: jinja2.Template | None = None
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            self.problems.append(self.doc.problem((*base, "template"),
                                                  f"the template {out.template} does not exist in {self.root}"))
        else:
            template = self._template_file(out.template, (*base, "template"))
        schema: Path | None = None
        if out.schema_ is not None:
            schema = (self.root / out.schema_).resolve()
            from ..xmlcheck import check_schema  # lxml, only for a mapping that validates XML

            problem = check_schema(schema, out.schema_)
            if problem:
                self.problems.append(self.doc.problem((*base, "schema"), problem))
        if file_template is None or template is None:
            return None
        return CompiledTemplate(spec=out, file_template=file_template, template=template,
                                where=self.where((*base, "template")), schema=schema)

    def file_output(self, index: int, out: FileOutput) -> CompiledFiles | None:
        base: Loc = ("outputs", index)
        if not isinstance(self.spec.input, BatchInput):
            self.problems.append(self.doc.problem((*base, "format"),
                                                  "a 'file' output passes on files of a batch: the input must be "
                                                  "format: batch"))
        names = self.record_names()
        for_each = self.expression(out.for_each, (*base, "for_each"), names) if out.for_each else None
        if out.for_each:
            self._loop_name(out.as_, "as", (*base, "as" if "as" in out.model_fields_set else "for_each"), names)
        inner = names | ({out.as_} if out.for_each else set())
        when = self.expression(out.when, (*base, "when"), inner) if out.when else None
        source = self.template(out.source, (*base, "source"), inner)
        file_template = self.template(out.file, (*base, "file"), inner)
        if file_template is not None and not self._uses_input_id(out.file):
            self.problems.append(self.doc.problem(
                (*base, "file"), "the name of a file passed on must contain the input's number, {{ input.id }}: "
                "a later export holding the same file would otherwise meet this one's in the outbox, and wait "
                "there for ever"))
        if source is None or file_template is None:
            return None
        return CompiledFiles(spec=out, for_each=for_each, when=when, source=source, file_template=file_template,
                             where=self.where(base))

    def email_output(self, index: int, out: EmailOutput) -> CompiledEmail | None:
        base: Loc = ("outputs", index)
        names = self.record_names()
        file_template = self.template(out.file, (*base, "file"), names)
        when = self.expression(out.when, (*base, "when"), names) if out.when else None
        recipient = self.template(out.recipient, (*base, "recipient"), names)
        subject = self.template(out.subject, (*base, "subject"), names)
        bodies: dict[str, jinja2.Template | None] = {"text": None, "html": None}
        for part, path in (("text", out.text), ("html", out.html)):
            if path is None:
                continue
            if not (self.root / path).is_file():
                self.problems.append(self.doc.problem((*base, part), f"the template {path} does not exist"))
                continue
            bodies[part] = self._template_file(path, (*base, part), names)
        text = bodies["text"]
        if file_template is None or recipient is None or subject is None or text is None:
            return None
        return CompiledEmail(spec=out, file_template=file_template, when=when, recipient=recipient,
                             subject=subject, text=text, html=bodies["html"], where=self.where(base))

    def _template_file(self, name: str, loc: Loc, names: set[str] | None = None) -> jinja2.Template | None:
        try:
            template = self.env.get_template(Path(name).as_posix())
        except jinja2.TemplateSyntaxError as exc:
            self.problems.append(Problem(name, exc.lineno or 1, 1, f"template syntax: {exc.message}"))
            return None
        source = Path(self.root / name).read_text(encoding="utf-8")
        try:
            ast = self.env.parse(source)
        except jinja2.TemplateSyntaxError:  # pragma: no cover - get_template parsed it already
            return None
        for node in ast.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
            target = getattr(node, "template", None)
            if isinstance(target, nodes.Const) and Path(str(target.value)).as_posix() == Path(name).as_posix():
                self.problems.append(self.doc.problem(loc, f"{name} includes itself, which would never end"))
        names = names or {"records", "settings", "input"}
        for unknown in sorted(meta.find_undeclared_variables(ast) - names):
            self.problems.append(self.doc.problem(
                loc, f"{name} uses the unknown name '{unknown}' (known there: {', '.join(sorted(names))})"))
        return template

    def output(self, index: int, out: CsvOutput | JsonOutput) -> CompiledOutput | None:
        base: Loc = ("outputs", index)
        record_names = self.record_names()
        file_names = {"settings", "input"} | (record_names if out.per == "record" else set())
        if out.split_by is not None:
            file_names.add("split")
            if "split" not in self._names_used(out.file):
                self.problems.append(self.doc.problem(
                    (*base, "file"), "with 'split_by' the file name must contain {{ split }} "
                    "(the value that chooses the file), or every file would get the same name"))
        file_template = self.template(out.file, (*base, "file"), file_names)
        rows: list[CompiledRow] = []
        record_level = self._record_level_columns(out)
        position = {name: i for i, name in enumerate(out.columns)}
        shared_columns: list[CompiledColumn] = []
        row_level_names = {"row_number"} | _loop_names(out)
        for name in record_level:
            compiled = self.column(name, out.columns[name], (*base, "columns", name), record_names | row_level_names)
            if compiled is not None:
                shared_columns.append(compiled)
        if isinstance(out, CsvOutput) and out.header and out.unencodable == "error":
            for name in out.columns:
                try:
                    name.encode(out.encoding)
                except UnicodeEncodeError as exc:
                    self.problems.append(self.doc.problem(
                        (*base, "columns", name), f"the column name '{name}' cannot be written in {out.encoding} "
                        f"(the character '{name[exc.start]}'); rename the column or choose another encoding"))
        every_row_knows: set[str] | None = None  # the names all kinds of row have: what split_by may use
        for j, row in enumerate(out.rows):
            row_loc: Loc = (*base, "rows", j)
            names = set(record_names) | {"row_number"}
            for_each = None
            if row.for_each is not None:
                for_each = self.expression(row.for_each, (*row_loc, "for_each"), record_names)
                self._loop_name(row.as_, "as", (*row_loc, "as" if "as" in row.model_fields_set else "for_each"),
                                names)
                names.add(row.as_)
            and_for_each = None
            if row.and_for_each is not None:
                and_for_each = self.expression(row.and_for_each, (*row_loc, "and_for_each"), set(names))
                self._loop_name(row.and_as, "and_as", (*row_loc, "and_as" if "and_as" in row.model_fields_set
                                                       else "and_for_each"), names)
                names.add(row.and_as)
            every_row_knows = names if every_row_knows is None else every_row_knows & names
            when = self.expression(row.when, (*row_loc, "when"), names - {"row_number"}) if row.when else None
            for extra in row.columns:
                if extra not in out.columns:
                    self.problems.append(self.doc.problem(
                        (*row_loc, "columns", extra),
                        f"'{extra}' is not one of this output's columns (add it to 'columns' first)"))
            columns: list[CompiledColumn] = []
            for name, col_spec in out.columns.items():
                if name in record_level:
                    continue
                if name in row.columns:
                    compiled = self.column(name, row.columns[name], (*row_loc, "columns", name), names)
                else:
                    compiled = self.column(name, col_spec, (*base, "columns", name), names)
                if compiled is not None:
                    columns.append(compiled)
            rows.append(CompiledRow(
                for_each=for_each, as_=row.as_, when=when, block=self._block(columns, position),
                where=self.where(row_loc), and_for_each=and_for_each, and_as=row.and_as,
            ))
        split = None
        if out.split_by is not None:
            split = self.template(out.split_by, (*base, "split_by"), every_row_knows or set(record_names))
        if file_template is None or self.problems:
            return None
        return CompiledOutput(
            spec=out, file_template=file_template, where=self.where((*base, "file")), rows=rows,
            record_block=self._block(shared_columns, position), split=split,
            split_where=self.where((*base, "split_by")),
        )

    def _loop_name(self, name: str, key: str, loc: Loc, taken: set[str]) -> None:
        """A loop's name must not hide the record, settings, input, row_number or the other loop's entry."""
        if name in taken:
            self.problems.append(self.doc.problem(
                loc, f"'{key}: {name}' would hide the name '{name}' that is already known here; choose another name"))

    def _uses_input_id(self, source: str) -> bool:
        try:
            ast = self.env.parse(source)
        except jinja2.TemplateSyntaxError:
            return True  # reported where the template is compiled
        return any(isinstance(node.node, nodes.Name) and node.node.name == "input" and node.attr == "id"
                   for node in ast.find_all(nodes.Getattr))

    def _names_used(self, source: str) -> set[str]:
        try:
            return set(meta.find_undeclared_variables(self.env.parse(source)))
        except jinja2.TemplateSyntaxError:
            return set()  # reported where the template is compiled

    def _block(self, columns: list[CompiledColumn], position: dict[str, int]) -> Block:
        fast = [compile_fast(self.env, c.spec.value) for c in columns]
        slow = [c.spec.value for c, f in zip(columns, fast, strict=True) if f is None]
        return Block(columns=columns, positions=[position[c.name] for c in columns],
                     template=self.env.from_string(SEP.join(slow)) if slow else None, fast=fast)

    def _record_level_columns(self, out: CsvOutput | JsonOutput) -> list[str]:
        """Output columns that no kind of row overrides and that use nothing row-specific."""
        overridden = {name for row in out.rows for name in row.columns}
        row_names = {"row_number"} | _loop_names(out)
        shared = []
        for name, spec in out.columns.items():
            if name in overridden:
                continue
            source = spec.value if isinstance(spec, Column) else spec
            try:
                used = meta.find_undeclared_variables(self.env.parse(source))
            except jinja2.TemplateSyntaxError:
                continue  # reported (once) where the column is compiled
            if not used & row_names:
                shared.append(name)
        return shared


def _loop_names(out: CsvOutput | JsonOutput) -> set[str]:
    """The names the kinds of row give their loop entries (``as``, ``and_as``)."""
    names = {row.as_ for row in out.rows if row.for_each is not None}
    return names | {row.and_as for row in out.rows if row.and_for_each is not None}


def _make_lookup(name: str, table: Lookup, values: dict[str, str]) -> Callable[[Any], str]:
    def lookup(value: Any) -> str:
        key = str(value).strip() if value is not MISSING else ""
        if key in values:
            return values[key]
        if table.default is not None:
            return table.default
        if table.keep_unknown:
            return key
        known = ", ".join(list(values)[:20]) + (", …" if len(values) > 20 else "") or "none"
        raise MappingError(
            f"'{key}' is not in the lookup table '{name}' (known: {known}); add it under "
            f"lookups → {name} → values in the mapping, or give the table a default",
        )

    return lookup


def _one_per_place(problems: list[Problem]) -> list[Problem]:
    """An output column is compiled once per kind of row; its mistake is reported once."""
    seen: set[tuple[str, int, int, str]] = set()
    unique = []
    for p in problems:
        what = (p.file, p.line, p.column, p.message.split(" (")[0])  # the hint in brackets may differ
        if what not in seen:
            seen.add(what)
            unique.append(p)
    return unique


def compile_mapping(spec: MappingSpec, doc: YamlDocument, root: Path) -> Mapping:
    compiler = _Compiler(spec, doc, root)
    defines = compiler.defines()
    record_names = {spec.input.as_, "record", "settings", "input"}  # the key comes before the defined values
    key_template = None
    if spec.key is not None:
        key_template = compiler.template(spec.key.value, ("key", "value"), record_names)
    outputs: list[CompiledOutput | CompiledTemplate | CompiledEmail | CompiledFiles] = []
    for i, out in enumerate(spec.outputs):
        if isinstance(out, TemplateOutput):
            compiled: CompiledOutput | CompiledTemplate | CompiledEmail | CompiledFiles | None = (
                compiler.template_output(i, out))
        elif isinstance(out, FileOutput):
            compiled = compiler.file_output(i, out)
        elif isinstance(out, EmailOutput):
            compiled = compiler.email_output(i, out)
        else:
            compiled = compiler.output(i, out)
        if compiled is not None:
            outputs.append(compiled)
    names = [o.name for o in spec.outputs]
    for i, name in enumerate(names):
        if name in names[:i]:
            compiler.problems.append(doc.problem(("outputs", i, "name"), f"two outputs are named '{name}'"))
    skip_rules = compiler.skip_rules()
    compiler.check_batch()
    if compiler.problems:
        raise ConfigError(_one_per_place(compiler.problems))
    return Mapping(
        spec=spec, shown_as=doc.path, doc=doc, env=compiler.env, key_template=key_template,
        outputs=outputs, settings=dict(spec.settings), skip_rules=skip_rules, defines=defines,
    )
