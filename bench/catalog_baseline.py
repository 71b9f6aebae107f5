"""The hand-written catalog converter that bench/catalog.py measures the gateway against.

    python bench/catalog_baseline.py EXPORT.zip OUT_DIR STEM INPUT_ID [all|produkte]

What a programmer would write for the shipped `sol-catalog` flow with the csv module and dicts:
every table of the export read into dicts keyed by the join columns, then one pass over
artikel.csv applying the rules of mappings/sol-catalog.yaml (with its settings as shipped and
the installation's settings of gateway.yaml, which are the same values): the Rakuten.de product
CSV and, with ``all``, the tier prices, relations, texts per language, documents index (and
the documents) and the category XML. The files must be byte for byte the gateway's; the bench
checks that. Memory grows with the export: that is the price of the dicts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
import zipfile
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

MANDANT, PREISLISTE, AKTIONSLISTEN, LAGER = "123", "1", ("7", "8"), ("HL", "AL")
TRENNER, LIEFERZEIT, SPRACHE, ABSCHALTEN, NUR_MIT_BESTAND = " > ", "", "de", True, "0"
MWST = {"1": "1", "2": "2", "3": "3"}
BEZIEHUNG = {"Zubehoer": "Zubehoer", "CrossSelling": "CrossSelling", "UpSelling": "UpSelling"}
EINHEIT = {u: u for u in ("kg", "g", "l", "ml", "m", "cm", "m²")}
COLUMNS = [
    "id", "variante_zu_id", "artikelnummer", "produkt_bestellbar", "produktname", "hersteller", "beschreibung",
    "variante", "variantenwert", "isbn_ean", "lagerbestand", "preis", "grundpreis_inhalt", "grundpreis_einheit",
    "reduzierter_preis", "bezug_reduzierter_preis", "mwst_klasse", "bestandsverwaltung_aktiv", "bild1", "bild2",
    "bild3", "bild4", "bild5", "kategorien", "lieferzeit", "tradoria_kategorie", "sichtbar",
    *(f"free_var_{i}" for i in range(1, 21)),
    "MPN", "bild6", "bild7", "bild8", "bild9", "bild10", "technical_data", "energie_klassen_gruppe",
    "energie_klasse", "energie_klasse_bis", "energie_klassen_bild"]
FORMULA = re.compile(r"[+-]?[0-9 ()./,+-]*[0-9][0-9 ()./,+-]*(?:[eE][+-]?[0-9]+)?")
FORMULA_START = re.compile("\x00[=+@\t\r-]")
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def dec(text: str) -> Decimal:
    """A SOL number: 1.234,50."""
    return Decimal(text.strip().replace(".", "").replace(",", "."))


def num(value: Decimal, places: int = 2, point: str = ".") -> str:
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    digits = f"{abs(rounded):.{places}f}".replace(".", point)
    return ("-" if rounded < 0 else "") + digits


def day(text: str) -> dt.date:
    text = text.strip()
    if "." in text:
        d, m, y = text[:10].split(".")
        return dt.date(int(y), int(m), int(d))
    return dt.date.fromisoformat(text[:10])


def neutral(value: str) -> str:
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not FORMULA.fullmatch(value):
        return "'" + value
    return value


def escape(value: str) -> str:
    value = XML_FORBIDDEN.sub("", value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            .replace("'", "&#39;"))


class Out:
    """A CSV file of the outbox, created with its first row."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns, self.fh, self.writer = path, columns, None, None

    def row(self, values: list[str]) -> None:
        if self.writer is None:
            self.fh = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
            self.writer = csv.writer(self.fh, delimiter=";", lineterminator="\r\n")
            self.writer.writerow(self.columns)
        if FORMULA_START.search("\x00" + "\x00".join(values)):  # rarely: look at each value
            values = [neutral(v) for v in values]
        self.writer.writerow(values)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def read(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    if name not in zf.namelist():
        return []
    with zf.open(name) as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, "cp1252", newline=""), delimiter=";"))


def by(rows: list[dict[str, str]], *columns: str) -> dict[tuple[str, ...], list[dict[str, str]]]:
    found: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        key = tuple(row.get(c, "") for c in columns)
        if all(key):
            found[key].append(row)
    return found


