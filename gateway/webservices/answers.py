"""Reading a web service's XML answers as the foreign input they are.

Every answer is parsed with the hardened options (no DTD, no entities, no network, no huge
trees), in the encoding it declares (ISO-8859-1 or UTF-8). Small answers are parsed whole;
large ones (a page of sales, an import report) are streamed from a file and their elements
cleared as they go, so memory stays flat.

An answer that is not the action's result element is an error, whatever the HTTP status:
Rakuten France answers ``<errorresponse><error><type/><code/><message/>``, Rakuten.de
``<result><success>-1</success><errors><error><code/><message/>``. :class:`Refusal` carries
what the service said; the caller decides whether it is about the record or the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from ..i18n import _

_OPTIONS: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


class BrokenAnswer(Exception):
    """The answer is not well-formed XML (truncated, wrong encoding) or declares a DTD."""


@dataclass(frozen=True)
class Refusal:
    """An error answer: what the service said, in its own words."""

    code: str
    message: str
    kind: str = ""  # Rakuten France: "Sender" (the request) or "Receiver" (the service)

    def words(self) -> str:
        text = " ".join(self.message.split())[:500]
        return _("{text} (code {code})").format(text=text, code=self.code) if self.code else text


def local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def parse(data: bytes) -> etree._Element:
    """A small answer, whole; ``BrokenAnswer`` when it is not safe, well-formed XML."""
    if not data.strip():
        raise BrokenAnswer(_("the answer was empty"))
    parser = etree.XMLParser(remove_comments=True, remove_pis=True, **_OPTIONS)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise BrokenAnswer(_("the answer is not well-formed XML ({detail})").format(detail=_short(exc))) from None
    _refuse_dtd(root)
    return root


def _short(exc: etree.XMLSyntaxError) -> str:
    return " ".join(str(exc.msg or exc).split(", line ")[0].split())[:200] or _("it ends too early")


def _refuse_dtd(root: etree._Element) -> None:
    info = root.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None:
        raise BrokenAnswer(_("the answer declares a DTD, which no web service answer needs; it was not read"))


def text(el: etree._Element | None, *path: str) -> str:
    """The stripped text at ``path`` below ``el`` (namespaces ignored), or ``""``."""
    node = el
    for name in path:
        if node is None:
            return ""
        node = next((c for c in node if local(c.tag) == name), None)
    return (node.text or "").strip() if node is not None else ""


def find_all(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el.iter() if local(c.tag) == name]


def fr_refusal(root: etree._Element) -> Refusal | None:
    """Rakuten France's error answer, if ``root`` is one."""
    if local(root.tag) != "errorresponse":
        return None
    error = next((c for c in root if local(c.tag) == "error"), root)
    details = " ".join(d for d in (" ".join((x.text or "").split()) for x in find_all(error, "detail")) if d)
    message = text(error, "message") or _("no message")
    return Refusal(code=text(error, "code"), message=f"{message} {details}".strip(), kind=text(error, "type"))


def de_refusal(root: etree._Element) -> Refusal | None:
    """Rakuten.de's error answer (``success`` not 1), if ``root`` is one."""
    if local(root.tag) != "result" or text(root, "success") == "1":
        return None
    errors = next((c for c in root if local(c.tag) == "errors"), None)
    first = next((c for c in errors if local(c.tag) == "error"), None) if errors is not None else None
    if first is None:
        return Refusal(code="", message=_("the answer says success {value}").format(
            value=text(root, "success") or _("(empty)")))
    return Refusal(code=text(first, "code"), message=text(first, "message") or _("no message"))


def check_file(path: Path) -> str:
    """Stream through a large answer once: the local name of its root; ``BrokenAnswer`` when broken."""
    root_name = ""
    try:
        for event, el in etree.iterparse(str(path), events=("start", "end"), remove_comments=True,
                                         remove_pis=True, **_OPTIONS):
            if event == "start":
                if not root_name:
                    root_name = local(el.tag)
                    _refuse_dtd(el)
                continue
            if el.getparent() is not None and len(el) == 0:
                continue
            el.clear(keep_tail=True)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise BrokenAnswer(_("the answer is not well-formed XML ({detail})").format(detail=_short(exc))) from None
    if not root_name:
        raise BrokenAnswer(_("the answer was empty"))
    return root_name


def head_of(path: Path, limit: int = 64 * 1024) -> etree._Element | None:
    """The whole answer when it is small (an error answer is), else ``None``."""
    if path.stat().st_size > limit:
        return None
    return parse(path.read_bytes())


def stream(path: Path, name: str) -> Iterator[etree._Element]:
    """Each element called ``name`` (namespaces ignored), whole, then cleared: a page of sales, orders, lines."""
    context = etree.iterparse(str(path), events=("end",), tag="{*}" + name, remove_comments=True,
                              remove_pis=True, **_OPTIONS)
    try:
        for _event, el in context:
            yield el
            el.clear(keep_tail=True)
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise BrokenAnswer(_("the answer is not well-formed XML ({detail})").format(detail=_short(exc))) from None
