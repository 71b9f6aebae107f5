"""A compiled mapping at run time: what convert.py calls for every record.

Each value has two ways to be computed. The *generated* way is Python written for this
mapping by :mod:`.compile_rows` (one function per kind of output, the defined values, the
skip rules, the key): it runs for every record. The *Jinja* way renders the same sources
with Jinja, compiled only the first time it is needed: it runs when the generated code
raised, or could not be generated for a value. Whatever Jinja then gives is the answer,
its value or its error; Jinja's error, located here (file, record, column, mapping line),
is what the admin reads. So the generated code decides nothing on its own: it is a faster
way to the same result, and the Jinja way is the reference and the error path.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import InputError, MappingError
from ..i18n import _
from ..readers.registry import ReadRoom, read_records
from ..yamlload import Loc, YamlDocument
from .model import Column, CsvOutput, EmailOutput, FileOutput, JsonOutput, MappingSpec, TemplateOutput
from .values import Record, as_list, row_place

if TYPE_CHECKING:
    from ..readers.batch import BatchDatabase

SEP = "\x1f"  # ASCII unit separator: never part of real text; values containing it take the slow path

Generated = Callable[[dict[str, Any]], Any]

# How often each generated function raised and Jinja answered instead (by the function's name):
# the error path, and what a test looks at to see that the shipped mappings never need it.
FALLBACKS: Counter[str] = Counter()


class JinjaUnit:
    """One template or expression of the mapping, compiled by Jinja only when first needed."""

    __slots__ = ("_compiled", "env", "expression", "source")

    def __init__(self, env: ImmutableSandboxedEnvironment, source: str, expression: bool) -> None:
        self.env = env
        self.source = source
        self.expression = expression
        self._compiled: Any = None

    def _jinja(self) -> Any:
        if self._compiled is None:
            if self.expression:
                self._compiled = self.env.compile_expression(self.source, undefined_to_none=False)
            else:
                self._compiled = self.env.from_string(self.source)
        return self._compiled

    @property
    def template(self) -> jinja2.Template:
        """The Jinja template (of a template unit)."""
        template: jinja2.Template = self._jinja()
        return template

    def render(self, context: dict[str, Any]) -> str:
        text: str = self._jinja().render(context)
        return text

    def __call__(self, **context: Any) -> Any:
        """An expression's value, as Jinja's ``compile_expression`` gives it."""
        return self._jinja()(**context)


class TemplateFile:
    """A template file (e-mail text, a template output), compiled by Jinja when first used."""

    def __init__(self, env: ImmutableSandboxedEnvironment, name: str) -> None:
        self.env = env
        self.name = name
        self._template: jinja2.Template | None = None

    @property
    def template(self) -> jinja2.Template:
        if self._template is None:
            self._template = self.env.get_template(self.name)
        return self._template

    def render(self, context: dict[str, Any]) -> str:
        return self.template.render(context)


def _generated_or_none(function: Generated | None, context: dict[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` from the generated function, ``(False, None)`` when Jinja has to answer instead."""
    if function is None:
        return False, None
    try:
        return True, function(context)
    except (MemoryError, RecursionError):
        raise  # a limit of the process: Jinja would only meet it again
    except Exception:  # Jinja computes the value once more: its value, or its error with its words, counts
        FALLBACKS[getattr(function, "__name__", "?")] += 1
        return False, None


@dataclass
class CompiledColumn:
    name: str
    spec: Column
    where: str
    unit: JinjaUnit

    @property
    def template(self) -> jinja2.Template:
        return self.unit.template


@dataclass
class Block:
    """Columns rendered together by Jinja; ``positions`` are their places in the output row.

    The columns are joined into one template (separated by a unit-separator character), so a
    row costs one render; when it fails, the columns are rendered one by one to find out
    which column and which mapping line the admin has to look at.
    """

    columns: list[CompiledColumn]
    positions: list[int]
    _joined: jinja2.Template | None = field(default=None, repr=False)

    @property
    def template(self) -> jinja2.Template | None:
        if self._joined is None and self.columns:
            env = self.columns[0].unit.env
            self._joined = env.from_string(SEP.join(c.spec.value for c in self.columns))
        return self._joined

    def render(self, local: dict[str, Any]) -> list[str]:
        try:
            values = self._render(local)
        except Exception:
            values = [_render_one(col, local) for col in self.columns]  # locates the error
        return [_apply_rules(col, value) for col, value in zip(self.columns, values, strict=True)]

    def _render(self, local: dict[str, Any]) -> list[str]:
        if self.template is None:
            return []
        values = self.template.render(local).split(SEP)
        if len(values) != len(self.columns):
            raise ValueError("a value contains the separator character")
        return values