def main() -> None:
    src, out_dir, stem, input_id = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    everything = (sys.argv[5] if len(sys.argv) > 5 else "all") == "all"
    today = dt.date.today()
    with zipfile.ZipFile(src) as zf:
        artikel = read(zf, "artikel.csv")
        gruppen = read(zf, "artikelgruppen.csv")
        varianten = by(read(zf, "varianten.csv"), "Mandant", "Artikelnummer")
        preise = by(read(zf, "preise.csv"), "Mandant", "Artikelnummer")
        lager_rows = read(zf, "lager.csv")
        lager = by(lager_rows, "Mandant", "Artikelnummer")
        lager_var = by(lager_rows, "Mandant", "Artikelnummer", "AuspraegungID")
        del lager_rows
        komponenten = by(read(zf, "stuecklisten.csv"), "Mandant", "Stueckliste")
        zubehoer = by(read(zf, "zubehoer.csv"), "Mandant", "Artikelnummer")
        texte = by(read(zf, "texte.csv"), "Mandant", "Artikelnummer")
        dokumente = by(read(zf, "dokumente.csv"), "Mandant", "Artikelnummer")
        bilder = by(read(zf, "bilder.csv"), "Mandant", "Artikelnummer")
        artikel_nr = by(artikel, "Mandant", "Artikelnummer")
        gruppe_nr = by(gruppen, "Mandant", "Artikelgruppe")
        unter = by(gruppen, "Mandant", "VaterArtikelgruppe")
        alle_gruppen = by(gruppen, "Mandant")
        files = {"produkte": Out(out_dir / f"rakuten_produkte_{stem}_{input_id}.csv", COLUMNS),
                 "staffel": Out(out_dir / f"staffelpreise_{stem}_{input_id}.csv",
                                ["artikelnummer", "ab_menge", "preis"]),
                 "bez": Out(out_dir / f"beziehungen_{stem}_{input_id}.csv", ["artikelnummer", "bezug", "art",
                                                                           "sortierung"]),
                 "dok": Out(out_dir / f"dokumente_{stem}_{input_id}.csv", ["artikelnummer", "datei", "titel", "sprache",
                                                                         "sortierung"])}
        text_files: dict[str, Out] = {}
        pfade: dict[tuple[str, str], str] = {}
        first: dict[str, str] | None = None

        def vater(g: dict[str, str]) -> list[dict[str, str]]:
            return gruppe_nr.get((g["Mandant"], g.get("VaterArtikelgruppe", "")), [])

        def pfad(g: dict[str, str], tiefe: int) -> str:
            if g.get("Aktiv") != "-1" or tiefe >= 20:
                return ""
            oben = vater(g)
            if not oben:
                return g.get("Bezeichnung", "")
            parts = []
            for v in oben:
                weg = pfad(v, tiefe + 1)
                if weg:
                    parts.append(weg + TRENNER + g.get("Bezeichnung", ""))
            return "".join(parts)

        def kategorie(g: dict[str, str], tiefe: int) -> str:
            eigener = pfad(g, 0)
            if eigener:
                return eigener
            return "".join(kategorie(v, tiefe + 1) for v in vater(g)) if tiefe < 20 else ""

        def summe(rows: list[dict[str, str]]) -> Decimal:
            return sum((dec(r["Bestand"]) for r in rows if r.get("Lagerkennung") in LAGER), Decimal(0))

        def stock(rows: list[dict[str, str]]) -> int:
            return min(max(int(summe(rows)), 0), 9999)

        for a in artikel:
            nr = a["Artikelnummer"]
            key = (a["Mandant"], nr)
            if a["Mandant"] != MANDANT:
                continue
            aktiv = a["Aktiv"] == "-1" and a["IstVerkaufsartikel"] == "-1"
            var = varianten.get(key, [])
            aktive = [v for v in var if v.get("Aktiv") == "-1"] if aktiv else []
            offline = [v for v in var if v.get("Aktiv") != "-1"] if aktiv else var
            hat_var = a["Variante"] == "-1"
            verkaufbar = aktiv and (not hat_var or len(aktive) > 0)
            erste = (aktive or var)[:1]
            ids = {"0"} | ({v["AuspraegungID"] for v in aktive if v.get("AuspraegungID")} if hat_var else set())
            alle_preise = preise.get(key, [])
            shop = [p for p in alle_preise if p.get("ListeID") == PREISLISTE and p.get("IstAktion") != "-1"
                    and p.get("AuspraegungID", "") in ids]
            grund = [p for p in shop if p.get("AbMenge") == "0" and p.get("AuspraegungID") == "0"]
            aktionen = [p for p in alle_preise if p.get("IstAktion") == "-1" and p.get("AbMenge") == "0"
                        and p.get("ListeID") in AKTIONSLISTEN and p.get("AuspraegungID", "") in ids
                        and (not p.get("GueltigVon") or day(p["GueltigVon"]) <= today)
                        and (not p.get("GueltigBis") or today <= day(p["GueltigBis"]))]
            art_aktionen = [p for p in aktionen if p.get("AuspraegungID") == "0"]
            bestand = stock(lager.get(key, []))
            eigene = [b for b in bilder.get(key, []) if b.get("AuspraegungID", "") in ("0", "")]
            if not eigene:
                wanted = [v.get("AuspraegungID", "") for v in (aktive or var)]
                eigene = [b for b in bilder.get(key, []) if b.get("AuspraegungID", "") in wanted]
            eigene.sort(key=lambda b: (not b.get("Sortierung", "").strip(), dec(b["Sortierung"])
                                       if b.get("Sortierung", "").strip() else Decimal(0)))
            urls = [u for u in (b.get("URL", "").strip() for b in eigene) if u] + [""] * 10
            if not ABSCHALTEN and not aktiv:
                continue
            if hat_var and not aktive and not ABSCHALTEN:
                continue
            if verkaufbar and not hat_var and not grund:
                continue
            aktive_ids = [v.get("AuspraegungID", "") for v in aktive]
            mit_preis = {p["AuspraegungID"] for p in shop
                         if p.get("AbMenge") == "0" and p.get("AuspraegungID", "") in aktive_ids}
            if verkaufbar and hat_var and not grund and len(mit_preis) < len(aktive):
                continue
            first = first or a
            if len(nr) > 30:
                sys.exit(f"article {nr}: artikelnummer longer than 30")
            grund_preis = num(dec(grund[0]["Einzelpreis"])) if grund else ""
            if len(grund_preis) > 8:
                sys.exit(f"article {nr}: preis longer than 8")
            inhalt = num(dec(a["GrundpreisInhalt"]), 3, ",") if a.get("Grundpreiseinheit", "").strip() else ""
            einheit = EINHEIT[a["Grundpreiseinheit"].strip()] if a.get("GrundpreisInhalt", "").strip() else ""
            gruppe = (a["Mandant"], a.get("Artikelgruppe", ""))
            if gruppe not in pfade:
                pfade[gruppe] = "".join(kategorie(g, 0) for g in gruppe_nr.get(gruppe, []))
            shared = {"mwst_klasse": MWST[a["Steuerklasse"].strip()], "bestandsverwaltung_aktiv": "1",
                      "lieferzeit": LIEFERZEIT, "free_var_1": a.get("USER_Material", ""),
                      "MPN": a.get("HArtikelnummer", ""),
                      "grundpreis_inhalt": inhalt, "grundpreis_einheit": einheit}
            article = dict(shared, artikelnummer=nr, produktname=a["Bezeichnung1"][:100],
                           hersteller=a["Hersteller"][:30],
                           beschreibung=a.get("LangtextHTML") or a.get("Langtext", ""), isbn_ean=a.get("EANNummer", ""),
                           kategorien=pfade[gruppe], sichtbar="1" if verkaufbar else "0",
                           **{f"bild{i + 1}": urls[i] for i in range(10)})
            produkte = files["produkte"]
            if not hat_var:
                art_bestand = bestand
                row = dict(article, lagerbestand=str(bestand), preis=grund_preis)
                if a.get("Stuecklistentyp") and a["Stuecklistentyp"] != "0":
                    teile, je_min = [], None
                    for k in komponenten.get(key, []):
                        if not dec(k["Menge"]) > 0:
                            continue
                        ziel = artikel_nr.get((k["Mandant"], k.get("Element", "")), [])
                        je = int(summe(lager_var.get((k["Mandant"], k.get("Element", ""), k.get("AuspraegungID", "")),
                                                     [])) / dec(k["Menge"])) if ziel else 0
                        if je_min is None or je < je_min:
                            je_min = je
                        teile.append(f"{k['Menge']} × {ziel[0]['Bezeichnung1'] if ziel else k.get('Element', '')}")
                    art_bestand = min(max(je_min or 0, 0), 9999)
                    teile_text = ", ".join(teile)
                    if a.get("LangtextHTML"):
                        text = a["LangtextHTML"] + "<p>Set aus: " + escape(teile_text) + "</p>"
                    else:
                        text = a.get("Langtext", "") + ("\n\n" if a.get("Langtext") else "") + "Set aus: " + teile_text
                    row.update(lagerbestand=str(art_bestand), beschreibung=text)
                bestellbar = verkaufbar and (NUR_MIT_BESTAND != "1" or art_bestand > 0)
                row.update(produkt_bestellbar="1" if bestellbar else "0",
                           reduzierter_preis=num(min(dec(p["Einzelpreis"]) for p in art_aktionen))
                           if verkaufbar and art_aktionen else "", bezug_reduzierter_preis="VK"
                           if verkaufbar and art_aktionen else "")
                produkte.row([row.get(c, "") for c in COLUMNS])
            else:
                namen = [paar.partition("=")[0].strip() for v in erste for paar in v.get("Merkmale", "").split("|")]
                produkte.row([dict(article, id="#" + nr, produkt_bestellbar="1" if verkaufbar else "0",
                                   variante="|".join(namen), isbn_ean="").get(c, "") for c in COLUMNS])

                def werte(v: dict[str, str], namen: list[str] = namen) -> str:
                    paare = [p.partition("=") for p in v.get("Merkmale", "").split("|")]
                    return "|".join("".join(w.strip() for n, _, w in paare if n.strip() == name) for name in namen)

                for v in aktive:
                    v_bestand = stock(lager_var.get((v["Mandant"], v["Artikelnummer"], v.get("AuspraegungID", "")), []))
                    eigen = [p for p in shop if p.get("AuspraegungID") == v.get("AuspraegungID", "")]
                    preis = num(dec(([p for p in eigen if p.get("AbMenge") == "0"] or grund)[0]["Einzelpreis"]))
                    zeilen = ([p for p in aktionen if p.get("AuspraegungID") == v.get("AuspraegungID", "")]
                              or art_aktionen)
                    row = dict(shared, variante_zu_id="#" + nr, artikelnummer=v["Variantenartikelnummer"],
                               produkt_bestellbar="1" if NUR_MIT_BESTAND != "1" or v_bestand > 0 else "0",
                               variantenwert=werte(v), isbn_ean=v.get("EANNummer", ""), lagerbestand=str(v_bestand),
                               preis=preis, sichtbar="1",
                               reduzierter_preis=num(min(dec(p["Einzelpreis"]) for p in zeilen)) if zeilen else "",
                               bezug_reduzierter_preis="VK" if zeilen else "")
                    produkte.row([row.get(c, "") for c in COLUMNS])
                for v in offline if ABSCHALTEN else []:
                    v_bestand = stock(lager_var.get((v["Mandant"], v["Artikelnummer"], v.get("AuspraegungID", "")), []))
                    zeilen = [p for p in alle_preise if p.get("ListeID") == PREISLISTE and p.get("IstAktion") != "-1"
                              and p.get("AbMenge") == "0" and p.get("AuspraegungID") == v.get("AuspraegungID", "")
                              ] or grund
                    row = dict(shared, variante_zu_id="#" + nr, artikelnummer=v["Variantenartikelnummer"],
                               produkt_bestellbar="0", variantenwert=werte(v), isbn_ean=v.get("EANNummer", ""),
                               lagerbestand=str(v_bestand), sichtbar="0",
                               preis=num(dec(zeilen[0]["Einzelpreis"])) if zeilen else "")
                    produkte.row([row.get(c, "") for c in COLUMNS])
            if not everything or not verkaufbar:
                continue
            if not hat_var:
                for p in shop:
                    if p.get("AuspraegungID") == "0" and dec(p["AbMenge"]) > 0:
                        files["staffel"].row([nr, num(dec(p["AbMenge"]), 0), num(dec(p["Einzelpreis"]))])
            else:
                for v in aktive:
                    eigen = any(p.get("AuspraegungID") == v.get("AuspraegungID", "") for p in shop)
                    for p in shop:
                        if dec(p["AbMenge"]) > 0 and (p.get("AuspraegungID") == v.get("AuspraegungID", "")
                                                      or (p.get("AuspraegungID") == "0" and not eigen)):
                            files["staffel"].row([v["Variantenartikelnummer"], num(dec(p["AbMenge"]), 0),
                                                  num(dec(p["Einzelpreis"]))])
            for z in zubehoer.get(key, []):
                ziel = artikel_nr.get((z["Mandant"], z.get("Bezugsartikel", "")), [])
                if any(t["Aktiv"] == "-1" and t["IstVerkaufsartikel"] == "-1" for t in ziel):
                    files["bez"].row([nr, z["Bezugsartikel"], BEZIEHUNG[z["Beziehung"].strip()],
                                      z.get("Sortierung", "")])
            texts = [(a, (a.get("Sprache") or SPRACHE).strip().lower())] if SPRACHE.strip() else []
            texts += [(t, t["Sprache"].strip().lower()) for t in texte.get(key, [])
                      if t.get("Sprache", "").strip() and t["Sprache"].strip().lower() != SPRACHE.strip().lower()]
            for t, sprache in texts:
                if sprache not in text_files:
                    text_files[sprache] = Out(out_dir / f"texte_{sprache}_{stem}_{input_id}.csv", [
                        "artikelnummer", "sprache", "produktname", "kurztext", "beschreibung", "einheit", "meta_titel",
                        "meta_beschreibung"])
                text_files[sprache].row([nr, sprache, t.get("Bezeichnung1", "")[:100], t.get("Bezeichnung2", ""),
                                         t.get("LangtextHTML") or t.get("Langtext", ""),
                                         t.get("Verkaufsmengeneinheit") or t.get("Basismengeneinheit", ""),
                                         t.get("MetaTitel", ""), t.get("MetaBeschreibung", "")])
            for d in dokumente.get(key, []):
                datei = d.get("Datei", "")
                name = f"dokument_{input_id}_{nr}_{datei.split('/')[-1]}" if datei else ""
                files["dok"].row([nr, name, d.get("Titel", ""), d.get("Sprache", ""), d.get("Sortierung", "")])
                if datei:
                    (out_dir / name).write_bytes(zf.read(datei))
        for out in [*files.values(), *text_files.values()]:
            out.close()
        if everything and first is not None:
            write_tree(out_dir / f"kategorien_{stem}_{input_id}.xml", alle_gruppen.get((first["Mandant"],), []), unter)


