"""YAML for people who are not programmers.

PyYAML follows YAML 1.1, where ``NO`` is false, ``0777`` is 511 and ``12:30`` is 750,
and a key written twice silently wins. An admin who types a payment code ``NO`` for
Norway must get ``"NO"``. So every scalar is read as text (the typed models convert
where a number or a yes/no is really meant), an empty value or ``~`` is "nothing",
and a repeated key is an error. Every key and value keeps its line and column so that
errors found later can point at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, Problem

Loc = tuple[str | int, ...]


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


def _build(node: yaml.Node, loc: Loc, doc: YamlDocument, problems: list[Problem]) -> Any:
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
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            "a key must be a plain word, not a list or a mapping")
                )
                continue
            key = key_node.value
            if key == "<<":
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            "'<<' merge keys are not supported; write the values out")
                )
                continue
            if key in result:
                first = doc.marks[(*loc, key)]
                problems.append(
                    Problem(doc.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            f"'{key}' is written twice (first on line {first[0]}); keep one")
                )
                continue
            doc.marks[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, (*loc, key), doc, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), doc, problems) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in ("", "~", "null", "Null", "NULL"):
        return None
    return node.value


def parse_yaml(text: str, path: str) -> YamlDocument:
    """Parse ``text``; raise ``ConfigError`` with every problem found."""
    doc = YamlDocument(path=path, data=None, lines=text.split("\n"))
    try:
        # compose() builds nodes only; no tags are resolved into Python objects, so
        # nothing in the file can construct arbitrary types.
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or "the YAML cannot be read"
        raise ConfigError([Problem(path, line, col, f"YAML syntax: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(path, 1, 1, f"YAML syntax: {exc}")]) from None
    if node is None:
        doc.data = {}
        return doc
    problems: list[Problem] = []
    doc.data = _build(node, (), doc, problems)
    if problems:
        raise ConfigError(problems)
    return doc


def load_yaml(path: Path, shown_as: str | None = None) -> YamlDocument:
    """Read and parse a YAML file; a missing or unreadable file is a config problem."""
    name = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([Problem(name, 1, 1, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(name, 1, 1, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, 1, 1, f"cannot be read: {exc.strerror}")]) from None
    return parse_yaml(text, name)