def _render_one(col: CompiledColumn, local: dict[str, Any]) -> str:
    try:
        return col.unit.render(local)
    except Exception as exc:
        raise _as_mapping_error(exc).located(field=col.name, mapping=col.where) from None


@dataclass
class CompiledRow:
    """A kind of row, the Jinja way (see the module docstring)."""

    for_each: JinjaUnit | None
    as_: str
    when: JinjaUnit | None
    block: Block  # the columns that differ from row to row
    where: str
    and_for_each: JinjaUnit | None = None
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

    def _list(self, expression: JinjaUnit, context: dict[str, Any], field: str) -> list[Any]:
        try:
            return as_list(expression(**context))
        except Exception as exc:
            raise _as_mapping_error(exc).located(field=field, mapping=self.where) from None


@dataclass
class CompiledOutput:
    spec: CsvOutput | JsonOutput
    file_unit: JinjaUnit
    where: str
    rows: list[CompiledRow]
    record_block: Block  # the columns that are the same in every row of a record
    split: JinjaUnit | None = None  # ``split_by``: which file of the output a row goes to
    split_where: str = ""
    generated_rows: Generated | None = None  # the rows of one record (with their split values), generated
    generated_file: Generated | None = None

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
        return _output_file_name(self.file_unit, self.generated_file, context, self.where)

    def rows_for(self, context: dict[str, Any]) -> list[list[str]]:
        """The rows one record produces, numbered across all kinds of row (``row_number``)."""
        generated = self.generated_rows
        if generated is not None:  # _generated_or_none, written out: this runs for every record
            try:
                rows: list[Any] = generated(context)
            except (MemoryError, RecursionError):
                raise
            except Exception:
                FALLBACKS[generated.__name__] += 1
            else:
                return rows if self.split is None else [values for _, values in rows]
        return [values for _, values in self._rows(context)]

    def split_rows_for(self, context: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
        """The rows of one record, each with the value of ``split_by`` that chooses its file."""
        done, rows = _generated_or_none(self.generated_rows, context)
        if done and self.split is not None:
            yield from rows
            return
        yield from self.split_rows_for_jinja(context)

    def split_rows_for_jinja(self, context: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
        """``split_rows_for``, the Jinja way."""
        split = self.split
        for local, values in self._rows(context):
            value = ""
            if split is not None:
                try:
                    value = split.render(local).strip()
                except Exception as exc:
                    raise _as_mapping_error(exc).located(field="split_by", mapping=self.split_where) from None
                if not value:
                    raise MappingError(_("the value that chooses this row's file ('split_by') came out empty; "
                                         "leave such rows out with 'when'"), field="split_by",
                                       mapping=self.split_where)
            yield value, values

    def _rows(self, context: dict[str, Any]) -> Iterator[tuple[dict[str, Any], list[str]]]:
        """The Jinja way."""
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
    file_unit: JinjaUnit
    when: JinjaUnit | None
    recipient: JinjaUnit
    subject: JinjaUnit
    text: TemplateFile
    html: TemplateFile | None
    where: str
    generated: dict[str, Generated] = field(default_factory=dict)  # file, when, recipient, subject

    @property
    def name(self) -> str:
        return self.spec.name

    def file_name(self, context: dict[str, Any]) -> str:
        return _output_file_name(self.file_unit, self.generated.get("file"), context, self.where)

    def wanted(self, context: dict[str, Any]) -> bool:
        if self.when is None:
            return True
        done, value = _generated_or_none(self.generated.get("when"), context)
        if done:
            return bool(value)
        try:
            return bool(self.when(**context))
        except Exception as exc:
            raise _as_mapping_error(exc).located(field="when", mapping=self.where) from None

    def render(self, part: str, context: dict[str, Any]) -> str:
        if part in ("recipient", "subject"):
            done, text = _generated_or_none(self.generated.get(part), context)
            if done:
                return str(text)
        parts: dict[str, JinjaUnit | TemplateFile | None] = {
            "recipient": self.recipient, "subject": self.subject, "text": self.text, "html": self.html}
        template = parts[part]
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
    for_each: JinjaUnit | None
    when: JinjaUnit | None
    source: JinjaUnit
    file_unit: JinjaUnit
    where: str
    generated: Generated | None = None  # (source, name, entry) of each file of a record

    @property
    def name(self) -> str:
        return self.spec.name

    def files_for(self, context: dict[str, Any]) -> Iterator[PassedOn]:
        """The files one record passes on: where each is in the batch, and its name at the destination."""
        done, found = _generated_or_none(self.generated, context)
        if done and all(_name_problem(name) is None for _, name, _ in found):
            for source, name, entry in found:
                yield PassedOn(source, name, None if self.for_each is None else row_place(entry))
            return
        yield from self._jinja_files(context)

    def _jinja_files(self, context: dict[str, Any]) -> Iterator[PassedOn]:
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
                    yield PassedOn(source, _output_file_name(self.file_unit, None, local, self.where), row)
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
    file_unit: JinjaUnit
    template_file: TemplateFile
    where: str
    schema: Path | None
    generated_file: Generated | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def template(self) -> jinja2.Template:
        return self.template_file.template

    def file_name(self, context: dict[str, Any]) -> str:
        return _output_file_name(self.file_unit, self.generated_file, context, self.where)


def _output_file_name(unit: JinjaUnit, generated: Generated | None, context: dict[str, Any], where: str) -> str:
    """An output's file name; it must stay inside its outbox."""
    done, text = _generated_or_none(generated, context)
    if done:
        name = str(text).strip()
    else:
        try:
            name = unit.render(context).strip()
        except Exception as exc:
            raise _as_mapping_error(exc).located(field="file", mapping=where) from None
    problem = _name_problem(name)
    if problem is not None:
        raise MappingError(problem, field="file", value=name, mapping=where)
    return name


def _name_problem(name: str) -> str | None:
    """What is wrong with an output file name, or ``None``."""
    if not name or name.startswith(".") or any(c in name for c in '/\\:*?"<>|') or any(ord(c) < 32 for c in name):
        return _("the output file name must be a plain name without folders, not starting with '.'")
    hidden = next((c for c in name if unicodedata.category(c) in _INVISIBLE), None)
    if hidden is not None:
        return _("the output file name contains the invisible character {code}; such characters make a "
                 "name look other than it is (a right-to-left mark turns '{example}' into what reads as "
                 "'rechnungexe.pdf'), so file names must not have them").format(
            code=f"U+{ord(hidden):04X}", example="rechnung\u202efdp.exe")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return _("the output file name is {size} bytes long (in UTF-8); file systems take 255 at most, and the "
                 "gateway adds a few while it writes the file, so at most {most} are allowed").format(
            size=size, most=MAX_NAME_BYTES)
    return None


MAX_NAME_BYTES = 240  # '.' + name + '.part' (while written) must fit the 255 bytes file systems allow
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")  # control and format characters (bidi marks, zero widths), line separators


def _apply_rules(col: CompiledColumn, value: str) -> str:
    spec = col.spec
    if spec.required and not value.strip():
        raise MappingError(_("a value is required here, but it came out empty"), field=col.name, mapping=col.where)
    if spec.max_length is not None and len(value) > spec.max_length:
        if spec.too_long == "cut":
            return value[: spec.max_length]
        raise MappingError(
            _("the value is {length} characters long, at most {most} are allowed").format(
                length=len(value), most=spec.max_length),
            field=col.name, value=value, mapping=col.where,
        )
    return value


class DefinitionFailed(jinja2.UndefinedError):
    """A ``define`` value that could not be computed for the record is used."""


def as_mapping_error(exc: BaseException) -> InputError:
    """What a failed template or expression means for the admin, in words."""
    if isinstance(exc, (MemoryError, RecursionError)):
        raise exc  # a limit of the process, not a value: the worker process reports it in words
    if isinstance(exc, InputError):
        return exc
    if isinstance(exc, DefinitionFailed):
        return MappingError(exc.message or _("a defined value could not be computed"))
    if isinstance(exc, jinja2.UndefinedError):
        return MappingError(_("the mapping uses something that does not exist: {reason}").format(reason=exc.message))
    if isinstance(exc, SecurityError):
        return MappingError(_("the mapping tried something that is not allowed: {reason}").format(reason=exc))
    if isinstance(exc, (TypeError, ValueError, ArithmeticError)):
        return MappingError(_("the value could not be computed: {reason}").format(reason=exc))
    return MappingError(_("the value could not be computed: {reason}").format(reason=f"{type(exc).__name__}: {exc}"))


_as_mapping_error = as_mapping_error


def skipped_words() -> str:
    """The reason of a record a ``skip`` rule leaves out without giving one."""
    return _("skipped by the mapping")


@dataclass
class Define:
    name: str
    unit: JinjaUnit
    where: str


@dataclass
class SkipRule:
    when: JinjaUnit
    reason: JinjaUnit
    where: str


@dataclass
class Mapping:
    """A runnable mapping: read records, key them, and render each output's rows."""

    spec: MappingSpec
    shown_as: str
    doc: YamlDocument
    env: ImmutableSandboxedEnvironment
    key_unit: JinjaUnit | None
    outputs: list[CompiledOutput | CompiledTemplate | CompiledEmail | CompiledFiles]
    settings: dict[str, str] = field(default_factory=dict)
    skip_rules: list[SkipRule] = field(default_factory=list)
    defines: list[Define] = field(default_factory=list)
    generated: dict[str, Generated] = field(default_factory=dict)  # define, skip, key
    source: str = ""  # the generated Python, for reading (``gateway`` never loads it from anywhere else)
    sources: list[Path] = field(default_factory=list)  # the files its check read (see check_cache)

    @property
    def key_template(self) -> JinjaUnit | None:
        return self.key_unit

    def define(self, context: dict[str, Any]) -> None:
        """Add the mapping's ``define`` values for this record to ``context``.

        A value that cannot be computed for this record (the first price of an article that
        has none) is not an error yet: the record may be skipped, or the value never used.
        It becomes one, naming the definition and why, where a template uses it.
        """
        if not self.defines:
            return
        generated = self.generated.get("define")
        if generated is not None:
            generated(context)  # each value that fails there comes from ``define_with_jinja``
            return
        for index in range(len(self.defines)):
            context[self.defines[index].name] = self.define_with_jinja(index, context)

    def define_with_jinja(self, index: int, context: dict[str, Any]) -> Any:
        """The ``index``-th defined value the Jinja way: its value, or the undefined value that explains."""
        definition = self.defines[index]
        try:
            value = definition.unit(**context)
            if isinstance(value, Iterator):  # a filter's result: read it once, or a second use would find it empty
                value = list(value)
            return value
        except Exception as exc:  # kept, and raised where the value is used
            reason = str(as_mapping_error(exc))  # with the value, where the error names one
            return jinja2.StrictUndefined(
                hint=_("'{name}' (defined at {where}) could not be computed for this record: {reason}").format(
                    name=definition.name, where=definition.where, reason=reason), exc=DefinitionFailed)

    def records(self, path: Path, shown_as: str, work_dir: Path | None = None,
                keep: BatchDatabase | None = None) -> Iterator[Record]:
        """The input's records, streamed by the reader registered for its ``input.format`` (grouped if asked).

        ``work_dir`` is a private folder for readers that need room (a batch's join database);
        ``keep`` holds a batch's database for a further pass over the same input.
        """
        return read_records(path, shown_as, self.spec.input, ReadRoom(work_dir, keep))

    def skip_reason(self, context: dict[str, Any]) -> str | None:
        """Why the record is not to be converted, by the mapping's ``skip`` rules; ``None`` to convert it."""
        if not self.skip_rules:
            return None
        done, reason = _generated_or_none(self.generated.get("skip"), context)
        if done:
            return reason  # type: ignore[no-any-return]
        for rule in self.skip_rules:
            try:
                if rule.when(**context):
                    return rule.reason.render(context).strip() or skipped_words()
            except Exception as exc:
                raise as_mapping_error(exc).located(field="skip", mapping=rule.where) from None
        return None

    def context(self, record: Record, input_info: dict[str, Any], settings: dict[str, str]) -> dict[str, Any]:
        return {
            self.spec.input.as_: record,
            "record": record,
            "settings": Record(dict(settings)),
            "input": Record(dict(input_info)),
        }

    def contexts(self, input_info: dict[str, Any], settings: dict[str, str]) -> Callable[[Record], dict[str, Any]]:
        """``context`` for each record of one input: settings and input are the same records for all of them."""
        name, shared_settings, shared_input = self.spec.input.as_, Record(dict(settings)), Record(dict(input_info))

        def context(record: Record) -> dict[str, Any]:
            return {name: record, "record": record, "settings": shared_settings, "input": shared_input}

        return context

    def key_of(self, context: dict[str, Any]) -> str | None:
        if self.key_unit is None:
            return None
        done, key = _generated_or_none(self.generated.get("key"), context)
        if done:
            key = str(key).strip()
        else:
            try:
                key = self.key_unit.render(context).strip()
            except Exception as exc:
                raise as_mapping_error(exc).located(field=self._key_label,
                                                   mapping=self.where(("key", "value"))) from None
        if not key:
            raise MappingError(_("the {label} is empty").format(label=self._key_label),
                               mapping=self.where(("key", "value")))
        return key

    def describe(self, key: str | None, index: int) -> str:
        """How messages name a record: ``order 123-456-789``, or ``order no. 2 in the file`` without a key.

        The line is not part of it: errors carry the line separately.
        """
        label = self.spec.input.label
        return f"{label} {key}" if key else _("{label} no. {number} in the file").format(label=label, number=index)

    def where(self, loc: Loc) -> str:
        line, _column = self.doc.where(loc)
        return f"{self.doc.file_of(loc)}:{line}"

    @property
    def _key_label(self) -> str:
        return self.spec.key.label if self.spec.key else "key"

    @property
    def key_scope(self) -> str | None:
        if self.spec.key is None:
            return None
        return self.spec.key.scope