def write_tree(path: Path, groups: list[dict[str, str]], unter: dict[tuple[str, ...], list[dict[str, str]]]) -> None:
    def level(liste: list[dict[str, str]], tiefe: int) -> list[str]:
        parts: list[str] = []
        order: list[Decimal] = []
        for g in liste:
            number = dec(g.get("Sortierung") or "0")
            if number not in order:
                order.append(number)
        for number in sorted(order):
            for g in liste:
                if dec(g.get("Sortierung") or "0") != number or tiefe >= 20:
                    continue
                pad = "  " * tiefe
                parts.append(f'\n{pad}  <kategorie id="{escape(g.get("Artikelgruppe", ""))}" '
                             f'ebene="{escape(g.get("Gruppenebene", ""))}" '
                             f'sortierung="{escape(g.get("Sortierung", ""))}">'
                             f"\n{pad}    <name>{escape(g.get('Bezeichnung', ''))}</name>"
                             f"\n{pad}    <langbezeichnung>{escape(g.get('Langbezeichnung', ''))}</langbezeichnung>"
                             f"\n{pad}    <bild>{escape(g.get('Bild', ''))}</bild>"
                             f"\n{pad}    <meta_titel>{escape(g.get('MetaTitel', ''))}</meta_titel>"
                             f"\n{pad}    <meta_beschreibung>{escape(g.get('MetaBeschreibung', ''))}"
                             "</meta_beschreibung>")
                children = [c for c in unter.get((g["Mandant"], g.get("Artikelgruppe", "")), [])
                            if c.get("Aktiv") == "-1"]
                parts.extend(level(children, tiefe + 1))
                parts.append(f"\n{pad}  </kategorie>")
        return parts

    top = [g for g in groups if g.get("Aktiv") == "-1" and g.get("VaterArtikelgruppe", "") in ("", "EMPTY")]
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<kategorien>' + "".join(level(top, 0)) + "\n</kategorien>\n"
    path.write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    main()
