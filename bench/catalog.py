"""A full SOL catalog batch through the shipped `sol-catalog` flow: time and peak memory.

    .venv/bin/python bench/catalog.py [--articles 200000]

Generates a catalog export (ZIP) of N articles with 3 variants each, stock in 2 warehouses
(plus a returns warehouse), 2 languages and 2 tier prices, like the issue asks, and runs
the real engine on it with the shipped mapping, templates and settings. Prints the time and
the child process's peak RSS: the secondary tables go into a temporary SQLite database, so
memory must stay bounded however large the catalog is.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from harness import REPO, engine

ARTIKEL = ("Mandant;Artikelnummer;Bezeichnung1;Bezeichnung2;Matchcode;Langtext;LangtextHTML;Artikelgruppe;"
           "Hauptartikelgruppe;Vaterartikelgruppe;Hersteller;HArtikelnummer;Steuerklasse;Basismengeneinheit;"
           "Verkaufsmengeneinheit;Gewicht;Gewichtseinheit;EANNummer;Stuecklistentyp;Variante;Artikelart;Aktiv;"
           "IstVerkaufsartikel;MetaTitel;MetaBeschreibung;MetaKeywords;GeaendertAm")


def generate(path: Path, articles: int, seed: int = 5) -> None:
    """Write the tables one line at a time to files beside ``path``, then pack them: the bench's own
    memory stays small whatever the size."""
    rnd = random.Random(seed)
    names = ("artikel", "artikelgruppen", "varianten", "preise", "lager", "stuecklisten", "zubehoer", "texte",
             "dokumente")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, contextlib.ExitStack() as stack:
        folder = Path(tmp)
        tables = {name: stack.enter_context(
            (folder / f"{name}.csv").open("w", encoding="cp1252", errors="replace", newline=""))
            for name in names}
        _write(tables, articles, rnd)
        stack.close()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                zf.write(folder / f"{name}.csv", f"{name}.csv")


def _write(tables: Mapping[str, TextIO], articles: int, rnd: random.Random) -> None:
    tables["artikel"].write(ARTIKEL + "\r\n")
    tables["artikelgruppen"].write("Mandant;Artikelgruppe;Bezeichnung;Langbezeichnung;VaterArtikelgruppe;"
                                   "Hauptartikelgruppe;Gruppenebene;HatUntergruppen;Aktiv;Bild;MetaTitel;"
                                   "MetaBeschreibung;Sortierung\r\n")
    tables["artikelgruppen"].write("123;01;Küche;Alles für die Küche;EMPTY;01;1;-1;-1;k.jpg;;;10\r\n")
    for g in range(1, 50):
        tables["artikelgruppen"].write(f"123;01{g:02d};Gruppe {g};Gruppe {g};01;01;2;0;-1;;;;{g}\r\n")
    tables["varianten"].write("Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer;EANNummer;Gewicht;"
                              "Merkmale;Aktiv\r\n")
    tables["preise"].write("Mandant;ListeID;Preisliste;IstAktion;GueltigVon;GueltigBis;IstBruttopreis;"
                           "Artikelnummer;AuspraegungID;AbMenge;Einzelpreis\r\n")
    tables["lager"].write("Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand;Verfuegbarkeit\r\n")
    tables["stuecklisten"].write("Mandant;Stueckliste;Element;AuspraegungID;Menge;Sortierung\r\n")
    tables["zubehoer"].write("Mandant;Artikelnummer;Bezugsartikel;Beziehung;Sortierung\r\n")
    tables["texte"].write("Mandant;Artikelnummer;Sprache;Bezeichnung1;Bezeichnung2;Langtext;MetaTitel;"
                          "MetaBeschreibung\r\n")
    tables["dokumente"].write("Mandant;Artikelnummer;Datei;Titel;Sprache;Sortierung\r\n")
    sizes = ["S", "M", "L"]
    for n in range(articles):
        nr = f"{100000 + n}"
        group = f"01{rnd.randint(1, 49):02d}"
        tables["artikel"].write(
            f"123;{nr};T-Shirt „Basic“ {n};Baumwolle;TS{n};Weiches Shirt; <p>Weiches Shirt</p>;{group};01;01;"
            f"Müller & Söhne;M{n};1;Stk;Stk;0,200;kg;400{n:09d};0;-1;0;-1;-1;;;;14.11.2026\r\n")
        price = rnd.randint(500, 9999)
        tables["preise"].write(f"123;1;Shop;0;;;-1;{nr};0;0;{price // 100},{price % 100:02d}\r\n")
        tables["preise"].write(f"123;1;Shop;0;;;-1;{nr};0;10;{price * 9 // 1000},{price * 9 // 10 % 100:02d}\r\n")
        tables["preise"].write(f"123;1;Shop;0;;;-1;{nr};0;50;{price * 8 // 1000},{price * 8 // 10 % 100:02d}\r\n")
        for v, size in enumerate(sizes, 1):
            tables["varianten"].write(f"123;{nr};{v};{nr}-{size};400{n:08d}{v};0,200;Farbe=Blau|Größe={size};-1\r\n")
            for store in ("HL", "AL", "RETOURE"):
                tables["lager"].write(f"123;{nr};{v};{store};1;{rnd.randint(0, 40)};0\r\n")
        for lang, text in (("en", "Basic T-shirt"), ("fr", "T-shirt « Basic »")):
            tables["texte"].write(f"123;{nr};{lang};{text} {n};Coton;Soft shirt.;;\r\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "inst"
        for folder in ("mappings", "templates", "schemas", "lookups"):
            shutil.copytree(REPO / folder, root / folder)
        config = (REPO / "gateway.yaml").read_text(encoding="utf-8")
        (root / "gateway.yaml").write_text(config.replace("settle_seconds: 2", "settle_seconds: 0"), encoding="utf-8")
        (root / "inbox" / "sol-catalog").mkdir(parents=True)
        started = time.perf_counter()
        generate(root / "inbox" / "sol-catalog" / "katalog_bench.zip", args.articles)
        size = (root / "inbox" / "sol-catalog" / "katalog_bench.zip").stat().st_size / 1e6
        print(f"{args.articles} articles × 3 variants, 3 warehouses (2 counted), 2 languages, 2 tiers: "
              f"ZIP {size:.0f} MB, generated in {time.perf_counter() - started:.0f} s")
        seconds, peak = engine(root / "gateway.yaml")
        outputs = sorted((root / "outbox" / "sol-catalog").iterdir())
        total = sum(p.stat().st_size for p in outputs) / 1e6
        print(f"gateway engine (sol-catalog): {seconds:.1f} s, {args.articles / seconds:.0f} articles/s, "
              f"peak RSS {peak:.0f} MB, {len(outputs)} output files, {total:.0f} MB")


if __name__ == "__main__":
    main()
