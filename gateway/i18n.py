"""Messages in the admin's language: English, or German with ``language: de`` in gateway.yaml.

Every message an admin reads is written in English in the code and marked with ``_()``;
the German text comes from the gettext catalog ``gateway/locale/de/LC_MESSAGES/gateway.po``
(compiled to ``gateway.mo``, which is what is read at run time). A message with values is
marked as a whole, with named fields, so that a translation can put them where German wants
them::

    _("the mapping file {file} does not exist").format(file=fc.mapping)

Marking only (for texts built before the language is known) is ``N_()``; they are translated
where they are shown. ``python -m gateway.i18n`` brings the catalog up to date after messages
changed: it extracts them, merges them into the .po (new ones with an empty translation), and
compiles the .mo. A test fails while any message lacks its German text.

The language is one per process (the command line and the service serve one installation).
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "gateway"
#: Where messages are marked: Python files, and the console's Jinja templates (``{{ _("…") }}``).
METHOD_MAP = [("**.py", "python"), ("**/templates/console/**.html.j2", "jinja2.ext:babel_extract")]
KEYWORDS: dict[str, object] = {"_": None, "N_": None, "ngettext": (1, 2)}
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "de")

_translations: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def set_language(language: str) -> None:
    """Use ``language`` (``en`` or ``de``) for every message from now on."""
    global _translations, _language
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    _language = language
    if language == "en":
        _translations = gettext.NullTranslations()
    else:
        _translations = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def language() -> str:
    return _language


def _(message: str) -> str:
    """``message`` in the current language."""
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now."""
    return message


def _update() -> None:  # pragma: no cover - a maintainer's tool, run by hand
    """Extract the marked messages, merge them into the German catalog, compile it."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po, write_po

    template = Catalog(project="gateway", domain=DOMAIN)
    root = Path(__file__).parent
    for filename, lineno, message, comments, _context in extract_from_dir(
        str(root), method_map=METHOD_MAP, keywords=KEYWORDS,  # type: ignore[arg-type]
    ):
        template.add(message, locations=[(f"gateway/{filename}", lineno)], auto_comments=comments)
    po_path = LOCALE_DIR / "de" / "LC_MESSAGES" / f"{DOMAIN}.po"
    if po_path.exists():
        with open(po_path, "rb") as fh:
            catalog = read_po(fh, locale="de", domain=DOMAIN)
    else:
        catalog = Catalog(locale="de", domain=DOMAIN, project="gateway")
    catalog.update(template, no_fuzzy_matching=True)
    po_path.parent.mkdir(parents=True, exist_ok=True)
    with open(po_path, "wb") as fh:
        write_po(fh, catalog, width=120, omit_header=False, sort_by_file=True)
    with open(po_path.with_suffix(".mo"), "wb") as fh:
        write_mo(fh, catalog)
    missing = [m.id for m in catalog if m.id and (m.fuzzy or not _has_text(m.string))]
    print(f"{po_path}: {len(catalog)} messages, {len(missing)} without German text")


def _has_text(string: object) -> bool:
    """Whether a catalog entry has German text in every form (babel types ``Message.string`` differently by version)."""
    if isinstance(string, str):
        return bool(string)
    if isinstance(string, (list, tuple)):
        return bool(string) and all(isinstance(form, str) and form for form in string)
    return False


if __name__ == "__main__":  # pragma: no cover
    _update()
