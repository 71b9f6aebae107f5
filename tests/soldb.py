"""SOL's KHK tables (docs/formats.md, "The SOL database") for the tests and benches, filled from an export's CSV files.

The tables are created as a database migrated from SQL Server usually has them on PostgreSQL:
with unquoted names, which PostgreSQL keeps in lower case (``khkartikel``). The shipped queries
write SOL's spelling (``KHKArtikel``, ``Artikelnummer``) and find them, as they find SOL's own
tables on SQL Server, whose names ignore case.

What sol-database.md marks as a proposal is an installation's user field or table here:
``USER_LangtextHTML``, ``USER_MetaTitel`` … on KHKArtikel, ``USER_Variantenartikelnummer`` and
``USER_Merkmale`` on KHKArtikelVarianten, ``USER_ArtikelTexte`` and ``USER_ArtikelBeziehungen``,
and ``GeaendertAm`` on KHKLagerplatzbestaende for the incremental stock.

``load_export`` reads the CSV files of an export folder (artikel.csv, varianten.csv, …) into these
tables, with SOL's German numbers and dates turned into numbers and dates; ``sorted_export`` writes
a copy of an export with the rows in the order the shipped queries read them (their ORDER BY),
so that the file and the database variant of a flow can be compared byte for byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, SmallInteger, String, Table, Text
from sqlalchemy.engine import Engine

from gateway.readers.csv import read_csv_records

META = MetaData()


def _table(name: str, *columns: tuple[str, Any]) -> Table:
    return Table(name.lower(), META, *(Column(c.lower(), t) for c, t in columns))


def _name(length: int = 255) -> String:
    return String(length)


KHK_ARTIKEL = _table(
    "KHKArtikel", ("Mandant", SmallInteger), ("Artikelnummer", String(31)), ("Bezeichnung1", _name()),
    ("Bezeichnung2", _name()), ("Matchcode", _name(50)), ("Langtext", Text), ("Artikelgruppe", String(20)),
    ("Hauptartikelgruppe", String(20)), ("Vaterartikelgruppe", String(20)), ("Hersteller", _name(50)),
    ("Steuerklasse", SmallInteger), ("Verkaufsmengeneinheit", String(10)), ("Basismengeneinheit", String(10)),
    ("Gewichtseinheit", String(10)), ("IstVerkaufsartikel", SmallInteger), ("Stuecklistentyp", SmallInteger),
    ("Grundpreiseinheit", String(10)), ("GrundpreisBasis", Numeric(19, 4)), ("PlatzID", Integer),
    ("Variante", SmallInteger), ("Aktiv", SmallInteger), ("Artikelart", String(10)), ("GeaendertAm", DateTime),
    ("USER_LangtextHTML", Text), ("USER_HArtikelnummer", _name(50)), ("USER_MetaTitel", _name(255)),
    ("USER_MetaBeschreibung", _name(255)), ("USER_MetaKeywords", _name(255)), ("USER_Material", _name(255)),
)
KHK_VARIANTEN = _table(
    "KHKArtikelVarianten", ("Mandant", SmallInteger), ("Artikelnummer", String(31)), ("AuspraegungID", Integer),
    ("EANNummer", String(20)), ("Gewicht", Numeric(19, 4)), ("Meldebestand", Numeric(19, 4)),
    ("Aktiv", SmallInteger), ("USER_Variantenartikelnummer", String(31)), ("USER_Merkmale", _name(255)),
)
KHK_GRUPPEN = _table(
    "KHKArtikelgruppen", ("Mandant", SmallInteger), ("Artikelgruppe", String(20)), ("Bezeichnung", _name()),
    ("VaterArtikelgruppe", String(20)), ("Hauptartikelgruppe", String(20)), ("Gruppenebene", SmallInteger),
    ("HatUntergruppen", SmallInteger), ("USER_Langbezeichnung", _name(255)), ("USER_Aktiv", SmallInteger),
    ("USER_Bild", _name(255)), ("USER_MetaTitel", _name(255)), ("USER_MetaBeschreibung", _name(255)),
    ("USER_Sortierung", Integer),
)
KHK_PREISLISTEN = _table(
    "KHKPreislisten", ("ID", Integer), ("Bezeichnung", _name()), ("IstAktion", SmallInteger),
    ("GueltigVon", DateTime), ("GueltigBis", DateTime), ("IstBruttopreis", SmallInteger),
)
KHK_PREISE = _table(
    "KHKPreislistenArtikel", ("Mandant", SmallInteger), ("ListeID", Integer), ("Artikelnummer", String(31)),
    ("AuspraegungID", Integer), ("AbMenge", Numeric(19, 4)), ("Einzelpreis", Numeric(19, 4)),
)
KHK_PLAETZE = _table("KHKLagerplaetze", ("Mandant", SmallInteger), ("PlatzID", Integer), ("Lagerkennung", String(20)))
KHK_BESTAENDE = _table(
    "KHKLagerplatzbestaende", ("Mandant", SmallInteger), ("Artikelnummer", String(31)), ("AuspraegungID", Integer),
    ("PlatzID", Integer), ("Bestand", Numeric(19, 4)), ("Verfuegbarkeit", Numeric(19, 4)),
    ("GeaendertAm", DateTime),
)
KHK_STUECKLISTE = _table(
    "KHKArtikelStueckliste", ("Mandant", SmallInteger), ("Stueckliste", String(31)), ("Element", String(31)),
    ("Menge", Numeric(19, 4)), ("Sortierung", Integer), ("AuspraegungID", Integer),
)
USER_TEXTE = _table(
    "USER_ArtikelTexte", ("Mandant", SmallInteger), ("Artikelnummer", String(31)), ("Sprache", String(5)),
    ("Bezeichnung1", _name()), ("Bezeichnung2", _name()), ("Langtext", Text), ("MetaTitel", _name(255)),
    ("MetaBeschreibung", _name(255)),
)
USER_BEZIEHUNGEN = _table(
    "USER_ArtikelBeziehungen", ("Mandant", SmallInteger), ("Artikelnummer", String(31)),
    ("Bezugsartikel", String(31)), ("Beziehung", String(20)), ("Sortierung", Integer),
)

USER_BILDER = _table(
    "USER_ArtikelBilder", ("Mandant", SmallInteger), ("Artikelnummer", String(31)), ("AuspraegungID", Integer),
    ("URL", _name(500)), ("Sortierung", Integer),
)

# export file → (table, its columns by the export's names where they differ)
_RENAMED = {"LangtextHTML": "USER_LangtextHTML", "HArtikelnummer": "USER_HArtikelnummer",
            "MetaTitel": "USER_MetaTitel", "MetaBeschreibung": "USER_MetaBeschreibung",
            "MetaKeywords": "USER_MetaKeywords", "Variantenartikelnummer": "USER_Variantenartikelnummer",
            "Merkmale": "USER_Merkmale", "GrundpreisInhalt": "GrundpreisBasis"}
_GROUP_RENAMED = {"Langbezeichnung": "USER_Langbezeichnung", "Aktiv": "USER_Aktiv", "Bild": "USER_Bild",
                  "MetaTitel": "USER_MetaTitel", "MetaBeschreibung": "USER_MetaBeschreibung",
                  "Sortierung": "USER_Sortierung"}


def create_tables(engine: Engine) -> None:
    META.create_all(engine)


def german_number(text: str) -> decimal.Decimal:
    return decimal.Decimal(text.replace(".", "").replace(",", "."))


def _typed(text: Any, column: Column[Any]) -> Any:
    if not isinstance(text, str) or text == "":
        return None
    kind = column.type
    if isinstance(kind, (SmallInteger, Integer)):
        return int(text)
    if isinstance(kind, Numeric):
        return german_number(text)
    if isinstance(kind, DateTime):
        return dt.datetime.strptime(text, "%d.%m.%Y %H:%M:%S" if " " in text else "%d.%m.%Y")
    return text


def _rows(folder: Path, name: str) -> Iterator[dict[str, Any]]:
    path = folder / name
    if path.exists():
        for record in read_csv_records(path, name):
            yield dict(record._fields)


CHUNK = 5000


def _insert(engine: Engine, table: Table, rows: Iterable[dict[str, Any]],
            renamed: dict[str, str] | None = None) -> None:
    """Rows streamed into ``table`` in chunks (an export of 200,000 articles has millions of rows)."""
    renamed = renamed or {}
    columns = {c.name: c for c in table.columns}
    chunk: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in rows:
            values = {}
            for key, text in row.items():
                name = renamed.get(key, key).lower()
                if name in columns:
                    values[name] = _typed(text, columns[name])
            chunk.append(values)
            if len(chunk) >= CHUNK:
                _flush(conn, table, chunk)
                chunk = []
        _flush(conn, table, chunk)


def _flush(conn: Any, table: Table, chunk: list[dict[str, Any]]) -> None:
    if chunk:
        names = {n for row in chunk for n in row}
        conn.execute(table.insert(), [{n: row.get(n) for n in names} for row in chunk])


def load_export(engine: Engine, folder: Path, *, changed: dt.datetime = dt.datetime(2026, 11, 27, 8, 0)) -> None:
    """The export's CSV files in ``folder`` into the KHK tables (created if needed)."""
    create_tables(engine)
    _insert(engine, KHK_ARTIKEL, _rows(folder, "artikel.csv"), _RENAMED)
    base = ({"Mandant": a.get("Mandant"), "Artikelnummer": a.get("Artikelnummer"), "AuspraegungID": "0",
             "EANNummer": a.get("EANNummer"), "Gewicht": a.get("Gewicht"), "Aktiv": a.get("Aktiv")}
            for a in _rows(folder, "artikel.csv"))
    _insert(engine, KHK_VARIANTEN, itertools.chain(base, _rows(folder, "varianten.csv")), _RENAMED)
    _insert(engine, KHK_GRUPPEN, _rows(folder, "artikelgruppen.csv"), _GROUP_RENAMED)
    lists: dict[str, dict[str, Any]] = {}
    for p in _rows(folder, "preise.csv"):
        lists.setdefault(p["ListeID"], {"ID": p["ListeID"], "Bezeichnung": p.get("Preisliste"),
                                        "IstAktion": p.get("IstAktion"), "GueltigVon": p.get("GueltigVon"),
                                        "GueltigBis": p.get("GueltigBis"), "IstBruttopreis": p.get("IstBruttopreis")})
    _insert(engine, KHK_PREISLISTEN, lists.values())
    _insert(engine, KHK_PREISE, _rows(folder, "preise.csv"))
    places: dict[tuple[str, str], dict[str, Any]] = {}
    for row in _rows(folder, "lager.csv"):
        places.setdefault((row["Mandant"], row["PlatzID"]), {"Mandant": row["Mandant"], "PlatzID": row["PlatzID"],
                                                             "Lagerkennung": row.get("Lagerkennung")})
    _insert(engine, KHK_PLAETZE, places.values())
    stamp = changed.strftime("%d.%m.%Y %H:%M:%S")
    _insert(engine, KHK_BESTAENDE, ({**row, "GeaendertAm": stamp} for row in _rows(folder, "lager.csv")))
    _insert(engine, KHK_STUECKLISTE, _rows(folder, "stuecklisten.csv"))
    _insert(engine, USER_TEXTE, _rows(folder, "texte.csv"))
    _insert(engine, USER_BEZIEHUNGEN, _rows(folder, "zubehoer.csv"))
    _insert(engine, USER_BILDER, _rows(folder, "bilder.csv"))


