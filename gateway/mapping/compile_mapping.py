"""A mapping file loaded, checked and compiled: the compile-time half (the run-time half is :mod:`.runtime`).

Loading reads the YAML (with ``based_on``), validates it against :mod:`.model`, and checks
every template and expression: syntax, names, settings, filters, tests, lookup tables, files.
Every problem is collected with its place (``FILE:LINE:COL``), so ``gateway check`` lists them
all at once. Each value is parsed by Jinja once; the syntax tree serves the checks and
:mod:`.compile_python`, which writes the Python that runs for every record. Jinja compiles a
value into a template only when the run-time objects first need it (the fallback and error
path), so loading a mapping costs a parse per value, not a Jinja compilation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.parser import Parser

from ..errors import ConfigError, InputError, MappingError, Problem
from ..i18n import N_, _
from ..validation import validate
from ..yamlload import Loc, YamlDocument, load_yaml
from . import compile_rows
from .compile_rows import ColumnPlan, FilesPlan, ModulePlan, OutputPlan, RowPlan, Unit
from .model import (
    BatchInput,
    Column,
    ColumnSpec,
    CsvInput,
    CsvOutput,
    EmailOutput,
    FileOutput,
    JsonOutput,
    Lookup,
    MappingSpec,
    TemplateOutput,
)
from .runtime import (
    Block,
    CompiledColumn,
    CompiledEmail,
    CompiledFiles,
    CompiledOutput,
    CompiledRow,
    CompiledTemplate,
    Define,
    JinjaUnit,
    Mapping,
    SkipRule,
    TemplateFile,
)
from .templating import make_environment
from .values import MISSING

# Words templates give a meaning of their own: a value named so would never be read.
_TEMPLATE_WORDS = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if",
                             "else", "loop", "self", "caller", "varargs", "kwargs"})


def load_mapping(path: Path, shown_as: str, root: Path | None = None) -> Mapping:
    """Load, validate and compile one mapping file; raise ``ConfigError`` with every problem.

    ``root`` is the installation folder that template and schema paths are relative to
    (by default the folder above the mapping's, as in the shipped layout).
    """
    doc = load_yaml(path, shown_as)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), _("a mapping must be a group of 'name: value' lines"))])
    root = root or path.resolve().parent.parent
    sources = [path]  # every file the check reads (see check_cache)
    if "based_on" in doc.data:
        from .based_on import merge_based_on

        if isinstance(doc.data["based_on"], str):
            sources.append(path.resolve().parent / doc.data["based_on"])
        doc = merge_based_on(doc, path, root)
    spec = validate(MappingSpec, doc)
    return compile_mapping(spec, doc, root, sources)


def compile_mapping(spec: MappingSpec, doc: YamlDocument, root: Path, sources: list[Path] | None = None) -> Mapping:
    compiler = _Compiler(spec, doc, root)
    defines = compiler.defines()
    record_names = {spec.input.as_, "record", "settings", "input"}  # the key comes before the defined values
    key_unit = None
    if spec.key is not None:
        key_unit = compiler.template(spec.key.value, ("key", "value"), record_names)
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
            compiler.problems.append(doc.problem(("outputs", i, "name"),
                                                 _("two outputs are named '{name}'").format(name=name)))
    skip_rules = compiler.skip_rules()
    compiler.check_batch()
    if compiler.problems:
        raise ConfigError(_one_per_place(compiler.problems))
    mapping = Mapping(
        spec=spec, shown_as=doc.path, doc=doc, env=compiler.env, key_unit=key_unit.jinja if key_unit else None,
        outputs=outputs, settings=dict(spec.settings), skip_rules=skip_rules,
        defines=[Define(name, unit.jinja, where) for name, unit, where in defines],
    )
    compiler.plan.key = key_unit
    compiler.plan.defines = [(name, unit) for name, unit, _ in defines]
    _generate(compiler, mapping)
    mapping.sources = [*(sources or []), *compiler.sources]
    return mapping


def _generate(compiler: _Compiler, mapping: Mapping) -> None:
    """Write the mapping's Python (:mod:`.compile_rows`) and hand its functions to the run-time objects."""
    batch_record: type | None = None
    row_fields: type | None = None
    if isinstance(mapping.spec.input, BatchInput):  # only then: a CSV mapping loads without SQLite
        from ..readers.batch.relations import BatchRecord

        batch_record = BatchRecord
    if isinstance(mapping.spec.input, (CsvInput, BatchInput)):
        from ..readers.csv import RowFields

        row_fields = RowFields
    source, _plan = compile_rows.generate(compiler.env, compiler.plan)
    functions = compile_rows.load(compiler.env, source, compiler.plan, mapping.shown_as, batch_record,
                                  mapping.define_with_jinja, row_fields)
    mapping.source = source
    mapping.generated = {name: functions[f"gen_{name}"] for name in ("define", "skip", "key")
                         if f"gen_{name}" in functions}
    for out in mapping.outputs:
        key = compiler.keys[id(out)]
        if isinstance(out, CompiledOutput):
            out.generated_rows = functions.get(f"gen_rows_{key}")
            out.generated_file = functions.get(f"gen_file_{key}")
        elif isinstance(out, CompiledTemplate):
            out.generated_file = functions.get(f"gen_file_{key}")
        elif isinstance(out, CompiledFiles):
            out.generated = functions.get(f"gen_files_{key}")
        else:
            out.generated = {part: functions[f"gen_{part}_{key}"] for part in ("file", "when", "recipient", "subject")
                             if f"gen_{part}_{key}" in functions}


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


def _make_lookup(name: str, table: Lookup, values: dict[str, str]) -> Any:
    def lookup(value: Any) -> str:
        key = str(value).strip() if value is not MISSING else ""
        if key in values:
            return values[key]
        if table.default is not None:
            return table.default
        if table.keep_unknown:
            return key
        known = ", ".join(list(values)[:20]) + (", …" if len(values) > 20 else "") or _("none")
        raise MappingError(
            _("'{key}' is not in the lookup table '{name}' (known: {known}); add it under "
              "lookups → {name} → values in the mapping, or give the table a default").format(
                key=key, name=name, known=known),
        )

    return lookup


def _loop_names(out: CsvOutput | JsonOutput) -> set[str]:
    """The names the kinds of row give their loop entries (``as``, ``and_as``)."""
    names = {row.as_ for row in out.rows if row.for_each is not None}
    return names | {row.and_as for row in out.rows if row.and_for_each is not None}


NO_TABLE = N_("there is no table '{table}' (tables: {known})")
TEMPLATE_SYNTAX = N_("template syntax: {message}")


def jinja_assertions(tree: nodes.Template, env: jinja2.Environment) -> list[tuple[int, str]]:
    """What Jinja's compiler itself refuses in a parsed template: (line, Jinja's message), in order.

    These are the checks Jinja makes when it turns a template into Python (unknown filters and
    tests outside ``if``, assigning to ``loop``, ``caller`` without a default, a block defined
    twice, ``extends`` below the top). Templates are compiled by Jinja only when first needed,
    so the checks are made here, on the syntax tree, as Jinja makes them, so that
    ``gateway check`` still refuses such a template up front.
    """
    found: list[tuple[int, str]] = []

    def walk(node: nodes.Node, soft: bool, top: bool) -> None:
        if isinstance(node, (nodes.Filter, nodes.Test)) and not soft:
            known = env.filters if isinstance(node, nodes.Filter) else env.tests
            if node.name not in known:
                kind = "filter" if isinstance(node, nodes.Filter) else "test"
                found.append((node.lineno, f"No {kind} named {node.name!r}."))
        if isinstance(node, nodes.For):
            for name in node.find_all(nodes.Name):
                if name.ctx == "store" and name.name == "loop":
                    found.append((name.lineno, "Can't assign to special loop variable in for-loop target"))
        if isinstance(node, (nodes.Macro, nodes.CallBlock)):
            names = [a.name for a in node.args]
            if "caller" in names and names.index("caller") < len(names) - len(node.defaults):
                found.append((node.lineno, 'When defining macros or call blocks the special "caller" argument '
                                           "must be omitted or be given a default."))
        if isinstance(node, nodes.Extends) and not top:
            found.append((node.lineno, "cannot use extend from a non top-level scope"))
        if isinstance(node, (nodes.If, nodes.CondExpr)):
            for child in node.iter_child_nodes():
                walk(child, True, top)
        elif isinstance(node, nodes.For):
            walk(node.iter, soft, False)
            for child in (node.target, *node.body, *node.else_, *([node.test] if node.test else [])):
                walk(child, False, False)
        elif isinstance(node, (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.With, nodes.AssignBlock,
                               nodes.Block, nodes.Scope)):
            for child in node.iter_child_nodes():
                walk(child, False, False)
        else:
            for child in node.iter_child_nodes():
                walk(child, soft, top)

    for node in tree.body:
        walk(node, False, True)
    seen: set[str] = set()
    for block in tree.find_all(nodes.Block):
        if block.name in seen:
            found.append((block.lineno, f"block {block.name!r} defined twice"))
        seen.add(block.name)
    return sorted(found)


class _Compiler:
    """Checks every expression and template of a mapping, collecting all problems, and plans its Python."""

    def __init__(self, spec: MappingSpec, doc: YamlDocument, root: Path) -> None:
        self.spec = spec
        self.doc = doc
        self.root = root
        self.problems: list[Problem] = []
        self.sources: list[Path] = []  # the files the check reads besides the mapping (see check_cache)
        tables = {name: self._lookup_values(name, t) for name, t in spec.lookups.items()}
        self.env = make_environment({name: _make_lookup(name, t, tables[name]) for name, t in spec.lookups.items()},
                                    root)
        relations = frozenset(spec.input.relations.get(spec.input.records, {})) if isinstance(spec.input, BatchInput) \
            else frozenset()
        self.plan = ModulePlan(record_names=[spec.input.as_, "record", "settings", "input"],
                               record_relations=relations)
        self.keys: dict[int, str] = {}  # id of a run-time output -> the suffix of its generated functions
        self._parsed: dict[str, nodes.Template] = {}
        self._undeclared: dict[int, set[str]] = {}

    def _lookup_values(self, name: str, table: Lookup) -> dict[str, str]:
        """The table's values: those of its CSV file (if any), then the inline ones."""
        values: dict[str, str] = {}
        if table.file is not None:
            loc: Loc = ("lookups", name, "file")
            if not table.key or not table.value:
                self.problems.append(self.doc.problem(
                    loc, _("a lookup file needs 'key' and 'value': the column names")))
                return dict(table.values)
            path = (self.root / table.file).resolve()
            self.sources.append(self.root / table.file)
            if not path.is_relative_to(self.root.resolve()):
                self.problems.append(self.doc.problem(loc, _(
                    "the lookup file {file} is outside the installation folder; keep lookup files inside it "
                    "(e.g. lookups/)").format(file=table.file)))
                return dict(table.values)
            if not path.is_file():
                self.problems.append(self.doc.problem(
                    loc, _("the lookup file {file} does not exist").format(file=table.file)))
                return dict(table.values)
            from ..readers.csv import read_csv_records

            try:
                for row in read_csv_records(path, table.file, required=(table.key, table.value)):
                    key = str(row[table.key])
                    if key in values:
                        self.problems.append(self.doc.problem(
                            loc, _("{file} line {line}: '{key}' is in the table twice").format(
                                file=table.file, line=row.line, key=key)))
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
                                                  _(NO_TABLE).format(table=spec.records, known=known)))
        for table, fields in spec.relations.items():
            if table not in spec.tables:
                self.problems.append(self.doc.problem(("input", "relations", table),
                                                      _(NO_TABLE).format(table=table, known=known)))
            for field_name, rel in fields.items():
                if rel.table not in spec.tables:
                    self.problems.append(self.doc.problem(("input", "relations", table, field_name, "table"),
                                                          _(NO_TABLE).format(table=rel.table, known=known)))
        if spec.watermark is not None and spec.watermark.table not in spec.tables:
            self.problems.append(self.doc.problem(("input", "watermark", "table"),
                                                  _(NO_TABLE).format(table=spec.watermark.table, known=known)))

    def record_names(self) -> set[str]:
        """The names every per-record template knows: the record, settings, input and the defined values."""
        return {self.spec.input.as_, "record", "settings", "input", *self.spec.define}

    def defines(self) -> list[tuple[str, Unit, str]]:
        known = {self.spec.input.as_, "record", "settings", "input"}
        compiled = []
        for name, source in self.spec.define.items():
            loc: Loc = ("define", name)
            if name in known or name == "row_number" or name in self.env.globals or name in _TEMPLATE_WORDS:
                self.problems.append(self.doc.problem(
                    loc, _("'{name}' is already a name here; choose another name for this value").format(name=name)))
                continue
            expression = self.expression(source, loc, known)
            known.add(name)
            if expression is not None:
                compiled.append((name, expression, self.where(loc)))
        return compiled

    def skip_rules(self) -> list[SkipRule]:
        names = self.record_names()
        rules = []
        for i, rule in enumerate(self.spec.skip):
            when = self.expression(rule.when, ("skip", i, "when"), names)
            reason = self.template(rule.reason, ("skip", i, "reason"), names)
            if when is not None and reason is not None:
                rules.append(SkipRule(when.jinja, reason.jinja, self.where(("skip", i, "when"))))
                self.plan.skip.append((when, reason))
        return rules

    def where(self, loc: Loc) -> str:
        line, _column = self.doc.where(loc)
        return f"{self.doc.file_of(loc)}:{line}"

    def template(self, source: str, loc: Loc, names: set[str]) -> Unit | None:
        return self._compile(source, loc, names, expression=False)

    def expression(self, source: str, loc: Loc, names: set[str]) -> Unit | None:
        return self._compile(source, loc, names, expression=True)

    def parse(self, text: str) -> nodes.Template:
        """Jinja's syntax tree of ``text``, parsed once per text (``TemplateSyntaxError`` as Jinja raises it)."""
        tree = self._parsed.get(text)
        if tree is None:
            tree = self._parsed[text] = self.env.parse(text)
        return tree

    def undeclared(self, tree: nodes.Template) -> set[str]:
        """The names a template takes from outside (Jinja's ``meta``), found once per tree."""
        found = self._undeclared.get(id(tree))
        if found is None:
            found = self._undeclared[id(tree)] = set(meta.find_undeclared_variables(tree))
        return found

    def _syntax_problem(self, loc: Loc, exc: jinja2.TemplateSyntaxError) -> None:
        line, col = self.doc.where(loc)
        self.problems.append(Problem(self.doc.file_of(loc), line + (exc.lineno or 1) - 1, col,
                                     _(TEMPLATE_SYNTAX).format(message=exc.message)))

    def _compile(self, source: str, loc: Loc, names: set[str], expression: bool) -> Unit | None:
        text = "{{ " + source + " }}" if expression else source
        try:
            ast = self.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            self._syntax_problem(loc, exc)
            return None
        before = len(self.problems)
        self._check_names(ast, loc, names)
        if len(self.problems) > before:
            return None  # already explained; compiling would only fail again in Jinja's words
        tree: nodes.Template | nodes.Expr = ast
        try:
            if expression:
                tree = self._expression_tree(source)  # as Jinja's compile_expression parses it
        except jinja2.TemplateSyntaxError as exc:
            self._syntax_problem(loc, exc)
            return None
        for lineno, message in jinja_assertions(ast, self.env):
            line, col = self.doc.where(loc)
            self.problems.append(Problem(self.doc.file_of(loc), line + lineno - 1, col,
                                         _(TEMPLATE_SYNTAX).format(message=message)))
        if len(self.problems) > before:
            return None
        jinja = JinjaUnit(self.env, source if expression else text, expression)
        self.plan.units.append(jinja)
        return Unit(jinja, tree, len(self.plan.units) - 1)

    def _expression_tree(self, source: str) -> nodes.Expr:
        parser = Parser(self.env, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise jinja2.TemplateSyntaxError("chunk after expression", parser.stream.current.lineno, None, None)
        return expr

    def _check_names(self, ast: nodes.Template, loc: Loc, names: set[str]) -> None:
        try:
            undeclared = self.undeclared(ast)
        except jinja2.TemplateSyntaxError:
            undeclared = set()  # an unknown filter; reported below in the admin's words
        for name in sorted(undeclared - names):
            self.problems.append(self.doc.problem(
                loc, _("unknown name '{name}' (known here: {names})").format(
                    name=name, names=", ".join(sorted(names)))))
        for attr in ast.find_all(nodes.Getattr):
            if attr.attr.startswith("_"):
                self.problems.append(self.doc.problem(
                    loc, _("'{name}': names starting with '_' are not allowed in templates (Python internals)").format(
                        name=attr.attr)))
        for node in ast.find_all(nodes.Getattr):
            is_setting = isinstance(node.node, nodes.Name) and node.node.name == "settings"
            if is_setting and node.attr not in self.spec.settings:
                known = ", ".join(self.spec.settings) or _("none")
                self.problems.append(self.doc.problem(
                    loc, _("unknown setting '{name}' (settings: {known})").format(name=node.attr, known=known)))
        for filt in ast.find_all(nodes.Filter):
            if filt.name not in self.env.filters:
                self.problems.append(self.doc.problem(
                    loc, _("unknown filter '{name}' (filters: {known})").format(
                        name=filt.name, known=", ".join(sorted(self.env.filters)))))
            if filt.name == "lookup" and filt.args and isinstance(filt.args[0], nodes.Const):
                table = filt.args[0].value
                if table not in self.spec.lookups:
                    known = ", ".join(self.spec.lookups) or _("none")
                    self.problems.append(self.doc.problem(
                        loc, _("unknown lookup table '{table}' (tables: {known})").format(table=table, known=known)))

    def column(self, name: str, spec: ColumnSpec, loc: Loc, names: set[str]) -> tuple[CompiledColumn, Unit] | None:
        column = spec if isinstance(spec, Column) else Column(value=spec)
        value_loc = (*loc, "value") if isinstance(spec, Column) else loc
        unit = self.template(column.value, value_loc, names)
        if unit is None:
            return None
        return CompiledColumn(name=name, spec=column, where=self.where(value_loc), unit=unit.jinja), unit

    def _key(self, out: object, index: int) -> str:
        self.keys[id(out)] = str(index)
        return str(index)

    def template_output(self, index: int, out: TemplateOutput) -> CompiledTemplate | None:
        base: Loc = ("outputs", index)
        file_unit = self.template(out.file, (*base, "file"), {"settings", "input"})
        path = (self.root / out.template).resolve()
        self.sources.append(self.root / out.template)
        template: TemplateFile | None = None
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            self.problems.append(self.doc.problem((*base, "template"),
                                                  _("the template {file} does not exist in {folder}").format(
                                                      file=out.template, folder=self.root)))
        else:
            template = self._template_file(out.template, (*base, "template"))
        schema: Path | None = None
        if out.schema_ is not None:
            schema = (self.root / out.schema_).resolve()
            from ..xmlcheck import check_schema  # lxml, only for a mapping that validates XML
            from .check_cache import schema_files

            self.sources.extend(schema_files(self.root / out.schema_))
            problem = check_schema(schema, out.schema_)
            if problem:
                self.problems.append(self.doc.problem((*base, "schema"), problem))
        if file_unit is None or template is None:
            return None
        compiled = CompiledTemplate(spec=out, file_unit=file_unit.jinja, template_file=template,
                                    where=self.where((*base, "template")), schema=schema)
        self.plan.texts[f"gen_file_{self._key(compiled, index)}"] = file_unit
        return compiled

    def file_output(self, index: int, out: FileOutput) -> CompiledFiles | None:
        base: Loc = ("outputs", index)
        if not isinstance(self.spec.input, BatchInput):
            self.problems.append(self.doc.problem((*base, "format"),
                                                  _("a 'file' output passes on files of a batch: the input must "
                                                    "be format: batch")))
        names = self.record_names()
        for_each = self.expression(out.for_each, (*base, "for_each"), names) if out.for_each else None
        if out.for_each:
            self._loop_name(out.as_, "as", (*base, "as" if "as" in out.model_fields_set else "for_each"), names)
        inner = names | ({out.as_} if out.for_each else set())
        when = self.expression(out.when, (*base, "when"), inner) if out.when else None
        source = self.template(out.source, (*base, "source"), inner)
        file_unit = self.template(out.file, (*base, "file"), inner)
        if file_unit is not None and not self._uses_input_id(out.file):
            self.problems.append(self.doc.problem(
                (*base, "file"), _("the name of a file passed on must contain the input's number, {{ input.id }}: "
                                   "a later export holding the same file would otherwise meet this one's in the "
                                   "outbox, and wait there for ever")))
        if source is None or file_unit is None:
            return None
        compiled = CompiledFiles(spec=out, for_each=for_each.jinja if for_each else None,
                                 when=when.jinja if when else None, source=source.jinja, file_unit=file_unit.jinja,
                                 where=self.where(base))
        self.plan.files.append(FilesPlan(self._key(compiled, index), for_each, out.as_, when, source, file_unit))
        return compiled

    def email_output(self, index: int, out: EmailOutput) -> CompiledEmail | None:
        base: Loc = ("outputs", index)
        names = self.record_names()
        file_unit = self.template(out.file, (*base, "file"), names)
        when = self.expression(out.when, (*base, "when"), names) if out.when else None
        recipient = self.template(out.recipient, (*base, "recipient"), names)
        subject = self.template(out.subject, (*base, "subject"), names)
        bodies: dict[str, TemplateFile | None] = {"text": None, "html": None}
        for part, path in (("text", out.text), ("html", out.html)):
            if path is None:
                continue
            self.sources.append(self.root / path)
            if not (self.root / path).is_file():
                self.problems.append(self.doc.problem(
                    (*base, part), _("the template {file} does not exist").format(file=path)))
                continue
            bodies[part] = self._template_file(path, (*base, part), names)
        text = bodies["text"]
        if file_unit is None or recipient is None or subject is None or text is None:
            return None
        compiled = CompiledEmail(spec=out, file_unit=file_unit.jinja, when=when.jinja if when else None,
                                 recipient=recipient.jinja, subject=subject.jinja, text=text, html=bodies["html"],
                                 where=self.where(base))
        key = self._key(compiled, index)
        self.plan.texts.update({f"gen_file_{key}": file_unit, f"gen_recipient_{key}": recipient,
                                f"gen_subject_{key}": subject})
        if when is not None:
            self.plan.values[f"gen_when_{key}"] = when
        return compiled

    def _template_file(self, name: str, loc: Loc, names: set[str] | None = None) -> TemplateFile | None:
        posix = Path(name).as_posix()
        loader = self.env.loader
        assert loader is not None  # noqa: S101 - make_environment is given the installation folder
        source, filename, _uptodate = loader.get_source(self.env, posix)
        try:
            ast = self.env.parse(source, posix, filename)
        except jinja2.TemplateSyntaxError as exc:
            self.problems.append(Problem(name, exc.lineno or 1, 1, _(TEMPLATE_SYNTAX).format(message=exc.message)))
            return None
        assertions = jinja_assertions(ast, self.env)
        if assertions:
            lineno, message = assertions[0]
            self.problems.append(Problem(name, lineno or 1, 1, _(TEMPLATE_SYNTAX).format(message=message)))
            return None
        for node in ast.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
            target = getattr(node, "template", None)
            if isinstance(target, nodes.Const) and Path(str(target.value)).as_posix() == Path(name).as_posix():
                self.problems.append(self.doc.problem(
                    loc, _("{file} includes itself, which would never end").format(file=name)))
        names = names or {"records", "settings", "input"}
        for unknown in sorted(meta.find_undeclared_variables(ast) - names):
            self.problems.append(self.doc.problem(
                loc, _("{file} uses the unknown name '{name}' (known there: {names})").format(
                    file=name, name=unknown, names=", ".join(sorted(names)))))
        return TemplateFile(self.env, posix)

    def output(self, index: int, out: CsvOutput | JsonOutput) -> CompiledOutput | None:
        base: Loc = ("outputs", index)
        record_names = self.record_names()
        file_names = {"settings", "input"} | (record_names if out.per == "record" else set())
        if out.split_by is not None:
            file_names.add("split")
            if "split" not in self._names_used(out.file):
                self.problems.append(self.doc.problem(
                    (*base, "file"), _("with 'split_by' the file name must contain {{ split }} "
                                       "(the value that chooses the file), or every file would get the same name")))
        file_unit = self.template(out.file, (*base, "file"), file_names)
        rows: list[CompiledRow] = []
        row_plans: list[RowPlan] = []
        record_level = self._record_level_columns(out)
        position = {name: i for i, name in enumerate(out.columns)}
        shared_columns: list[CompiledColumn] = []
        shared_plans: list[ColumnPlan] = []
        row_level_names = {"row_number"} | _loop_names(out)
        for name in record_level:
            compiled = self.column(name, out.columns[name], (*base, "columns", name), record_names | row_level_names)
            if compiled is not None:
                shared_columns.append(compiled[0])
                shared_plans.append(ColumnPlan(position[name], compiled[0].spec, compiled[1]))
        if isinstance(out, CsvOutput) and out.header and out.unencodable == "error":
            for name in out.columns:
                try:
                    name.encode(out.encoding)
                except UnicodeEncodeError as exc:
                    self.problems.append(self.doc.problem(
                        (*base, "columns", name), _(
                            "the column name '{name}' cannot be written in {encoding} (the character '{character}'); "
                            "rename the column or choose another encoding").format(
                            name=name, encoding=out.encoding, character=name[exc.start])))
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
                        _("'{name}' is not one of this output's columns (add it to 'columns' first)").format(
                            name=extra)))
            columns: list[CompiledColumn] = []
            plans: list[ColumnPlan] = []
            for name, col_spec in out.columns.items():
                if name in record_level:
                    continue
                if name in row.columns:
                    compiled = self.column(name, row.columns[name], (*row_loc, "columns", name), names)
                else:
                    compiled = self.column(name, col_spec, (*base, "columns", name), names)
                if compiled is not None:
                    columns.append(compiled[0])
                    plans.append(ColumnPlan(position[name], compiled[0].spec, compiled[1]))
            rows.append(CompiledRow(
                for_each=for_each.jinja if for_each else None, as_=row.as_, when=when.jinja if when else None,
                block=Block(columns, [position[c.name] for c in columns]), where=self.where(row_loc),
                and_for_each=and_for_each.jinja if and_for_each else None, and_as=row.and_as,
            ))
            row_plans.append(RowPlan(for_each, row.as_, and_for_each, row.and_as, when, plans))
        split = None
        if out.split_by is not None:
            split = self.template(out.split_by, (*base, "split_by"), every_row_knows or set(record_names))
        if file_unit is None or self.problems:
            return None
        compiled_output = CompiledOutput(
            spec=out, file_unit=file_unit.jinja, where=self.where((*base, "file")), rows=rows,
            record_block=Block(shared_columns, [position[c.name] for c in shared_columns]),
            split=split.jinja if split else None, split_where=self.where((*base, "split_by")),
        )
        key = self._key(compiled_output, index)
        self.plan.outputs.append(OutputPlan(key, len(out.columns), shared_plans, row_plans, split))
        self.plan.texts[f"gen_file_{key}"] = file_unit
        return compiled_output

    def _loop_name(self, name: str, key: str, loc: Loc, taken: set[str]) -> None:
        """A loop's name must not hide the record, settings, input, row_number or the other loop's entry."""
        if name in taken:
            self.problems.append(self.doc.problem(
                loc, _("'{key}: {name}' would hide the name '{name}' that is already known here; choose another "
                       "name").format(key=key, name=name)))

    def _uses_input_id(self, source: str) -> bool:
        try:
            ast = self.parse(source)
        except jinja2.TemplateSyntaxError:
            return True  # reported where the template is compiled
        return any(isinstance(node.node, nodes.Name) and node.node.name == "input" and node.attr == "id"
                   for node in ast.find_all(nodes.Getattr))

    def _names_used(self, source: str) -> set[str]:
        try:
            return set(self.undeclared(self.parse(source)))
        except jinja2.TemplateSyntaxError:
            return set()  # reported where the template is compiled

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
                used = self.undeclared(self.parse(source))
            except jinja2.TemplateSyntaxError:
                continue  # reported (once) where the column is compiled
            if not used & row_names:
                shared.append(name)
        return shared
