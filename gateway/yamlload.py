"""YAML for people who are not programmers.

PyYAML follows YAML 1.1, where ``NO`` is false, ``0777`` is 511 and ``12:30`` is 750,
and a key written twice silently wins. An admin who types a payment code ``NO`` for
Norway must get ``"NO"``. So every scalar is read as text (the typed models convert
where a number or a yes/no is really meant), an empty value or ``~`` is "nothing",
and a repeated key is an error. Every key and value keeps its line and column so that
errors found later can point at them.

Anchors and aliases (``&name`` and ``*name``) are accepted, within a small budget: an alias
repeats what its anchor names, so nine lines of aliases that each repeat the line before
nine times stand for 387 million values ("billion laughs"), and an alias inside the value
it names (``x: &a [1, *a]``) never ends. Both are refused at the alias, in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Problem
from .i18n import _

Loc = tuple[str | int, ...]

MAX_ALIASES = 100  # aliases expanded in one file, counting those inside other aliases' values
MAX_ALIAS_VALUES = 10_000  # keys and values that aliases stand for in one file, all together


class _Alias(yaml.Node):
    """An alias (``*name``) where it is written: the node its anchor names, and the alias's own place.

    PyYAML puts the anchored node itself where an alias stands, so the alias's place is lost
    and a value that contains itself is a loop; keeping the alias as a node of its own lets
    ``_build`` count what aliases expand to and name the line of the one that goes too far.
    """

    id = "alias"

    def __init__(self, target: yaml.Node, anchor: str, start_mark: Any, end_mark: Any) -> None:
        super().__init__(target.tag, target, start_mark, end_mark)
        self.anchor = anchor


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event: yaml.AliasEvent = self.peek_event()  # type: ignore[no-untyped-call]
            target = super().compose_node(parent, index)
            if target is not None:
                return _Alias(target, str(event.anchor), event.start_mark, event.end_mark)
        return super().compose_node(parent, index)


class _TooMuch(Exception):
    """Aliases beyond the budget: building stops at once, before the values multiply."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class _Budget:
    aliases: int = 0
    values: int = 0
    inside: int = 0  # how many alias expansions are under way (values built then are counted)
    building: list[yaml.Node] = field(default_factory=list)  # the nodes being built, outermost first


@dataclass
class YamlDocument:
    """The data of one YAML file and where each part of it was written."""

    path: str
    data: Any
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list, repr=False)
    # Parts written in another file than ``path`` (a mapping ``based_on`` another): loc → that file.
    origins: dict[Loc, str] = field(default_factory=dict)

    def where(self, loc: Loc) -> tuple[int, int]:
        """Line and column of ``loc``, or of its nearest written parent."""
        while loc:
            if loc in self.marks:
                return self.marks[loc]
            loc = loc[:-1]
        return self.marks.get((), (1, 1))

    def file_of(self, loc: Loc) -> str:
        """The file ``loc`` (or its nearest written parent) was written in."""
        while loc:
            if loc in self.marks:
                return self.origins.get(loc, self.path)
            loc = loc[:-1]
        return self.path

    def problem(self, loc: Loc, message: str) -> Problem:
        line, col = self.where(loc)
        return Problem(self.file_of(loc), line, col, message)


def _build(node: yaml.Node, loc: Loc, doc: YamlDocument, problems: list[Problem], budget: _Budget) -> Any:
    if isinstance(node, _Alias):
        return _expand(node, loc, doc, problems, budget)
    if budget.inside:
        budget.values += 1
        if budget.values > MAX_ALIAS_VALUES:
            raise _TooMuch(_problem(doc, node, _(
                "the aliases (*name) of this file stand for more than {count} values; an alias repeats what its "
                "anchor (&name) names, and repeats of repeats grow without end (a \"billion laughs\"); write the "
                "values out instead").format(count=f"{MAX_ALIAS_VALUES:,}")))
    if not isinstance(node, yaml.ScalarNode):
        budget.building.append(node)
        try:
            return _build_node(node, loc, doc, problems, budget)
        finally:
            budget.building.pop()
    return _build_node(node, loc, doc, problems, budget)


def _expand(alias: _Alias, loc: Loc, doc: YamlDocument, problems: list[Problem], budget: _Budget) -> Any:
    """The value an alias stands for, built again where the alias is written, within the budget."""
    doc.marks.setdefault(loc, (alias.start_mark.line + 1, alias.start_mark.column + 1))
    target = alias.value
    if any(target is node for node in budget.building):
        problems.append(_problem(doc, alias, _(
            "the alias *{name} is used inside the value its anchor &{name} names, so that value would contain "
            "itself without end; write the value out instead").format(name=alias.anchor)))
        return None
    budget.aliases += 1
    if budget.aliases > MAX_ALIASES:
        raise _TooMuch(_problem(doc, alias, _(
            "aliases (*name) are used more than {count} times in this file, counting those inside the values other "
            "aliases repeat; write the values out instead").format(count=MAX_ALIASES)))
    budget.inside += 1
    try:
        return _build(target, loc, doc, problems, budget)
    finally:
        budget.inside -= 1


