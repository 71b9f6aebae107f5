"""Turn pydantic's validation errors into problems an admin can act on.

pydantic reports ``('flows', 'orders', 'sorce')`` and "Extra inputs are not permitted";
the admin needs ``gateway.yaml:7:5: unknown field 'sorce' (did you mean 'source'?)``.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from .errors import ConfigError, Problem
from .i18n import N_, _, ngettext
from .kinds import KIND_CHOICE
from .yamlload import Loc, YamlDocument

M = TypeVar("M", bound=BaseModel)


def _model_at(model: type[BaseModel], loc: Loc, data: Any = None) -> type[BaseModel] | None:
    """The model class that describes the mapping at ``loc``, if one does.

    ``data`` is walked alongside, to choose among alternatives by their ``format``.
    """
    current: Any = model
    for part in loc:
        current = _choose(_unwrap(_by_discriminator(current, data)), data)
        data = data.get(part) if isinstance(data, dict) else (
            data[part] if isinstance(data, list) and isinstance(part, int) and part < len(data) else None)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                aliases = {f.alias: f for f in current.model_fields.values() if f.alias}
                info = aliases.get(str(part))
            if info is None:
                return None
            current = info.annotation
            choosers = [m for m in info.metadata if isinstance(m, Discriminator)]
            if choosers:  # pydantic keeps a field's discriminator beside its annotation
                current = typing.Annotated[current, choosers[0]]
        else:
            origin = typing.get_origin(current)
            args = typing.get_args(current)
            if origin in (list, tuple) and args:
                current = args[0]
            elif origin is dict and len(args) == 2:
                current = args[1]
            else:
                return None
    current = _choose(_unwrap(_by_discriminator(current, data)), data)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _by_discriminator(annotation: Any, data: Any) -> Any:
    """Of a union chosen by a function (the kinds of sources and destinations), the member ``data`` is."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return annotation
    inner, *meta = typing.get_args(annotation)
    chooser = next((m.discriminator for m in meta if isinstance(m, Discriminator) and callable(m.discriminator)),
                   None)
    if chooser is None:
        return annotation
    tag = chooser(data)
    for member in typing.get_args(inner):
        tags = [m.tag for m in typing.get_args(member)[1:] if isinstance(m, Tag)]
        if tag is not None and tag in tags:
            return typing.get_args(member)[0]
    return annotation


def _choose(annotation: Any, data: Any) -> Any:
    """Of several model alternatives, the one whose ``format`` is the data's."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType) or not isinstance(data, dict):
        return annotation
    for member in typing.get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and "format" in member.model_fields:
            allowed = typing.get_args(member.model_fields["format"].annotation)
            if data.get("format") in allowed:
                return member
    return annotation


def _unwrap(annotation: Any) -> Any:
    """Strip ``X | None`` and ``Annotated`` so the model inside can be found."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(others) == 1:
            return _unwrap(others[0])
    return annotation


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _suggestion(err: Any, root: type[BaseModel], loc: Loc, data: Any = None) -> str | None:
    """For an unknown field, the known one it is most likely a typo of."""
    if err["type"] != "extra_forbidden" or not loc:
        return None
    parent = _model_at(root, loc[:-1], data)
    if parent is None:
        return None
    close = difflib.get_close_matches(str(loc[-1]), _field_names(parent), n=1, cutoff=0.6)
    return close[0] if close else None


_LIMITS = {
    "greater_than_equal": N_("'{field}': input should be greater than or equal to {limit}"),
    "greater_than": N_("'{field}': input should be greater than {limit}"),
    "less_than_equal": N_("'{field}': input should be less than or equal to {limit}"),
    "less_than": N_("'{field}': input should be less than {limit}"),
}


def _choices(expected: str) -> str:
    """pydantic's "'a', 'b' or 'c'" with the last "or" in the admin's language."""
    items, sep, last = expected.rpartition(" or ")
    return _("{items} or {last}").format(items=items, last=last) if sep else expected


