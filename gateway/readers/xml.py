"""Streaming XML records with a hardened parser.

Partner XML is foreign input: no DTD is loaded, no entity is resolved, nothing is
fetched from the network, and a document that declares a DTD at all is refused, since
no order feed needs one. Elements are cleared as soon as their record has been taken,
and everything else the parser finishes is cut from the tree after every chunk, so memory
stays flat however many orders a file holds, and whatever else it holds around them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from ..errors import ReadError
from ..i18n import N_, _
from ..mapping.values import MISSING, Record

if TYPE_CHECKING:
    from ..mapping.model import XmlInput
    from .registry import ReadRoom

_LOCAL_NAMES: dict[str, str] = {}


def _line(el: etree._Element) -> int | None:
    line: Any = el.sourceline  # lxml-stubs type it oddly; it is an int or None
    return line if isinstance(line, int) else None


def _local(tag: Any) -> str:
    """``{namespace}name`` → ``name``; namespaces are ignored when matching and naming fields."""
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        if len(_LOCAL_NAMES) > 10_000:  # a hostile file with endless distinct names must not grow it
            _LOCAL_NAMES.clear()
        name = _LOCAL_NAMES[tag] = tag.rpartition("}")[2]
    return name


def _path_of(el: etree._Element) -> list[str]:
    names = []
    node: etree._Element | None = el
    while node is not None:
        names.append(_local(node.tag))
        node = node.getparent()
    names.reverse()
    return names


def element_to_record(el: etree._Element) -> Record:
    """Children become fields; a repeated child becomes a list; attributes are ``@name`` fields.

    This runs for every element of every record, so it is written for speed: the local
    names are cached, and an element without children or attributes is read as text at once.
    """
    fields: dict[str, Any] = {}
    if el.attrib:
        attributes = el.attrib
        if len(attributes) > MAX_ATTRIBUTES:
            raise ReadError(_("an element <{name}> has {count} attributes; more than {limit} are not accepted").format(
                name=_local(el.tag), count=len(attributes), limit=MAX_ATTRIBUTES), line=_line(el))
        for attr_name, attr_value in attributes.items():
            fields["@" + _local(attr_name)] = str(attr_value)
    names = _LOCAL_NAMES
    for child in el:
        tag = child.tag
        name = names.get(tag) if type(tag) is str else None
        if name is None:
            name = _local(tag)
            if not name:
                continue  # comments and processing instructions
        value: Any
        if len(child) or child.attrib:
            value = element_to_record(child)
            # an element with children or attributes keeps its own text too: <city>Berlin<x/></city>
            value._fields.setdefault("text", (child.text or "").strip() or MISSING)
        else:
            # An empty element (<company/>) has no value, like a missing one: fields of it are
            # empty too, so <items/> loops zero times instead of failing.
            text = child.text
            value = (text.strip() or MISSING) if text else MISSING
        existing = fields.get(name)
        if existing is None:
            fields[name] = value
        elif type(existing) is list:
            existing.append(value)
        else:
            fields[name] = [existing, value]
    line: Any = el.sourceline  # lxml-stubs type it oddly; it is an int or None
    return Record(fields, line=line)


MAX_ATTRIBUTES = 1000
_CHUNK = 64 * 1024  # bytes fed to the parser at a time: the most a chunk adds to the tree before it is pruned

# libxml2's messages, in words an admin can act on; some of them advise an option that
# would switch a protection off, which must not reach anybody's screen.
_PARSER_WORDS = (  # translated where they are shown
    ("amplification factor", N_("the XML defines entities (a DTD); partner files must not, so it was not read")),
    ("Excessive depth", N_("the XML is nested too deeply (a depth of more than 256 levels); it was not read")),
    ("huge text", N_("a text in the XML is too long (over 10 MB); it was not read")),
    ("Text node too long", N_("a text in the XML is too long (over 10 MB); it was not read")),
    ("Invalid bytes in character encoding",
     N_("the bytes do not match the encoding the XML declares in its first line ({declared}); "
        "save the file in that encoding or correct the declaration")),
    ("not defined", N_("the XML uses an entity (&name;) that is not defined; only &amp; &lt; &gt; &quot; &apos; "
                       "and character references may be used")),
)


def _declared_encoding(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(200)
    found = re.search(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""", head)
    return f'encoding="{found.group(1).decode()}"' if found else _("no encoding, which means UTF-8")


def _in_words(message: str, declared: str = 'encoding="…"') -> str:
    undefined = re.search(r"Entity '([^']+)' not defined", message)
    if undefined:
        return _("the XML uses the entity &{name}; that is not defined; only &amp; &lt; &gt; &quot; &apos; and "
                 "character references may be used").format(name=undefined.group(1))
    for needle, words in _PARSER_WORDS:
        if needle in message:
            return _(words).format(declared=declared) if "{declared}" in words else _(words)
    message = message.replace("XML_PARSE_HUGE", "").strip().rstrip(",;:")
    return _("the XML is broken: {problem}").format(problem=message or _("it ends too early"))


def _root_tag(path: Path) -> str | None:
    """The root element's tag, from the start of the file; ``None`` if the file breaks before it.

    The reader asks the parser to report the root, so that it holds the tree from the first
    chunk on, before any record has come. A broken start is reported by the reading itself.
    """
    try:
        for _event, el in etree.iterparse(str(path), events=("start",), resolve_entities=False, no_network=True,
                                          load_dtd=False, huge_tree=False):
            return str(el.tag)
    except (etree.XMLSyntaxError, OSError, UnicodeDecodeError):
        pass
    return None