def _problem(doc: YamlDocument, node: yaml.Node, message: str) -> Problem:
    return Problem(doc.path, node.start_mark.line + 1, node.start_mark.column + 1, message)


def _build_node(node: yaml.Node, loc: Loc, doc: YamlDocument, problems: list[Problem], budget: _Budget) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        # A block scalar's text starts on the line after its '|' or '>': template errors
        # count lines from there, so the value is located there rather than at its key.
        text_line = node.start_mark.line + 1
        indent = 0
        if text_line < len(doc.lines):
            indent = len(doc.lines[text_line]) - len(doc.lines[text_line].lstrip(" "))
        doc.marks[loc] = (text_line + 1, indent + 1)
    else:
        doc.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                text = doc.lines[node.start_mark.line][node.start_mark.column:] if node.start_mark.line < len(
                    doc.lines) else ""
                words = _("a value starting with {{ must be written in quotes: \"{{ … }}\" (without them YAML "
                          "reads the { as the start of a group)") if text.startswith("{{") else _(
                          "a key must be a plain word, not a list or a mapping")
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1, words)
                )
                continue
            key = key_node.value
            if key == "<<":
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            _("'<<' merge keys are not supported; write the values out"))
                )
                continue
            if key in result:
                first = doc.marks[(*loc, key)]
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            _("'{key}' is written twice (first on line {line}); keep one").format(
                                key=key, line=first[0]))
                )
                continue
            doc.marks[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, (*loc, key), doc, problems, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), doc, problems, budget) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and not node.style and node.value in ("", "~", "null", "Null", "NULL"):
        return None  # a plain scalar (style None from PyYAML's composer, "" from LibYAML's)
    return node.value


_SLOW = object()
_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)  # LibYAML, where PyYAML was built with it


def _fast_compose(text: str) -> Any:
    """The nodes, composed by LibYAML (about fifty times faster), or ``_SLOW`` for PyYAML's own composer.

    LibYAML gives the same nodes, marks and values; PyYAML's composer is used whenever LibYAML
    finds a problem (so that the message is the one PyYAML words) and for a file that uses an
    alias (``*name``), whose expansion ``_build`` must count: LibYAML gives an alias as its
    anchor's node itself, so such a file is recognised by a node met twice.
    """
    if _C_LOADER is None:
        return _SLOW
    try:
        node = yaml.compose(text, Loader=_C_LOADER)
    except (yaml.YAMLError, RecursionError, ValueError):
        return _SLOW
    seen: set[int] = set()
    todo = [node] if node is not None else []
    while todo:
        current = todo.pop()
        if id(current) in seen:
            return _SLOW  # an alias
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                todo += (key, value)
        elif isinstance(current, yaml.SequenceNode):
            todo += current.value
    return node


def parse_yaml(text: str, path: str) -> YamlDocument:
    """Parse ``text``; raise ``ConfigError`` with every problem found."""
    doc = YamlDocument(path=path, data=None, lines=text.split("\n"))
    try:
        # compose() builds nodes only; no tags are resolved into Python objects, so
        # nothing in the file can construct arbitrary types.
        node = _fast_compose(text)
        if node is _SLOW:
            node = yaml.compose(text, Loader=_Loader)
    except RecursionError:
        raise ConfigError([Problem(path, 1, 1, _("the YAML is nested too deeply to be read (hundreds of levels "
                                                 "of lists or groups inside each other)"))]) from None
    except yaml.MarkedYAMLError as exc:
        from .yamlwords import describe

        raise ConfigError([describe(exc, doc.lines, path)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(path, 1, 1, _("YAML syntax: {error}").format(error=exc))]) from None
    if node is None:
        doc.data = {}
        return doc
    problems: list[Problem] = []
    try:
        doc.data = _build(node, (), doc, problems, _Budget())
    except _TooMuch as exc:
        raise ConfigError([exc.problem]) from None
    except RecursionError:
        raise ConfigError([Problem(path, 1, 1, _("the YAML is nested too deeply to be read (hundreds of levels "
                                                 "of lists or groups inside each other)"))]) from None
    if problems:
        raise ConfigError(problems)
    return doc


def load_yaml(path: Path, shown_as: str | None = None) -> YamlDocument:
    """Read and parse a YAML file; a missing or unreadable file is a config problem."""
    name = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(name, 1, 1, _("file not found"))]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(name, 1, 1, _("not UTF-8 text (byte {byte}); save the file as UTF-8").format(
            byte=exc.start))]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, 1, 1, _("cannot be read: {error}").format(error=exc.strerror))]) from None
    return parse_yaml(text, name)