_WRONG_TYPE = {
    kind: words
    for kinds, words in (
        (("int_parsing", "int_type", "int_from_float"), N_("'{field}' must be a whole number, not {value}")),
        (("float_parsing", "decimal_parsing", "float_type"), N_("'{field}' must be a number, not {value}")),
        (("bool_parsing", "bool_type"), N_("'{field}' must be yes or no (true/false), not {value}")),
        (("dict_type", "model_type", "model_attributes_type"), N_("'{field}' must be a group of 'name: value' lines")),
        (("list_type",), N_("'{field}' must be a list ('- ' lines)")),
    )
    for kind in kinds
}
"""pydantic's error types for a value of the wrong type, each with the words for it (``{value}`` is the input)."""


def _describe(err: Any, root: type[BaseModel], loc: Loc, data: Any = None) -> str:
    """One pydantic error in words the admin can act on, by its error type."""
    kind = err["type"]
    field = loc[-1] if loc else ""
    value = repr(err.get("input"))
    if kind == "extra_forbidden":
        return _unknown_field(err, root, loc, data)
    if kind == "missing":
        return _("'{field}' is required here").format(field=field)
    if kind == "unknown_kind":
        return _unknown_kind(err)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return _wrong_tag(err)
    if kind in ("string_type",):
        if err.get("input") is None:
            return _("'{field}' has no value; write \"\" for empty text").format(field=field)
        return _("'{field}' must be text").format(field=field)
    if kind == "too_short":
        least = err.get("ctx", {}).get("min_length", 1)
        return ngettext("'{field}' needs at least {count} entry", "'{field}' needs at least {count} entries",
                        least).format(field=field, count=least)
    if kind in _WRONG_TYPE:
        return _(_WRONG_TYPE[kind]).format(field=field, value=value)
    if kind in _LIMITS:
        return _(_LIMITS[kind]).format(field=field, limit=str(err["msg"]).rsplit(" ", 1)[-1])
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return _("'{field}' must be one of {choices}, not {value}").format(
            field=field, choices=_choices(expected), value=value)
    if kind == "value_error":
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"'{field}': {msg}" if field else msg
    return f"'{field}': {err['msg']}" if field else str(err["msg"])


def _unknown_field(err: Any, root: type[BaseModel], loc: Loc, data: Any) -> str:
    """An unknown field, with the known one it is most likely a typo of, or else all that are allowed there."""
    field = loc[-1] if loc else ""
    parent = _model_at(root, loc[:-1], data)
    if parent is None:
        return _("unknown field '{field}'").format(field=field)
    close = _suggestion(err, root, loc, data)
    if close:
        return _("unknown field '{field}' (did you mean '{name}'?)").format(field=field, name=close)
    return _("unknown field '{field}' (allowed here: {names})").format(
        field=field, names=", ".join(_field_names(parent)))


def _unknown_kind(err: Any) -> str:
    """A ``kind`` no source or destination has: the kinds there are, for the role it was meant to play."""
    ctx = err.get("ctx", {})
    if ctx.get("role") in KIND_CHOICE:
        return _(KIND_CHOICE[ctx["role"]]).format(names=ctx.get("names", ""))
    return str(err["msg"])


def _wrong_tag(err: Any) -> str:
    """The field that chooses among alternatives (``format``) is missing or names none of them."""
    ctx = err.get("ctx", {})
    tag = ctx.get("discriminator", "'format'").strip("'")
    allowed = ctx.get("expected_tags", "")
    if err["type"] == "union_tag_not_found":
        return (_("'{tag}' is required here (one of: {allowed})").format(tag=tag, allowed=allowed) if allowed
                else _("'{tag}' is required here").format(tag=tag))
    return _("'{tag}' must be one of {allowed}, not {value}").format(
        tag=tag, allowed=allowed, value=repr(ctx.get("tag")))


def validate(model: type[M], doc: YamlDocument, base: Loc = ()) -> M:
    """Validate ``doc.data`` (or the part at ``base``) against ``model``; raise with every problem."""
    data: Any = doc.data
    for part in base:
        data = data[part]
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = problems_from(exc, model, doc, base)
        raise ConfigError(problems) from None


_SCALAR_TAGS = {"str", "int", "float", "bool", "none", "decimal"}


