"""Messages in German and English: the catalog is complete and compiled, and the language can be chosen."""

from __future__ import annotations

from pathlib import Path

from gateway import i18n

REPO = Path(__file__).resolve().parents[1]
PO = REPO / "gateway" / "locale" / "de" / "LC_MESSAGES" / "gateway.po"


def _marked_messages() -> set[str]:
    from babel.messages.extract import extract_from_dir

    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(REPO / "gateway"), method_map=i18n.METHOD_MAP, keywords=i18n.KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog() -> dict[str, str]:
    """msgid (the singular, for plurals) → its German text; empty when untranslated or marked fuzzy."""
    from babel.messages.pofile import read_po

    if not PO.exists():
        return {}
    with open(PO, "rb") as fh:
        catalog = read_po(fh, locale="de")
    texts = {}
    for m in catalog:
        if not m.id:
            continue
        forms = [m.string] if isinstance(m.string, str) else list(m.string)
        key = m.id if isinstance(m.id, str) else m.id[0]
        texts[key] = "" if m.fuzzy or not all(forms) else forms[0]
    return texts


def test_every_marked_message_has_its_german_text() -> None:
    catalog = _catalog()
    missing = sorted(m for m in _marked_messages() if not catalog.get(m))
    assert missing == [], "run 'python -m gateway.i18n' and translate these in gateway.po:\n" + "\n".join(missing)


def test_the_compiled_catalog_matches_the_po_file() -> None:
    import gettext

    catalog = _catalog()
    if not catalog:
        return
    compiled = gettext.GNUTranslations(open(PO.with_suffix(".mo"), "rb"))  # noqa: SIM115 - read at once
    stale = [m for m, text in catalog.items() if compiled.gettext(m) != text]
    assert stale == [], "gateway.mo is older than gateway.po: run 'python -m gateway.i18n'"


def test_the_language_is_chosen_per_process_and_english_needs_no_catalog() -> None:
    try:
        i18n.set_language("en")
        assert i18n._("nothing was processed") == "nothing was processed"
        i18n.set_language("de")
        assert i18n.language() == "de"
    finally:
        i18n.set_language("en")
