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
            if obj is MISSING:
                return MISSING
            return env.getattr(obj, attr)

        return getattr_
    if isinstance(node, nodes.Filter) and node.node is not None:
        func = env.filters.get(node.name)
        if func is None or getattr(func, "jinja_pass_arg", None) is not None:
            return None
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        if not all(isinstance(arg, nodes.Const) for arg in node.args):
            return None
        args = tuple(arg.value for arg in node.args)  # type: ignore[attr-defined]
        operand = _expression(env, node.node)
        if operand is None:
            return None
        value_of: Getter = operand
        return lambda ctx: func(value_of(ctx), *args)
    return None