def _real_loc(err_loc: tuple[int | str, ...], data: Any) -> Loc | None:
    """The error's place in the data, without pydantic's union-member tags.

    A column may be text or ``{value: …}``; pydantic reports a failure for *each*
    alternative. Only the alternative the admin evidently meant (a mapping was written,
    or text was) is worth reporting; ``None`` drops the other.
    """
    loc: list[str | int] = []
    current = data
    for part in err_loc:
        if isinstance(current, dict) and part not in current and current.get("format") == part:
            continue  # the tag of a union chosen by 'format' (csv, template, …)
        if isinstance(part, str) and not (isinstance(current, dict) and part in current):
            if part.startswith("tag:"):
                continue  # the alternative chosen by the data's own keys (a folder, sftp or smtp destination)
            if part in _SCALAR_TAGS or "[" in part or part.startswith(("function-", "constrained-")):
                if isinstance(current, dict):
                    return None
                continue
            if part[:1].isupper():  # a model alternative, e.g. 'Column'
                if not isinstance(current, dict):
                    return None
                continue
        loc.append(part)
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None
    return tuple(loc)


def _entry_name(doc: YamlDocument, loc: Loc) -> str:
    """``outputs`` entry 0 → "the entry 'auftrag' of 'outputs'" (or its number, counted from 1)."""
    data: Any = doc.data
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            data = None
    index = loc[-1]
    parent = loc[-2] if len(loc) > 1 else _("the list")
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return _("the entry '{name}' of '{parent}'").format(name=data["name"], parent=parent)
    return _("entry {number} of '{parent}'").format(number=int(index) + 1, parent=parent)


def problems_from(exc: ValidationError, model: type[BaseModel], doc: YamlDocument, base: Loc = ()) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Loc, str]] = set()
    data: Any = doc.data
    for part in base:
        data = data[part]
    for err in exc.errors():
        loc = _real_loc(err["loc"], data)
        if loc is None:
            continue
        message = _describe(err, model, loc, data)
        full = (*base, *loc)
        if err["type"] == "union_tag_not_found":
            full = (*full, "")  # the problem is inside the entry, which is named below
        elif err["type"] == "union_tag_invalid":
            full = (*full, "format")
        if err["type"] in ("missing", "union_tag_not_found"):
            full = full[:-1]
            if full and isinstance(full[-1], int):
                message = _("{message} (in {entry})").format(message=message, entry=_entry_name(doc, full))
            elif full:
                message = _("{message} (in '{name}')").format(message=message, name=full[-1])
        if err["type"] == "extra_forbidden" and _suggestion(err, model, loc, data) is None:
            message += _moved_left(doc, full)
        if (full, message) in seen:
            continue
        seen.add((full, message))
        problems.append(doc.problem(full, message))
    return problems


def _moved_left(doc: YamlDocument, loc: Loc) -> str:
    """An unknown key right below a block of deeper lines is most likely one of that block's entries,
    moved too far left: say so, with the block's name and line."""
    line, column = doc.where(loc)
    lines = doc.lines
    if line - 2 < 0 or line - 1 >= len(lines):
        return ""
    indent = column - 1
    deeper = False
    for i in range(line - 2, -1, -1):
        text = lines[i]
        if not text.strip() or text.strip().startswith("#"):
            continue
        spaces = len(text) - len(text.lstrip(" "))
        if spaces > indent:
            deeper = True
            continue
        if spaces == indent and deeper and text.rstrip().endswith(":"):
            block = text.strip().rstrip(":").lstrip("- ")
            if not _fits(_value_at(doc, (*loc[:-1], block)), _value_at(doc, loc)):
                return ""
            return _("; it looks like an entry of '{block}' (line {line}) that is indented too little: indent it "
                     "as far as the lines under '{block}'").format(block=block, line=i + 1)
        return ""
    return ""


def _value_at(doc: YamlDocument, loc: Loc) -> Any:
    data: Any = doc.data
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _fits(block: Any, value: Any) -> bool:
    """Whether ``value`` looks like the entries of ``block`` (a group of groups takes no plain value)."""
    if not isinstance(block, dict) or not block:
        return False
    groups = [isinstance(v, dict) for v in block.values()]
    if all(groups):
        return isinstance(value, dict)
    return True
