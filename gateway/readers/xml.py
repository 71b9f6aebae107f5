"""Streaming XML records with a hardened parser.

Partner XML is foreign input: no DTD is loaded, no entity is resolved, nothing is
fetched from the network, and a document that declares a DTD at all is refused, since
no order feed needs one. Elements are cleared as soon as their record has been taken,
so memory stays flat however many orders a file holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from ..errors import ReadError
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
            raise ReadError(f"an element <{_local(el.tag)}> has {len(attributes)} attributes; "
                            f"more than {MAX_ATTRIBUTES} are not accepted", line=_line(el))
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

# libxml2's messages, in words an admin can act on; some of them advise an option that
# would switch a protection off, which must not reach anybody's screen.
_PARSER_WORDS = (
    ("amplification factor", "the XML defines entities (a DTD); partner files must not, so it was not read"),
    ("Excessive depth", "the XML is nested too deeply (a depth of more than 256 levels); it was not read"),
    ("huge text", "a text in the XML is too long (over 10 MB); it was not read"),
    ("Text node too long", "a text in the XML is too long (over 10 MB); it was not read"),
    ("Invalid bytes in character encoding",
     "the bytes do not match the encoding the XML declares in its first line (encoding=\"…\"); "
     "save the file in that encoding or correct the declaration"),
    ("not defined", "the XML uses an entity (&name;) that is not defined; only &amp; &lt; &gt; &quot; &apos; "
     "and character references may be used"),
)


def _declared_encoding(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(200)
    found = re.search(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""", head)
    return f'encoding="{found.group(1).decode()}"' if found else "no encoding, which means UTF-8"


def _in_words(message: str) -> str:
    undefined = re.search(r"Entity '([^']+)' not defined", message)
    if undefined:
        return (f"the XML uses the entity &{undefined.group(1)}; that is not defined; only &amp; &lt; &gt; "
                "&quot; &apos; and character references may be used")
    for needle, words in _PARSER_WORDS:
        if needle in message:
            return words
    message = message.replace("XML_PARSE_HUGE", "").strip().rstrip(",;:")
    return f"the XML is broken: {message or 'it ends too early'}"


def _refuse_dtd(el: etree._Element, shown_as: str) -> None:
    info = el.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None:
        raise ReadError(
            "the XML declares a DTD (<!DOCTYPE …>); partner files must not, so it was not read",
            file=shown_as, line=1,
        )


def read(source: Path, shown_as: str, spec: XmlInput, room: ReadRoom) -> Iterator[Record]:
    """The reader of ``input.format: xml`` (see ``registry.Reader``)."""
    return read_xml_records(source, spec.records, shown_as)


def read_xml_records(path: Path, record_path: str, shown_as: str) -> Iterator[Record]:
    """Yield one record per element at ``record_path`` (``/result/orders/order``)."""
    wanted = [p for p in record_path.strip("/").split("/") if p]
    absolute = record_path.startswith("/")
    checked_doctype = False
    if path.stat().st_size == 0:
        raise ReadError("the file is empty (0 bytes)", file=shown_as)
    try:
        # Only the end events of elements named like a record are reported; their position is
        # checked by walking up, which is much cheaper than tracking every element's start and end.
        context = etree.iterparse(
            str(path),
            events=("end",),
            tag="{*}" + wanted[-1],
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        for _event, el in context:
            if not checked_doctype:
                checked_doctype = True
                _refuse_dtd(el, shown_as)
            found = _path_of(el)
            if found == wanted if absolute else found[-len(wanted):] == wanted:
                yield element_to_record(el)
                el.clear(keep_tail=True)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
        root = context.root
        if root is not None:
            # Without any record the checks above never ran: a file of another kind, or with a
            # DTD, must not pass as "no orders today".
            _refuse_dtd(root, shown_as)
            if absolute and _local(root.tag) != wanted[0]:
                raise ReadError(
                    f"this is not the expected kind of document: its root element is <{_local(root.tag)}>, "
                    f"records were expected at {record_path}",
                    file=shown_as, line=root.sourceline,
                )
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, 0)
        # lxml's log can hold entries of earlier documents: only this file's count
        own = [e for e in exc.error_log if e.filename == str(path)]  # type: ignore[attr-defined]
        message = (exc.msg or "").split(", line ")[0]
        if own and (not message or message == "no element found"):
            message, line, column = own[0].message, own[0].line, own[0].column
        words = _in_words(message)
        if "Invalid bytes" in message:
            words = words.replace('(encoding="…")', f"({_declared_encoding(path)})")
        raise ReadError(words, file=shown_as, line=line or None, column=column or None) from None
    except UnicodeDecodeError as exc:
        raise ReadError(f"the file is not in the encoding it declares ({exc.encoding})", file=shown_as) from None
    except OSError as exc:
        raise ReadError(f"the file cannot be read: {exc}", file=shown_as) from None
