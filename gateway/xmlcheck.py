"""Checking XML outputs before they are released.

A template can produce XML that is not well-formed (a stray ``&`` written with
``|safe``) or that the importer's schema refuses. The staged file is parsed once,
streamed, with the same hardened options as partner input, and validated against the
flow's XSD when it has one; only then may it be published. lxml validates as it parses,
so memory stays flat even for a large catalog.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

from .errors import MappingError
from .i18n import _

_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}


@lru_cache(maxsize=32)
def _load_schema(path: Path, mtime_ns: int) -> etree.XMLSchema:
    parser = etree.XMLParser(**_PARSER_OPTIONS)  # type: ignore[arg-type]
    return etree.XMLSchema(etree.parse(str(path), parser))


def check_schema(path: Path, shown_as: str) -> str | None:
    """A plain-words problem with the XSD at ``path``, or ``None`` when it is usable."""
    try:
        _load_schema(path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        return _("the schema {file} does not exist").format(file=shown_as)
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        return _("the schema {file} cannot be used: {error}").format(file=shown_as, error=exc)
    return None


def validate_xml(path: Path, schema: Path | None, output: str) -> None:
    """Raise ``MappingError`` naming the output, line and element when the XML is broken or invalid."""
    xsd = _load_schema(schema, schema.stat().st_mtime_ns) if schema is not None else None
    try:
        kwargs = dict(_PARSER_OPTIONS)
        context = etree.iterparse(str(path), events=("end",), schema=xsd, **kwargs)
        for _event, el in context:
            el.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        last = exc.error_log.last_error if exc.error_log else None  # type: ignore[attr-defined]
        message = str(exc.msg or exc).split(", line ")[0]
        if last is not None and last.domain_name == "SCHEMASV" and schema is not None:
            detail = _schema_detail(path, schema) or message
            raise MappingError(_("the output does not match the schema {schema}: {problem}").format(
                schema=schema.name, problem=detail), field=output) from None
        line = exc.position[0] if exc.position else exc.lineno
        raise MappingError(_("the output is not valid XML (its line {line}): {problem}").format(
            line=line, problem=message), field=output) from None


_DETAIL_LIMIT = 50 * 1024 * 1024


def _schema_detail(path: Path, schema: Path) -> str | None:
    """xmlschema names the failing element by its path (``/Auftraege/Auftrag[2]/Betrag``), which
    lxml's streaming validation cannot; it is slow, so it runs only on this error path, and only
    for outputs of a size it handles in reasonable time."""
    if path.stat().st_size > _DETAIL_LIMIT:
        return None
    import xmlschema

    try:
        checker = xmlschema.XMLSchema(str(schema), defuse="always", allow="sandbox")
        for error in checker.iter_errors(str(path)):
            return f"{error.path}: {error.reason}"
    except Exception:  # only a nicer message is lost; lxml's stands
        return None
    return None
