"""What ``gateway check`` can tell from a mapping's SELECT without connecting: its columns, parameters, order.

The gateway never rewrites a query: it is sent to the database as written (SQL is the admin's
language for "which rows"). But it must know, before anything runs, which columns the query
gives, because

* the mapping uses columns by name (``a.Bezeichnung1``, a relation's keys, ``required``), and a
  column that the query does not select would silently be empty;
* PostgreSQL gives back unquoted names in lower case (``bezeichnung1``): the batch's header uses
  the spelling of the query instead, so the mapping reads the same names from every database.

So the select list is read here, with a small tokenizer that knows strings, quoted names
(``"x"``, ``[x]``, `` `x` ``), comments and brackets. Each selected item must have a name: a
column (``a.Artikelnummer``), or any expression with ``AS name``. ``*`` is refused: the gateway
could not check the mapping against it, and a column added in SOL would change the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..i18n import N_, _

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>N?'(?:[^']|'')*(?:'|\Z))
    | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|\[[^\]]*(?:\]|\Z)|`[^`]*(?:`|\Z))
    | (?P<param>(?<![:\w]):[A-Za-z_]\w*)
    | (?P<word>[A-Za-z_@#][\w@#$]*)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
    | (?P<punct>::|<=|>=|<>|!=|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)

#: Words that end an expression without being its name (``CASE … END``) or cannot be names.
_KEYWORDS = frozenset((
    "all", "and", "any", "as", "asc", "between", "by", "case", "cross", "desc", "distinct", "else", "end", "exists",
    "from", "full", "group", "having", "in", "inner", "is", "join", "left", "like", "limit", "not", "null", "of",
    "offset", "on", "or", "order", "outer", "over", "partition", "right", "select", "then", "top", "union", "when",
    "where", "with",
))


_NOT_A_SELECT = N_("the query must be a SELECT (it starts with '{first}'); the gateway only reads from the database "
                   "through a query")


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted, string, number, param, punct
    text: str
    start: int = 0  # where it stands in the query

    @property
    def name(self) -> str:
        """The identifier this token is, without its quotes."""
        if self.kind != "quoted":
            return self.text
        inner = self.text[1:-1]
        return inner.replace('""', '"') if self.text.startswith('"') else inner

    @property
    def keyword(self) -> str:
        return self.text.lower() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind == "quoted" or (self.kind == "word" and self.keyword not in _KEYWORDS)


def tokens(sql: str) -> list[Token]:
    """The query's tokens, without white space and comments."""
    found = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "punct"
        if kind not in ("space", "comment"):
            found.append(Token(kind, match.group(), match.start()))
    return found


@dataclass
class QueryShape:
    """What a query's text says: the names of its columns in order, whether it is ordered, what it reads."""

    columns: list[str] = field(default_factory=list)
    ordered: bool = False
    tables: list[str] = field(default_factory=list)  # names after FROM and JOIN (for the online check)
    problems: list[str] = field(default_factory=list)


def shape(sql: str) -> QueryShape:
    """Read the select list of the query's main SELECT; problems in words for ``gateway check``."""
    result = QueryShape()
    toks = tokens(sql)
    if not toks:
        result.problems.append(_("the query is empty"))
        return result
    if toks[0].keyword not in ("select", "with"):
        first = toks[0].text
        result.problems.append(_(_NOT_A_SELECT).format(first=first))
        return result
    depth = 0
    main_select: int | None = None
    top_level: list[int] = []  # positions of tokens at depth 0
    for i, tok in enumerate(toks):
        if tok.text == "(":
            depth += 1
            continue
        if tok.text == ")":
            depth -= 1
            continue
        if depth == 0:
            top_level.append(i)
            if tok.text == ";" and i != len(toks) - 1:
                result.problems.append(_("the query holds more than one statement (a ';' before its end); "
                                         "give one SELECT"))
                return result
            if tok.keyword == "select" and main_select is None:
                main_select = i
        if tok.keyword in ("from", "join") and i + 1 < len(toks):
            result.tables.append(_dotted_name(toks, i + 1))
    if depth != 0:
        result.problems.append(_("the query's brackets '(' and ')' do not match"))
        return result
    if main_select is None:
        result.problems.append(_("the query has no SELECT outside brackets"))
        return result
    after = [i for i in top_level if i > main_select]
    end = next((i for i in after if toks[i].keyword in ("from", "union", "order", ";")), len(toks))
    result.ordered = any(toks[i].keyword == "order" and i + 1 < len(toks) and toks[i + 1].keyword == "by"
                         for i in after if i >= end)
    items = _split_items(toks, _skip_modifiers(toks, main_select + 1, end), end)
    seen: dict[str, str] = {}
    for item in items:
        name, problem = _item_name(item, sql)
        if problem:
            result.problems.append(problem)
            continue
        assert name is not None  # noqa: S101 - a name or a problem
        if name.casefold() in seen:
            result.problems.append(_("the query selects two columns named '{name}'; rename one with AS").format(
                name=name))
            continue
        seen[name.casefold()] = name
        result.columns.append(name)
    return result


def _dotted_name(toks: list[Token], start: int) -> str:
    """``sol.dbo.KHKArtikel`` → ``KHKArtikel``: the last part of a (schema-)qualified name."""
    name = toks[start].name if toks[start].is_name else ""
    i = start + 1
    while i + 1 < len(toks) and toks[i].text == "." and toks[i + 1].is_name:
        name = toks[i + 1].name
        i += 2
    return name


def _skip_modifiers(toks: list[Token], start: int, end: int) -> int:
    """Past ``DISTINCT``, ``ALL`` and SQL Server's ``TOP n`` / ``TOP (n)``."""
    i = start
    while i < end:
        word = toks[i].keyword
        if word in ("distinct", "all"):
            i += 1
        elif word == "top":
            i += 1
            if i < end and toks[i].text == "(":
                while i < end and toks[i].text != ")":
                    i += 1
            i += 1
            if i < end and toks[i].keyword == "percent":
                i += 1
        else:
            break
    return i


def _split_items(toks: list[Token], start: int, end: int) -> list[list[Token]]:
    items: list[list[Token]] = [[]]
    depth = 0
    for tok in toks[start:end]:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == "," and depth == 0:
            items.append([])
        else:
            items[-1].append(tok)
    return items


def _item_name(item: list[Token], sql: str) -> tuple[str | None, str | None]:
    text = " ".join(sql[item[0].start:item[-1].start + len(item[-1].text)].split()) if item else ""
    if not item:
        return None, _("the query's select list has an empty item (two commas in a row?)")
    if item[-1].text == "*":
        return None, _("the query selects '*': list the columns by name, so that the mapping can be checked "
                       "against them and a column added in SOL does not change the batch")
    if len(item) >= 2 and item[-2].keyword == "as" and item[-1].is_name:
        return item[-1].name, None
    if all(t.is_name if i % 2 == 0 else t.text == "." for i, t in enumerate(item)) and len(item) % 2 == 1:
        return item[-1].name, None  # a column, maybe qualified: a.Artikelnummer
    if len(item) >= 2 and item[-1].is_name and item[-2].text not in (".", "+", "-", "*", "/", "=", "||"):
        return item[-1].name, None  # an expression followed by its name without AS
    return None, _("the query selects '{text}' without a name: add AS and a name, e.g. '{text} AS Wert'").format(
        text=text)
