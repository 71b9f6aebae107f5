"""Jinja's syntax tree of a mapping value, translated into Python source: the compile-time half.

Why. A Jinja render costs a context, a frame, sandbox checks and dispatch for every filter
and test, several times the work the value itself needs; a catalog article renders dozens
of values. The same meaning, written out as plain Python once per mapping, costs what the
work costs.

What is translated. Only the constructs listed here, each to Python that does what Jinja's
own compiled code does with the same objects: names, constants, ``a.b`` and ``a[b]`` (through
the sandbox's own ``getattr``/``getitem`` unless the object is a record field or a list
index), filters and tests *of the environment* called the way Jinja calls them (``select``,
``reject``, ``selectattr``, ``rejectattr`` and ``map``, which need Jinja's context, are in
:mod:`.whitelist`), the operators, ``if``/``else`` expressions, calls of pure ``str``
methods, ``namespace()`` and ``range()``, and the statements ``if``, ``for`` (with its
``if``, ``else`` and the ``loop.`` counters), ``set`` (also of a namespace's attribute and as
a block) and macros, recursive ones too. Anything else raises :class:`Unsupported`, and the
value is left to Jinja (:mod:`.compile_rows` calls Jinja for it), so the sandbox holds by
construction: the generated code reads record fields, calls the whitelisted functions in
:mod:`.whitelist`, and reaches nothing else.

Exactness. Where the generated code could differ from Jinja at all, it raises instead (an
exception, or :class:`.whitelist.NotGenerated`); the caller then runs the same value
through Jinja, whose result or error is the one used. So the generated code may fail more
often than Jinja, never succeed differently. ``select``, ``selectattr``, ``map`` … give lists
here where Jinja gives one-time generators: where the difference could be seen (truth,
``length``, a second loop), the list is wrapped in ``iter()``, which behaves as Jinja's
generator does; where a generator would be printed, the value is left to Jinja.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from jinja2 import nodes
from jinja2.environment import Environment
from jinja2.utils import _PassArg

from .whitelist import (
    CONTEXT_FILTERS,
    ITERATING_FILTERS,
    LOOP_ATTRIBUTES,
    SUPPORTED_FILTERS,
    SUPPORTED_TESTS,
    callable_str_methods,
)


class Unsupported(Exception):
    """A construct this module does not translate: the value is left to Jinja."""


@dataclass
class Code:
    """A Python expression; ``lazy`` when Jinja's value would be a one-time generator (see the docstring)."""

    text: str
    lazy: bool = False


_COMPARE = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=", "in": "in", "notin": "not in"}
_BINARY = {nodes.Add: "+", nodes.Sub: "-", nodes.Mul: "*", nodes.Div: "/", nodes.FloorDiv: "//",
           nodes.Mod: "%", nodes.Pow: "**"}
_CONST_TYPES = (str, int, float, bool, type(None))


def _literal(value: object) -> str:
    """A constant as Python source: only plain values (a folded ``Markup`` constant is left to Jinja)."""
    if type(value) in _CONST_TYPES:
        return repr(value)
    if type(value) is tuple and all(type(v) in _CONST_TYPES for v in value):
        return repr(value)
    raise Unsupported(f"a constant of type {type(value).__name__}")


