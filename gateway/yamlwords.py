"""YAML mistakes in words an admin can act on, at the line where the mistake is.

PyYAML says what its parser expected (``expected <block end>, but found '<block mapping
start>'``), sometimes a line after the mistake, in words only a YAML implementer reads. The
admin editing a mapping wants to know which line is wrong and what to do. The usual mistakes
are few, and each leaves a recognisable trace in the parser's complaint and in the lines around
it: a line indented further or less than its neighbours, a tab, a quote never closed, a line
without its ``:``, a list entry among ``name: value`` lines, a template written without quotes.
This module recognises them; anything else still gets the parser's own words, with what to
check.
"""

from __future__ import annotations

import re

import yaml

from .errors import Problem
from .i18n import _

_KEY = re.compile(r"^\s*(?:-\s+)?([^\s:#'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s|$)")


def describe(exc: yaml.MarkedYAMLError, lines: list[str], path: str) -> Problem:
    """The parser's complaint ``exc`` about ``lines`` as one problem in plain words."""
    tab = _first_tab(lines)
    if tab is not None:
        return Problem(path, tab + 1, 1, _(
            "line {line} is indented with a tab; YAML needs spaces: replace the tab with spaces, as many as the "
            "lines around it use").format(line=tab + 1))
    problem = exc.problem or ""
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    at = mark.line if mark else 0
    col = mark.column + 1 if mark else 1
    if "quoted scalar" in context and exc.context_mark is not None:
        opened = exc.context_mark
        quote = _char(lines, opened.line, opened.column) or '"'
        return Problem(path, opened.line + 1, opened.column + 1, _(
            "the quote {quote} opened on line {line} is never closed: end the value with {quote} on the same "
            "line (or remove the quote)").format(quote=quote, line=opened.line + 1))
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        line = exc.context_mark.line
        return Problem(path, line + 1, exc.context_mark.column + 1, _(
            "line {line} has no ':'; every line of a group is 'name: value' (or, in a list, starts with '- ')"
        ).format(line=line + 1))
    if "mapping values are not allowed" in problem:
        return _deeper_or_second_colon(lines, at, col, path)
    if "expected <block end>" in problem:
        return _block_end(lines, at, col, problem, path)
    if "while parsing a flow" in context or "expected ',' or '}'" in problem or "expected ',' or ']'" in problem:
        start = exc.context_mark.line if exc.context_mark else at
        return Problem(path, start + 1, 1, _(
            "line {line}: a value starting with {{ or [ is read as a group or list; if it is text (a template "
            "such as {{{{ order.order_no }}}}), put the whole value in quotes").format(line=start + 1))
    return Problem(path, at + 1, col, _(
        "the YAML cannot be read here ({problem}); check the indentation and the quotes of this line and of the "
        "line above").format(problem=problem or context or "unknown"))


def _first_tab(lines: list[str]) -> int | None:
    for i, line in enumerate(lines):
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in lead:
            return i
    return None


def _char(lines: list[str], line: int, column: int) -> str:
    return lines[line][column] if line < len(lines) and column < len(lines[line]) else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _previous(lines: list[str], at: int) -> int | None:
    for i in range(at - 1, -1, -1):
        if _content(lines[i]):
            return i
    return None


def _key(line: str) -> str | None:
    match = _KEY.match(line)
    return match.group(1).strip("'\"") if match else None


def _deeper_or_second_colon(lines: list[str], at: int, col: int, path: str) -> Problem:
    here = lines[at] if at < len(lines) else ""
    above = _previous(lines, at)
    if above is not None and _indent(here) > _indent(lines[above]):
        key = _key(lines[above])
        text = lines[above].split(":", 1)[1].strip() if ":" in lines[above] else ""
        if key and text and not text.startswith(("|", ">", "#")):
            return Problem(path, at + 1, _indent(here) + 1, _(
                "line {line} is indented further than line {above} above ('{key}:'); line the two up (one of them "
                "was probably moved), or, if line {line} belongs inside '{key}', remove the value after "
                "'{key}:'").format(line=at + 1, key=key, above=above + 1))
    return Problem(path, at + 1, col, _(
        "line {line} has a second ': ' in it; a value that contains ': ' must be written in quotes").format(
            line=at + 1))


def _block_end(lines: list[str], at: int, col: int, problem: str, path: str) -> Problem:
    """A line that does not fit the structure around it: at the wrong depth, or a list entry among names."""
    culprit = _misplaced(lines, at)
    here = lines[culprit] if culprit < len(lines) else ""
    if "'-'" in problem or here.lstrip().startswith("- "):
        return Problem(path, culprit + 1, _indent(here) + 1, _(
            "line {line} is a list entry ('- ') where the lines above are 'name: value' entries; indent it under "
            "the name it belongs to").format(line=culprit + 1))
    if "'?'" in problem:
        return Problem(path, culprit + 1, _indent(here) + 1, _(
            "line {line} is a 'name: value' entry among list entries ('- '); start it with '- ', or indent it "
            "under the list entry it belongs to").format(line=culprit + 1))
    if "'<scalar>'" in problem:
        return Problem(path, at + 1, col, _(
            "line {line}: more text follows a value that ends early (a value starting with a quote, {{ or [); "
            "put the whole value in quotes").format(line=at + 1))
    above = _previous(lines, culprit)
    if above is not None and _indent(here) > _indent(lines[above]):
        return _deeper_or_second_colon(lines, culprit, _indent(here) + 1, path)
    if above is not None:
        siblings = [i for i in range(culprit - 1, -1, -1) if _content(lines[i]) and _key(lines[i])]
        match = next((i for i in siblings if _indent(lines[i]) == _indent(here)), None)
        nearest = next((i for i in siblings if _indent(lines[i]) < _indent(here)), None)
        if match is None and nearest is not None:
            inner = next((i for i in siblings if _indent(lines[i]) > _indent(here)), None)
            target = inner if inner is not None else nearest
            return Problem(path, culprit + 1, _indent(here) + 1, _(
                "line {line} is indented by {spaces} spaces, which matches no line above: line it up with "
                "'{key}:' (line {other}), which it probably belongs beside").format(
                    line=culprit + 1, spaces=_indent(here), key=_key(lines[target]), other=target + 1))
    return Problem(path, culprit + 1, _indent(here) + 1, _(
        "line {line} does not fit the lines above: check its indentation against the entries it belongs "
        "beside").format(line=culprit + 1))


def _misplaced(lines: list[str], at: int) -> int:
    """The line the parser tripped over, or the one just before it when the parser noticed late."""
    if at < len(lines) and _content(lines[at]):
        return at
    above = _previous(lines, at)
    return above if above is not None else at