def split_price_lists(folder: Path) -> dict[str, list[str]]:
    """Give price rows their own list where an export says two things of one list.

    An export repeats a list's name, promotion flag and validity on each of its rows, and a
    hand-made export may give one ListeID two validities; in SOL (KHKPreislisten) a list has one.
    Such rows get a list of their own (ListeID × 10 + n), so that the file and the database hold
    the same data; returns, per original ListeID, the ListeIDs it became.
    """
    path = folder / "preise.csv"
    raw = path.read_bytes()
    text = raw.decode("windows-1252")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    header, *rows = list(reader)
    at = {name: i for i, name in enumerate(header)}
    lists: dict[tuple[str, ...], str] = {}
    became: dict[str, list[str]] = {}
    for row in rows:
        liste = row[at["ListeID"]]
        attributes = (liste, *(row[at[n]] for n in ("Preisliste", "IstAktion", "GueltigVon", "GueltigBis",
                                                    "IstBruttopreis")))
        if attributes not in lists:
            ids = became.setdefault(liste, [])
            lists[attributes] = liste if not ids else str(int(liste) * 10 + len(ids))
            ids.append(lists[attributes])
        row[at["ListeID"]] = lists[attributes]
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(out.getvalue().encode("windows-1252"))
    return became


def split_bins(folder: Path) -> None:
    """Give a bin (PlatzID) that an export lists under two warehouses a number of its own per warehouse:
    in SOL (KHKLagerplaetze) a bin belongs to one warehouse, so the file and the database hold the same data."""
    path = folder / "lager.csv"
    if not path.exists():
        return
    header, *rows = list(csv.reader(io.StringIO(path.read_bytes().decode("windows-1252"), newline=""), delimiter=";"))
    at = {name: i for i, name in enumerate(header)}
    owner: dict[str, str] = {}
    renamed: dict[tuple[str, str], str] = {}
    for row in rows:
        bin_id, store = row[at["PlatzID"]], row[at["Lagerkennung"]]
        if owner.setdefault(bin_id, store) != store:
            row[at["PlatzID"]] = renamed.setdefault((bin_id, store), str(9000 + len(renamed)))
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(out.getvalue().encode("windows-1252"))


