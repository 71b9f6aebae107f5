"""Streaming XML records with a hardened parser.

Partner XML is foreign input: no DTD is loaded, no entity is resolved, nothing is
fetched from the network, and a document that declares a DTD at all is refused, since
no order feed needs one. Elements are cleared as soon as their record has been taken,
so memory stays flat however many orders a file holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import ReadError
from ..mapping.values import MISSING, Record

_LOCAL_NAMES: dict[str, str] = {}


def _local(tag: Any) -> str:
    """``{namespace}name`` → ``name``; namespaces are ignored when matching and naming fields."""
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
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
        for attr_name, attr_value in el.attrib.items():
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
            if len(child) == 0:  # attributes only: keep the text too
                value._fields["text"] = (child.text or "").strip()
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


def _refuse_dtd(el: etree._Element, shown_as: str) -> None:
    info = el.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None:
        raise ReadError(
            "the XML declares a DTD (<!DOCTYPE …>); partner files must not, so it was not read",
            file=shown_as, line=1,
        )


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
        message = (exc.msg or "the XML is broken").split(", line ")[0]
        raise ReadError(
            f"the XML is broken: {message}", file=shown_as, line=line or None, column=column or None
        ) from None
    except UnicodeDecodeError as exc:
        raise ReadError(f"the file is not in the encoding it declares ({exc.encoding})", file=shown_as) from None
    except OSError as exc:
        raise ReadError(f"the file cannot be read: {exc}", file=shown_as) from None