class Names:
    """Fresh Python identifiers for one generated module."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def fresh(self, hint: str) -> str:
        clean = "".join(c if c.isalnum() else "_" for c in hint)[:24]
        return f"v{next(self._counter)}_{clean}"


@dataclass
class _Loop:
    index: str  # the 0-based counter
    length: str  # the list's length


@dataclass
class _Frame:
    """A Jinja scope: the template (or a value), a macro, one ``for`` iteration, a ``set`` block."""

    parent: _Frame | None
    names: dict[str, str] = field(default_factory=dict)  # Jinja name -> Python identifier
    macros: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (function, parameters)
    loop: _Loop | None = None
    in_macro: bool = False
    attributes: dict[str, str] = field(default_factory=dict)  # "name.attr" read before: its identifier (root only)

    def find(self, name: str) -> str | None:
        frame: _Frame | None = self
        while frame is not None:
            if name in frame.names:
                return frame.names[name]
            frame = frame.parent
        return None

    def find_macro(self, name: str) -> tuple[str, int] | None:
        frame: _Frame | None = self
        while frame is not None:
            if name in frame.names:
                return None  # a variable of that name hides it
            if name in frame.macros:
                return frame.macros[name]
            frame = frame.parent
        return None


def _stored(body: Iterable[nodes.Node]) -> list[str]:
    """The names ``set`` assigns in this scope: in its statements and their ``if`` branches, not deeper scopes."""
    found: list[str] = []

    def targets(node: nodes.Node) -> None:
        if isinstance(node, nodes.Name):
            found.append(node.name)
        elif isinstance(node, nodes.Tuple):
            for item in node.items:
                targets(item)

    def walk(statements: Iterable[nodes.Node]) -> None:
        for node in statements:
            if isinstance(node, (nodes.Assign, nodes.AssignBlock)):
                targets(node.target)
            elif isinstance(node, nodes.If):
                walk(node.body)
                for branch in node.elif_:
                    walk(branch.body)
                walk(node.else_)

    walk(body)
    return list(dict.fromkeys(found))


class Translator:
    """Translates the values of one mapping; functions it needs are added to ``functions``.

    ``context`` maps each name the value may use (the record, settings, defined values, loop
    entries …) to the Python expression that reads it where the translated code runs.
    """

    def __init__(self, env: Environment, names: Names, functions: list[str]) -> None:
        self.env = env
        self.names = names
        self.functions = functions
        self.str_methods = callable_str_methods()

    # -- units -------------------------------------------------------------------------------

    def expression(self, node: nodes.Node, context: Mapping[str, str]) -> Code:
        """An expression (``when``, ``for_each``, ``define``) as Python."""
        return self._expr(node, _Frame(None), context)

    def template(self, ast: nodes.Template, context: Mapping[str, str]) -> str:
        """A template's rendered text as a Python expression of type ``str``."""
        body = ast.body
        if all(isinstance(n, nodes.Output) for n in body):
            pieces = [self._output_piece(p, _Frame(None), context) for n in body
                      for p in n.nodes]  # type: ignore[attr-defined]
            if not pieces:
                return "''"
            return pieces[0] if len(pieces) == 1 else "(" + " + ".join(pieces) + ")"
        return self._template_function(body, context)

    # -- templates with statements -------------------------------------------------------------

    def _template_function(self, body: list[nodes.Node], context: Mapping[str, str]) -> str:
        """A function for a template with statements; its parameters are the context names it reads.

        Inside it every context name is a parameter, so the body is translated without the
        caller's names (``context`` is empty there). Attributes the caller has read already
        (``a.Artikelnummer`` as a key of ``context``, see ``_e_Getattr``) are parameters too,
        unless the template binds the name itself somewhere.
        """
        walked = list(_walk(body))
        used = sorted({n.name for n in walked if isinstance(n, nodes.Name) and n.ctx == "load"} & set(context))
        bound = {n.name for n in walked if isinstance(n, nodes.Name) and n.ctx in ("store", "param")}
        bound |= {n.name for n in walked if isinstance(n, nodes.Macro)}
        paths = {dotted(n) for n in walked if isinstance(n, nodes.Getattr)}
        read = sorted({p for p in paths if p is not None and p.split(".", 1)[0] not in bound} & set(context))
        params = {name: self.names.fresh("p_" + name) for name in used}
        attributes = {key: self.names.fresh("p_" + key) for key in read}
        root = _Frame(None, names=dict(params), attributes=attributes)
        function = self.names.fresh("template")
        lines: list[str] = []
        out = "_o"
        self._init_stored(root, body, lines, "    ")
        self._statements(body, root, lines, "    ", out, {})
        source = [f"def {function}({', '.join([*params.values(), *attributes.values()])}):", f"    {out} = []",
                  *lines, f"    return ''.join({out})"]
        self.functions.append("\n".join(source))
        return f"{function}({', '.join([*(context[name] for name in used), *(context[key] for key in read)])})"

    def _init_stored(self, frame: _Frame, body: list[nodes.Node], lines: list[str], pad: str) -> None:
        """Give each name ``set`` in this scope its identifier.

        As in Jinja, a name set inside a loop iteration (or a macro) starts, at each entry, as
        the value the name has outside, or undefined when it has none; a name the scope
        already has (a parameter, a loop entry) is simply overwritten.
        """
        for name in _stored(body):
            if name in frame.names:
                continue
            ident = self.names.fresh(name)
            outer = frame.parent.find(name) if frame.parent is not None else None
            lines.append(f"{pad}{ident} = {outer if outer is not None else f'_undefined({name!r})'}")
            frame.names[name] = ident

    def _statements(self, body: Iterable[nodes.Node], frame: _Frame, lines: list[str], pad: str, out: str,
                    context: Mapping[str, str]) -> None:
        before = len(lines)
        for node in body:
            self._statement(node, frame, lines, pad, out, context)
        if len(lines) == before:
            lines.append(f"{pad}pass")

    def _statement(self, node: nodes.Node, frame: _Frame, lines: list[str], pad: str, out: str,
                   context: Mapping[str, str]) -> None:
        if isinstance(node, nodes.Output):
            for part in node.nodes:
                lines.append(f"{pad}{out}.append({self._output_piece(part, frame, context)})")
        elif isinstance(node, nodes.If):
            lines.append(f"{pad}if {self._value(node.test, frame, context)}:")
            self._statements(node.body, frame, lines, pad + "    ", out, context)
            for branch in node.elif_:
                lines.append(f"{pad}elif {self._value(branch.test, frame, context)}:")
                self._statements(branch.body, frame, lines, pad + "    ", out, context)
            if node.else_:
                lines.append(f"{pad}else:")
                self._statements(node.else_, frame, lines, pad + "    ", out, context)
        elif isinstance(node, nodes.For):
            self._for(node, frame, lines, pad, out, context)
        elif isinstance(node, nodes.Assign):
            value = self._value(node.node, frame, context)
            self._assign(node.target, value, frame, lines, pad)
        elif isinstance(node, nodes.AssignBlock):
            if node.filter is not None or _stored(node.body) or not isinstance(node.target, nodes.Name):
                raise Unsupported("a set block with a filter or its own assignments")
            block = self.names.fresh("block")
            lines.append(f"{pad}{block} = []")
            self._statements(node.body, _Frame(frame, in_macro=frame.in_macro), lines, pad, block, context)
            self._assign(node.target, f"''.join({block})", frame, lines, pad)
        elif isinstance(node, nodes.Macro):
            self._macro(node, frame, lines, pad, context)
        else:
            raise Unsupported(f"the statement {type(node).__name__}")

    def _assign(self, target: nodes.Node, value: str, frame: _Frame, lines: list[str], pad: str) -> None:
        if isinstance(target, nodes.NSRef):
            ref = frame.find(target.name)
            if ref is None:
                raise Unsupported("a namespace that is not a variable of the template")
            lines.append(f"{pad}_ns_set({ref}, {target.attr!r}, {value})")
        elif isinstance(target, nodes.Name):
            lines.append(f"{pad}{self._target(target, frame)} = {value}")
        elif isinstance(target, nodes.Tuple) and all(isinstance(i, nodes.Name) for i in target.items):
            names = ", ".join(self._target(i, frame) for i in target.items)  # type: ignore[arg-type]
            lines.append(f"{pad}({names},) = {value}")
        else:
            raise Unsupported("an assignment to something other than names")

    @staticmethod
    def _target(target: nodes.Name, frame: _Frame) -> str:
        ident = frame.names.get(target.name)
        if ident is None:  # pragma: no cover - every name set in a scope is given an identifier first
            raise Unsupported("an assignment the scope does not know")
        return ident

    def _for(self, node: nodes.For, frame: _Frame, lines: list[str], pad: str, out: str,
             context: Mapping[str, str]) -> None:
        if node.recursive:
            raise Unsupported("a recursive loop")
        uses_loop = any(isinstance(n, nodes.Name) and n.name == "loop" for n in _walk(node.body))
        if node.test is not None and any(isinstance(n, nodes.Name) and n.name == "loop" for n in node.test.find_all(
                nodes.Name)):
            raise Unsupported("'loop' in a loop's condition")
        if node.test is not None and {n.name for n in node.test.find_all(nodes.Name)} & set(_stored(node.body)):
            raise Unsupported("a loop condition reading a name the loop body sets")
        body_frame = _Frame(frame, in_macro=frame.in_macro)
        targets = [node.target] if isinstance(node.target, nodes.Name) else (
            list(node.target.items) if isinstance(node.target, nodes.Tuple) else [])
        if not targets or not all(isinstance(t, nodes.Name) for t in targets):
            raise Unsupported("a loop over something other than names")
        for target in targets:
            body_frame.names[target.name] = self.names.fresh(target.name)  # type: ignore[attr-defined]
        unpacked = ", ".join(body_frame.names[t.name] for t in targets)  # type: ignore[attr-defined]
        if isinstance(node.target, nodes.Tuple):
            unpacked = f"({unpacked},)"
        source = self._iterable(node.iter, frame, context)
        any_flag = self.names.fresh("any") if node.else_ else None
        if any_flag:
            lines.append(f"{pad}{any_flag} = False")
        inner = pad + "    "
        if uses_loop:
            items, index, length = self.names.fresh("items"), self.names.fresh("i"), self.names.fresh("n")
            if node.test is not None:
                test_frame = _Frame(frame, names=dict(body_frame.names), in_macro=frame.in_macro)
                test = self._value(node.test, test_frame, context)
                lines.append(f"{pad}{items} = [{unpacked} for {unpacked} in {source} if {test}]")
            else:
                lines.append(f"{pad}{items} = list({source})")
            lines.append(f"{pad}{length} = len({items})")
            lines.append(f"{pad}for {index}, {unpacked} in enumerate({items}):")
            body_frame.loop = _Loop(index, length)
        else:
            lines.append(f"{pad}for {unpacked} in {source}:")
            if node.test is not None:
                test_frame = _Frame(frame, names=dict(body_frame.names), in_macro=frame.in_macro)
                lines.append(f"{inner}if not ({self._value(node.test, test_frame, context)}):")
                lines.append(f"{inner}    continue")
        if any_flag:
            lines.append(f"{inner}{any_flag} = True")
        self._init_stored(body_frame, node.body, lines, inner)
        self._statements(node.body, body_frame, lines, inner, out, context)
        if any_flag:
            lines.append(f"{pad}if not {any_flag}:")
            else_frame = _Frame(frame, in_macro=frame.in_macro)
            self._init_stored(else_frame, node.else_, lines, inner)
            self._statements(node.else_, else_frame, lines, inner, out, context)

    def _macro(self, node: nodes.Macro, frame: _Frame, lines: list[str], pad: str,
               context: Mapping[str, str]) -> None:
        if frame.parent is not None or frame.in_macro:
            raise Unsupported("a macro that is not at the top of the template")
        if node.defaults or any(n.name in ("caller", "varargs", "kwargs") for n in node.find_all(nodes.Name)):
            raise Unsupported("a macro with defaults, caller, varargs or kwargs")
        if node.name in frame.names or node.name in context or node.name in frame.macros:
            raise Unsupported("a macro named like another name of the template")
        function = self.names.fresh("macro_" + node.name)
        frame.macros[node.name] = (function, len(node.args))
        macro_frame = _Frame(frame, in_macro=True)
        params = []
        for arg in node.args:
            ident = self.names.fresh(arg.name)
            macro_frame.names[arg.name] = ident
            params.append(ident)
        body: list[str] = []
        inner = pad + "    "
        macro_out = self.names.fresh("out")
        self._init_stored(macro_frame, node.body, body, inner)
        self._statements(node.body, macro_frame, body, inner, macro_out, context)
        lines.append(f"{pad}def {function}({', '.join(params)}):")
        lines.append(f"{inner}{macro_out} = []")
        lines.extend(body)
        lines.append(f"{inner}return ''.join({macro_out})")

    # -- expressions ---------------------------------------------------------------------------

    def _output_piece(self, node: nodes.Node, frame: _Frame, context: Mapping[str, str]) -> str:
        if isinstance(node, nodes.TemplateData):
            return repr(node.data)
        if isinstance(node, nodes.CondExpr) and node.expr2 is None:  # {{ x if y }}: Jinja's implicit else prints ''
            then = self._expr(node.expr1, frame, context)
            if not then.lazy:
                return f"(str({then.text}) if {self._value(node.test, frame, context)} else '')"
        code = self._expr(node, frame, context)
        if code.lazy:
            raise Unsupported("a generator written out")
        return f"str({code.text})"

    def _value(self, node: nodes.Node, frame: _Frame, context: Mapping[str, str]) -> str:
        """An expression whose value is used as Jinja's would be: a lazy list becomes a one-time iterator."""
        code = self._expr(node, frame, context)
        return f"iter({code.text})" if code.lazy else code.text

    def _iterable(self, node: nodes.Node, frame: _Frame, context: Mapping[str, str]) -> str:
        """An expression that is only iterated over once: a list serves as Jinja's generator would."""
        return self._expr(node, frame, context).text

    def _expr(self, node: nodes.Node, frame: _Frame, context: Mapping[str, str]) -> Code:
        method = getattr(self, f"_e_{type(node).__name__}", None)
        if method is None:
            raise Unsupported(f"the expression {type(node).__name__}")
        result: Code = method(node, frame, context)
        return result

    def _e_Const(self, node: nodes.Const, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(_literal(node.value))

    def _e_TemplateData(self, node: nodes.TemplateData, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(repr(node.data))

    def _e_Name(self, node: nodes.Name, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.ctx != "load":
            raise Unsupported("a name that is not read")
        if node.name == "loop":
            raise Unsupported("'loop' other than its counters")
        ident = frame.find(node.name)
        if ident is not None:
            return Code(ident)
        if frame.find_macro(node.name) is not None:
            raise Unsupported("a macro used as a value")
        if node.name in context:
            return Code(context[node.name])
        raise Unsupported(f"the name {node.name!r}")

    def _e_Getattr(self, node: nodes.Getattr, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.attr.startswith("_"):
            raise Unsupported("an attribute starting with '_'")
        if isinstance(node.node, nodes.Name) and node.node.name == "loop" and frame.find("loop") is None:
            return self._loop_attribute(node.attr, frame)
        key = dotted(node)
        if key is not None:  # an attribute (of an attribute) of a context name the caller has read already
            root = frame
            while root.parent is not None:
                root = root.parent
            if key in root.attributes:
                return Code(root.attributes[key])
            if key in context and frame.find(key.split(".", 1)[0]) is None:
                return Code(context[key])
        return Code(f"_ga({self._value(node.node, frame, context)}, {node.attr!r})")

    def _loop_attribute(self, attr: str, frame: _Frame) -> Code:
        scope: _Frame | None = frame
        while scope is not None and scope.loop is None:
            scope = scope.parent
        if scope is None or scope.loop is None or attr not in LOOP_ATTRIBUTES:
            raise Unsupported(f"loop.{attr}")
        i, n = scope.loop.index, scope.loop.length
        return Code({"index": f"({i} + 1)", "index0": i, "first": f"({i} == 0)", "last": f"({i} == {n} - 1)",
                     "length": n, "revindex": f"({n} - {i})", "revindex0": f"({n} - {i} - 1)"}[attr])

    def _e_Getitem(self, node: nodes.Getitem, frame: _Frame, context: Mapping[str, str]) -> Code:
        obj = self._value(node.node, frame, context)
        if isinstance(node.arg, nodes.Slice):  # Jinja slices with Python's own []
            parts = [self._value(p, frame, context) if p is not None else ""
                     for p in (node.arg.start, node.arg.stop, node.arg.step)]
            return Code(f"({obj})[{parts[0]}:{parts[1]}:{parts[2]}]")
        return Code(f"_gi({obj}, {self._value(node.arg, frame, context)})")

    def _e_Filter(self, node: nodes.Filter, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.node is None or node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("a filter block or *args")
        name = node.name
        if name not in SUPPORTED_FILTERS or name not in self.env.filters:
            raise Unsupported(f"the filter {name!r}")
        lazy_in = self._expr(node.node, frame, context)
        iterating = name in ITERATING_FILTERS or name in CONTEXT_FILTERS
        value = lazy_in.text if (iterating or not lazy_in.lazy) else f"iter({lazy_in.text})"
        args = [self._value(a, frame, context) for a in node.args]
        kwargs = [f"{k.key}={self._value(k.value, frame, context)}" for k in node.kwargs]
        if name in CONTEXT_FILTERS:
            return self._context_filter(name, value, node, args, kwargs, frame, context)
        if name == "list" and not kwargs and not args:
            return Code(value if lazy_in.lazy else f"list({value})")
        if name in ("length", "count") and not kwargs and not args:
            return Code(f"len({value})")
        tables = getattr(self.env, "lookup_tables", {})
        if name == "lookup" and not kwargs and len(node.args) == 1 and isinstance(node.args[0], nodes.Const) \
                and type(node.args[0].value) is str and node.args[0].value in tables:
            return Code(f"_L[{node.args[0].value!r}]({value})")  # the table's own function, as the filter calls it
        func = self.env.filters[name]
        pass_arg = _PassArg.from_obj(func)
        if pass_arg is _PassArg.context:
            raise Unsupported(f"the filter {name!r} needs Jinja's context")
        lead = {_PassArg.eval_context: ["_EVAL"], _PassArg.environment: ["_ENV"]}.get(pass_arg, [])  # type: ignore[arg-type]
        return Code(f"_F[{name!r}]({', '.join([*lead, value, *args, *kwargs])})")

    def _context_filter(self, name: str, value: str, node: nodes.Filter, args: list[str], kwargs: list[str],
                        frame: _Frame, context: Mapping[str, str]) -> Code:
        """``select``, ``reject``, ``selectattr``, ``rejectattr``, ``map``: see :mod:`.whitelist`."""
        if name == "map":
            if not node.args and node.kwargs:
                given: dict[str, nodes.Node] = {str(k.key): k.value for k in node.kwargs}
                if "attribute" not in given or set(given) - {"attribute", "default"}:
                    raise Unsupported("map with other keywords")
                parts = self._parts(given["attribute"], frame, context)
                default = self._value(given["default"], frame, context) if "default" in given else "None"
                return Code(f"_map_attribute({value}, {parts}, {default})", lazy=True)
            if not node.args or not isinstance(node.args[0], nodes.Const) or kwargs:
                raise Unsupported("map with a computed filter or keywords")
            filter_name = node.args[0].value
            if not isinstance(filter_name, str) or filter_name not in SUPPORTED_FILTERS \
                    or filter_name in CONTEXT_FILTERS or filter_name not in self.env.filters:
                raise Unsupported(f"map({filter_name!r})")
            pass_arg = _PassArg.from_obj(cast(Any, self.env.filters[filter_name]))
            if pass_arg is _PassArg.context:
                raise Unsupported(f"map({filter_name!r})")
            more = "".join(a + ", " for a in args[1:])
            lead = {_PassArg.eval_context: "_EVAL", _PassArg.environment: "_ENV"}.get(pass_arg)  # type: ignore[arg-type]
            if lead is None:
                return Code(f"_map_filter({value}, _F[{filter_name!r}], ({more}))", lazy=True)
            return Code(f"_map_filter_with({value}, _F[{filter_name!r}], {lead}, ({more}))", lazy=True)
        if kwargs:
            raise Unsupported(f"{name} with keywords")
        by_attribute = name.endswith("attr")
        keep = "True" if name.startswith("select") else "False"
        if by_attribute:
            if not node.args:
                raise Unsupported(f"{name} without an attribute")
            parts = self._parts(node.args[0], frame, context)
            rest_nodes: list[nodes.Node] = list(node.args[1:])
            rest: list[str] = args[1:]
        else:
            parts, rest_nodes, rest = "None", list(node.args), args
        if not rest_nodes:
            return Code(f"_select_truth({value}, {parts}, {keep})", lazy=True)
        test = rest_nodes[0]
        if not isinstance(test, nodes.Const) or test.value not in SUPPORTED_TESTS or test.value not in self.env.tests:
            raise Unsupported(f"{name} with an unknown or computed test")
        if _PassArg.from_obj(cast(Any, self.env.tests[test.value])) is not None:
            raise Unsupported(f"the test {test.value!r} in {name}")
        extra = "".join(a + ", " for a in rest[1:])
        return Code(f"_select_test({value}, {parts}, {keep}, _T[{test.value!r}], ({extra}))", lazy=True)

    def _parts(self, attribute: nodes.Node, frame: _Frame, context: Mapping[str, str]) -> str:
        """The path to an item's attribute, as Python: a constant, or computed when the filter is called."""
        if isinstance(attribute, nodes.Const):
            return repr(_attribute_parts(attribute.value))
        return f"_attr_parts({self._value(attribute, frame, context)})"

    def _e_Test(self, node: nodes.Test, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("a test with *args")
        if node.name not in SUPPORTED_TESTS or node.name not in self.env.tests:
            raise Unsupported(f"the test {node.name!r}")
        pass_arg = _PassArg.from_obj(cast(Any, self.env.tests[node.name]))
        if pass_arg not in (None, _PassArg.environment):
            raise Unsupported(f"the test {node.name!r}")
        lead = ["_ENV"] if pass_arg is _PassArg.environment else []
        value = self._value(node.node, frame, context)
        args = [self._value(a, frame, context) for a in node.args]
        kwargs = [f"{k.key}={self._value(k.value, frame, context)}" for k in node.kwargs]
        return Code(f"_T[{node.name!r}]({', '.join([*lead, value, *args, *kwargs])})")

    def _e_CondExpr(self, node: nodes.CondExpr, frame: _Frame, context: Mapping[str, str]) -> Code:
        test = self._value(node.test, frame, context)
        then = self._value(node.expr1, frame, context)
        # Jinja's implicit else is its plain Undefined (printed as nothing), whatever the environment's kind,
        # with Jinja's words for where it came from
        words = (f"the inline if-expression on line {node.lineno} evaluated to false and no else section was "
                 "defined.")
        otherwise = f"_Undefined({words!r})" if node.expr2 is None else self._value(node.expr2, frame, context)
        return Code(f"({then} if {test} else {otherwise})")

    def _e_And(self, node: nodes.And, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(f"({self._value(node.left, frame, context)} and {self._value(node.right, frame, context)})")

    def _e_Or(self, node: nodes.Or, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(f"({self._value(node.left, frame, context)} or {self._value(node.right, frame, context)})")

    def _e_Not(self, node: nodes.Not, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(f"(not {self._value(node.node, frame, context)})")

    def _e_Neg(self, node: nodes.Neg, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(f"(-{self._value(node.node, frame, context)})")

    def _e_Pos(self, node: nodes.Pos, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code(f"(+{self._value(node.node, frame, context)})")

    def _binary(self, node: nodes.BinExpr, frame: _Frame, context: Mapping[str, str]) -> Code:
        op = _BINARY[type(node)]
        return Code(f"({self._value(node.left, frame, context)} {op} {self._value(node.right, frame, context)})")

    _e_Add = _e_Sub = _e_Mul = _e_Div = _e_FloorDiv = _e_Mod = _e_Pow = _binary

    def _e_Concat(self, node: nodes.Concat, frame: _Frame, context: Mapping[str, str]) -> Code:
        parts = []
        for part in node.nodes:
            code = self._expr(part, frame, context)
            if code.lazy:
                raise Unsupported("a generator joined into text")
            parts.append(f"str({code.text})")
        return Code("(" + " + ".join(parts) + ")")

    def _e_Compare(self, node: nodes.Compare, frame: _Frame, context: Mapping[str, str]) -> Code:
        text = self._value(node.expr, frame, context)
        for operand in node.ops:
            if operand.op not in _COMPARE:
                raise Unsupported(f"the comparison {operand.op}")
            text += f" {_COMPARE[operand.op]} {self._value(operand.expr, frame, context)}"
        return Code(f"({text})")

    def _e_List(self, node: nodes.List, frame: _Frame, context: Mapping[str, str]) -> Code:
        return Code("[" + ", ".join(self._value(i, frame, context) for i in node.items) + "]")

    def _e_Tuple(self, node: nodes.Tuple, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.ctx != "load":
            raise Unsupported("a tuple that is not read")
        items = [self._value(i, frame, context) for i in node.items]
        return Code("(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")

    def _e_Dict(self, node: nodes.Dict, frame: _Frame, context: Mapping[str, str]) -> Code:
        pairs = [f"{self._value(p.key, frame, context)}: {self._value(p.value, frame, context)}" for p in node.items]
        return Code("{" + ", ".join(pairs) + "}")

    def _e_Call(self, node: nodes.Call, frame: _Frame, context: Mapping[str, str]) -> Code:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("a call with *args")
        args = [self._value(a, frame, context) for a in node.args]
        kwargs = [f"{k.key}={self._value(k.value, frame, context)}" for k in node.kwargs]
        callee = node.node
        if isinstance(callee, nodes.Getattr):
            if callee.attr not in self.str_methods or kwargs:
                raise Unsupported(f"the method {callee.attr!r}")
            obj = self._value(callee.node, frame, context)
            return Code(f"_cm({obj}, {callee.attr!r}{''.join(', ' + a for a in args)})")
        if isinstance(callee, nodes.Name):
            macro = frame.find_macro(callee.name)
            if macro is not None:
                function, count = macro
                if kwargs or len(args) != count:
                    raise Unsupported("a macro called with other arguments than its parameters")
                return Code(f"{function}({', '.join(args)})")
            if frame.find(callee.name) is None and callee.name not in context:
                if callee.name == "namespace" and not args:
                    return Code(f"_G_namespace({', '.join(kwargs)})")
                if callee.name == "range" and not kwargs:
                    return Code(f"_G_range({', '.join(args)})")
        raise Unsupported("a call of something other than a text method, a macro, namespace() or range()")


def dotted(node: nodes.Node) -> str | None:
    """``a.b.c`` for attributes of attributes of a name, else ``None``."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if not parts or not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    return ".".join([node.name, *reversed(parts)])


def _attribute_parts(attribute: object) -> tuple[str | int, ...]:
    """The path ``make_attrgetter`` follows for ``attribute``: dotted parts, digits as numbers."""
    if isinstance(attribute, str):
        parts = tuple(int(x) if x.isdigit() else x for x in attribute.split("."))
        if any(isinstance(p, str) and p.startswith("_") for p in parts):
            raise Unsupported("an attribute starting with '_'")
        return parts
    if isinstance(attribute, int) and not isinstance(attribute, bool):
        return (attribute,)
    raise Unsupported("an attribute that is neither text nor a number")


def _walk(body: Iterable[nodes.Node]) -> Iterable[nodes.Node]:
    for node in body:
        yield node
        yield from node.find_all(nodes.Node)