def _int(v: str) -> int:
    return int(v) if v else -(2**63)


def _dec(v: str) -> decimal.Decimal:
    return german_number(v) if v else decimal.Decimal(-(2**63))


# The shipped queries' ORDER BY, per export file (Mandant is one value per export).
ORDER: dict[str, Callable[[dict[str, str]], tuple[Any, ...]]] = {
    "artikel.csv": lambda r: (r["Artikelnummer"],),
    "varianten.csv": lambda r: (r["Artikelnummer"], _int(r["AuspraegungID"])),
    "artikelgruppen.csv": lambda r: (r["Artikelgruppe"],),
    "preise.csv": lambda r: (r["Artikelnummer"], _int(r["AuspraegungID"]), _int(r["ListeID"]), _dec(r["AbMenge"])),
    "lager.csv": lambda r: (r["Artikelnummer"], _int(r["AuspraegungID"]), r["Lagerkennung"], _int(r["PlatzID"])),
    "stuecklisten.csv": lambda r: (r["Stueckliste"], _int(r["Sortierung"]), r["Element"]),
    "texte.csv": lambda r: (r["Artikelnummer"], r["Sprache"]),
    "bilder.csv": lambda r: (r["Artikelnummer"], _int(r["AuspraegungID"]), _int(r["Sortierung"])),
    "zubehoer.csv": lambda r: (r["Artikelnummer"], r["Beziehung"], _int(r["Sortierung"]), r["Bezugsartikel"]),
}


def sorted_export(folder: Path, target: Path, *, files: tuple[str, ...] | None = None) -> Path:
    """A copy of the export in ``folder`` with each table's rows in the shipped queries' order."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.is_dir() or (files is not None and path.name not in files):
            continue
        order = ORDER.get(path.name.lower())
        if order is None:
            (target / path.name).write_bytes(path.read_bytes())
            continue
        raw = path.read_bytes()
        encoding = "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "windows-1252"
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            text = raw.decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
        header, *rows = [r for r in reader if any(v.strip() for v in r)]
        dicts = [dict(zip(header, r + [""] * (len(header) - len(r)), strict=True)) for r in rows]
        dicts.sort(key=order)
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([d[h] for h in header] for d in dicts)
        (target / path.name).write_bytes(out.getvalue().encode("windows-1252"))
    return target