def _prune(root: etree._Element, record: etree._Element | None) -> None:
    """Cut what the parser finished outside the records from the tree, keeping the path it is on.

    Only the last child of an element can still be open, so each element on the way down
    from the root keeps that one; the way stops at the record being read, whose elements
    are all kept until it is finished. The tree then holds one path and one record, however
    many elements stand elsewhere in the document (10 million ``<x/>`` before the orders).
    """
    node: etree._Element | None = root
    while node is not None and node is not record:
        count = len(node)
        if count > 1:
            del node[:-1]
        node = node[-1] if count else None


def _refuse_dtd(el: etree._Element, shown_as: str) -> None:
    info = el.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None:
        raise ReadError(
            _("the XML declares a DTD (<!DOCTYPE …>); partner files must not, so it was not read"),
            file=shown_as, line=1,
        )


def _refuse_empty(path: Path, shown_as: str) -> None:
    """An empty file is a transfer that went wrong, not a document without records."""
    if path.stat().st_size == 0:
        raise ReadError(_("the file is empty (0 bytes)"), file=shown_as)


def _record_test(wanted: list[str], *, absolute: bool) -> Callable[[list[str]], bool]:
    """Whether an element's path of names is a record's: all of ``wanted`` from the root when the path is
    absolute, else its last steps."""

    def is_record(names: list[str]) -> bool:
        return names == wanted if absolute else names[-len(wanted):] == wanted

    return is_record


def _pull_parser(path: Path, record_name: str) -> etree.XMLPullParser:
    """A parser that reports only the start and end of elements named like a record, and of the root, and
    that neither resolves entities nor loads a DTD or anything from the network."""
    first = _root_tag(path)
    return etree.XMLPullParser(
        events=("start", "end"),
        tag=["{*}" + record_name, *([first] if first else [])],
        base_url=str(path),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _check_root(root: etree._Element, wanted: list[str], record_path: str, shown_as: str) -> None:
    """Refuse a document with a DTD, or whose root is not the first step of an absolute ``record_path``."""
    _refuse_dtd(root, shown_as)
    if record_path.startswith("/") and _local(root.tag) != wanted[0]:
        raise ReadError(_(
            "this is not the expected kind of document: its root element is <{name}>, records were expected "
            "at {path}").format(name=_local(root.tag), path=record_path),
            file=shown_as, line=_line(root),
        )


def _read_error(exc: etree.XMLSyntaxError | UnicodeDecodeError | OSError, path: Path, shown_as: str) -> ReadError:
    """Why the file could not be read, for the admin: broken XML, another encoding than declared, or the disk."""
    if isinstance(exc, etree.XMLSyntaxError):
        return _syntax_error(exc, path, shown_as)
    if isinstance(exc, UnicodeDecodeError):
        return ReadError(_("the file is not in the encoding it declares ({encoding})").format(encoding=exc.encoding),
                         file=shown_as)
    return ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as)


def _syntax_error(exc: etree.XMLSyntaxError, path: Path, shown_as: str) -> ReadError:
    """lxml's complaint in the admin's words, at the line and column of this file's first error."""
    line, column = exc.position if exc.position else (exc.lineno, 0)
    # lxml's log can hold entries of earlier documents: only this file's count
    own = [e for e in exc.error_log if e.filename == str(path)]  # type: ignore[attr-defined]
    message = (exc.msg or "").split(", line ")[0]
    if own and (not message or message == "no element found"):
        message, line, column = own[0].message, own[0].line, own[0].column
    words = _in_words(message, _declared_encoding(path)) if "Invalid bytes" in message else _in_words(message)
    return ReadError(words, file=shown_as, line=line or None, column=column or None)


def read(source: Path, shown_as: str, spec: XmlInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: xml`` (see ``registry.Reader``)."""
    return read_xml_records(source, spec.records, shown_as)


def read_xml_records(path: Path, record_path: str, shown_as: str) -> Iterator[Record]:
    """Yield one record per element at ``record_path`` (``/result/orders/order``)."""
    wanted = [p for p in record_path.strip("/").split("/") if p]
    is_record = _record_test(wanted, absolute=record_path.startswith("/"))
    _refuse_empty(path, shown_as)
    try:
        # Only elements named like a record, and the root, are reported; a record's position
        # is checked once, at its start, by walking up. Reporting every element would cost
        # a Python object per element; instead the parser is fed a chunk at a time and, after
        # each chunk, everything finished outside the records is cut from the tree (``_prune``).
        parser = _pull_parser(path, wanted[-1])
        root: etree._Element | None = None
        records: list[etree._Element] = []  # the records being read, outermost first
        with path.open("rb") as raw:
            while True:
                data = raw.read(_CHUNK)
                if data:
                    parser.feed(data)
                else:
                    parser.close()
                for event, found in parser.read_events():
                    el: Any = found  # an element: the parser reports no namespace events here
                    if root is None:
                        root = el.getroottree().getroot()
                        _refuse_dtd(root, shown_as)
                    if event == "start":
                        if _local(el.tag) == wanted[-1] and is_record(_path_of(el)):
                            records.append(el)
                    elif records and el is records[-1]:
                        done: Any = records.pop()
                        yield element_to_record(done)
                        done.clear(keep_tail=True)
                        parent = done.getparent()
                        if parent is not None:
                            while done.getprevious() is not None:
                                del parent[0]
                if root is not None:
                    _prune(root, records[0] if records else None)
                if not data:
                    break
        if root is not None:
            # Without any record the checks above never ran: a file of another kind, or with a
            # DTD, must not pass as "no orders today".
            _check_root(root, wanted, record_path, shown_as)
    except (etree.XMLSyntaxError, UnicodeDecodeError, OSError) as exc:
        raise _read_error(exc, path, shown_as) from None
