"""Column values computed without Jinja, where Jinja would only add cost.

Most columns of a mapping are a field (``{{ a.Artikelnummer }}``), a constant, or a field
through one of the gateway's filters (``{{ item.price | number }}``). For those, a Jinja
render (new context, sandbox checks, output joining) costs several times the work
itself. They are compiled here into plain Python functions over the same context, with
the same meaning: record fields are read directly (they are data, never attributes), any
other object goes through the sandbox's own ``getattr``, and only filters that take no
Jinja context are used. Everything else is left to Jinja; so is every error: a failing
fast column is rendered again by Jinja, which names the column and mapping line.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .values import MISSING, Record

Getter = Callable[[dict[str, Any]], Any]


def compile_fast(env: ImmutableSandboxedEnvironment, source: str) -> Callable[[dict[str, Any]], str] | None:
    """A function giving the column's text from a context, or ``None`` when Jinja is needed."""
    try:
        ast = env.parse(source)
    except Exception:
        return None
    if not ast.body:
        return lambda ctx: ""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: list[Callable[[dict[str, Any]], str]] = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(_constant(node.data))
            continue
        getter = _expression(env, node)
        if getter is None:
            return None
        parts.append(_as_text(getter))
    if len(parts) == 1:
        return parts[0]
    return lambda ctx: "".join(part(ctx) for part in parts)


def compile_fast_expression(env: ImmutableSandboxedEnvironment, source: str) -> Callable[..., Any] | None:
    """Like Jinja's ``compile_expression`` (called with the context as keywords), without Jinja."""
    try:
        ast = env.parse("{{ " + source + " }}")
    except Exception:
        return None
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output) or len(ast.body[0].nodes) != 1:
        return None
    getter = _expression(env, ast.body[0].nodes[0])
    if getter is None:
        return None
    found: Getter = getter
    return lambda **ctx: found(ctx)


def _constant(text: str) -> Callable[[dict[str, Any]], str]:
    return lambda ctx: text


def _as_text(getter: Getter) -> Callable[[dict[str, Any]], str]:
    return lambda ctx: str(getter(ctx))


def _expression(env: ImmutableSandboxedEnvironment, node: nodes.Node) -> Getter | None:
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda ctx: value
    if isinstance(node, nodes.Name) and node.ctx == "load":
        name = node.name
        return lambda ctx: ctx[name]
    if isinstance(node, nodes.Getattr) and not node.attr.startswith("_"):
        found = _expression(env, node.node)
        if found is None:
            return None
        inner: Getter = found
        attr = node.attr

        def getattr_(ctx: dict[str, Any]) -> Any:
            obj = inner(ctx)
            if type(obj) is Record:
                return obj._fields.get(attr, MISSING)
            if isinstance(obj, Record) and attr in obj._fields:  # a batch row's column
                return obj._fields[attr]
            if obj is MISSING:
                return MISSING
            return env.getattr(obj, attr)

        return getattr_
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _filter(env, node)
    if isinstance(node, nodes.CondExpr):
        return _condition(env, node)
    if isinstance(node, (nodes.And, nodes.Or)):
        left, right = _expression(env, node.left), _expression(env, node.right)
        if left is None or right is None:
            return None
        lhs, rhs = left, right
        if isinstance(node, nodes.And):
            return lambda ctx: lhs(ctx) and rhs(ctx)
        return lambda ctx: lhs(ctx) or rhs(ctx)
    if isinstance(node, nodes.Not):
        inner_not = _expression(env, node.node)
        if inner_not is None:
            return None
        negated = inner_not
        return lambda ctx: not negated(ctx)
    if isinstance(node, nodes.Neg):
        inner_neg = _expression(env, node.node)
        if inner_neg is None:
            return None
        minus = inner_neg
        return lambda ctx: -minus(ctx)
    if isinstance(node, (nodes.List, nodes.Tuple)):
        items = [_expression(env, item) for item in node.items]
        if any(item is None for item in items):
            return None
        getters = [i for i in items if i is not None]
        if isinstance(node, nodes.List):
            return lambda ctx: [g(ctx) for g in getters]
        return lambda ctx: tuple(g(ctx) for g in getters)
    if isinstance(node, nodes.BinExpr) and node.operator in _BINARY:
        left_b, right_b = _expression(env, node.left), _expression(env, node.right)
        if left_b is None or right_b is None:
            return None
        op, lb, rb = _BINARY[node.operator], left_b, right_b
        return lambda ctx: op(lb(ctx), rb(ctx))
    if isinstance(node, nodes.Concat):
        parts = [_expression(env, part) for part in node.nodes]
        if any(part is None for part in parts):
            return None
        joined = [p for p in parts if p is not None]
        return lambda ctx: "".join(str(p(ctx)) for p in joined)
    if isinstance(node, nodes.Compare) and all(o.op in _COMPARE for o in node.ops):
        return _compare(env, node)
    return None


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "gt": operator.gt, "lteq": operator.le,
    "gteq": operator.ge, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


def _filter(env: ImmutableSandboxedEnvironment, node: nodes.Filter) -> Getter | None:
    func = env.filters.get(node.name)
    if func is None or getattr(func, "jinja_pass_arg", None) is not None:
        return None
    if node.kwargs or node.dyn_args or node.dyn_kwargs or node.node is None:
        return None
    args = [_expression(env, arg) for arg in node.args]
    operand = _expression(env, node.node)
    if operand is None or any(a is None for a in args):
        return None
    value_of: Getter = operand
    if all(isinstance(arg, nodes.Const) for arg in node.args):
        consts = tuple(arg.value for arg in node.args)  # type: ignore[attr-defined]
        return lambda ctx: func(value_of(ctx), *consts)
    getters = [a for a in args if a is not None]
    return lambda ctx: func(value_of(ctx), *(g(ctx) for g in getters))


def _condition(env: ImmutableSandboxedEnvironment, node: nodes.CondExpr) -> Getter | None:
    test, then = _expression(env, node.test), _expression(env, node.expr1)
    if test is None or then is None:
        return None
    if node.expr2 is None:
        # Jinja gives an undefined value, which renders as nothing
        return lambda ctx: then(ctx) if test(ctx) else ""
    otherwise = _expression(env, node.expr2)
    if otherwise is None:
        return None
    other = otherwise
    return lambda ctx: then(ctx) if test(ctx) else other(ctx)


def _compare(env: ImmutableSandboxedEnvironment, node: nodes.Compare) -> Getter | None:
    first = _expression(env, node.expr)
    rest = [(_COMPARE[o.op], _expression(env, o.expr)) for o in node.ops]
    if first is None or any(g is None for _, g in rest):
        return None
    start: Getter = first
    steps = [(op, g) for op, g in rest if g is not None]

    def compare(ctx: dict[str, Any]) -> bool:
        left = start(ctx)
        for op, getter in steps:
            right = getter(ctx)
            if not op(left, right):
                return False
            left = right
        return True

    return compare
