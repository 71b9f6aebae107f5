"""A full SOL catalog batch through the shipped `sol-catalog` flow, beside a hand-written converter.

    .venv/bin/python bench/catalog.py [--articles 20000 200000] [--repeat 3] [--outputs all|produkte]
                                      [--no-baseline]

Generates a catalog export (ZIP) of N articles with 3 variants each, stock in 2 warehouses (plus
a returns warehouse), 2 languages and 2 tier prices, and runs the real engine on it (`gateway run
--once` on the shipped installation: mappings, templates, gateway.yaml, after one untimed run with
nothing waiting, as on a machine where the gateway has run before) in a child process, interleaved
with the hand-written converter of bench/catalog_baseline.py (csv module + dicts) in another.
Every file the two write must be the same, byte for byte; the bench stops if one differs.
Printed: medians of --repeat runs (wall and CPU time, articles/s), the largest peak RSS of each,
and the ratio. ``--outputs produkte`` runs both on the product CSV alone (the engine with the
shipped mapping cut to its first output). The secondary tables go into a temporary SQLite
database, so the engine's memory must stay flat however large the catalog is; the baseline's
dicts grow with it (``--no-baseline`` for sizes it cannot hold).
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

from harness import REPO, Run, child, compile_gateway, engine, medians, warm

ARTIKEL = ("Mandant;Artikelnummer;Bezeichnung1;Bezeichnung2;Matchcode;Langtext;LangtextHTML;Artikelgruppe;"
           "Hauptartikelgruppe;Vaterartikelgruppe;Hersteller;HArtikelnummer;Steuerklasse;Basismengeneinheit;"
           "Verkaufsmengeneinheit;Gewicht;Gewichtseinheit;EANNummer;Stuecklistentyp;Variante;Artikelart;Aktiv;"
           "IstVerkaufsartikel;MetaTitel;MetaBeschreibung;MetaKeywords;GeaendertAm")
BASELINE = (REPO / "bench" / "catalog_baseline.py").read_text(encoding="utf-8")
STEM = "katalog_bench"


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


def product_mapping() -> str:
    """The shipped catalog mapping with only its first output, the Rakuten.de product CSV."""
    text = (REPO / "mappings" / "sol-catalog.yaml").read_text(encoding="utf-8")
    cut = text.index("\n  - name: staffelpreise")
    return text[:cut] + "\n"


def install(work: Path, data: Path, outputs: str) -> Path:
    """A fresh copy of the shipped installation with the export in the catalog's inbox."""
    root = work / f"inst-{time.monotonic_ns()}"
    for folder in ("mappings", "templates", "schemas", "lookups"):
        shutil.copytree(REPO / folder, root / folder)
    if outputs == "produkte":
        (root / "mappings" / "sol-catalog.yaml").write_text(product_mapping(), encoding="utf-8")
    config = (REPO / "gateway.yaml").read_text(encoding="utf-8")
    (root / "gateway.yaml").write_text(config.replace("settle_seconds: 2", "settle_seconds: 0"), encoding="utf-8")
    warm(root / "gateway.yaml")
    (root / "inbox" / "sol-catalog").mkdir(parents=True, exist_ok=True)
    shutil.copy(data, root / "inbox" / "sol-catalog" / f"{STEM}.zip")
    return root


def same_files(ours: Path, theirs: Path) -> list[str]:
    """What differs between two folders of outputs (names, then contents)."""
    a, b = sorted(p.name for p in ours.iterdir()), sorted(p.name for p in theirs.iterdir())
    if a != b:
        return [f"files differ: gateway {a}, baseline {b}"]
    return [f"{name} differs" for name in a if (ours / name).read_bytes() != (theirs / name).read_bytes()]


def line(label: str, run: Run, count: int) -> str:
    return (f"  {label:32s} {run.seconds:7.2f} s  {count / run.seconds:7.0f} articles/s  cpu {run.cpu:7.2f} s  "
            f"peak RSS {run.mb:5.0f} MB")


def main() -> None:
    compile_gateway()
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, nargs="+", default=[20_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--outputs", choices=("all", "produkte"), default="all")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    for count in args.articles:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data = work / f"{STEM}.zip"
            started = time.perf_counter()
            generate(data, count)
            print(f"{count} articles × 3 variants, 3 warehouses (2 counted), 2 languages, 2 tiers: ZIP "
                  f"{data.stat().st_size / 1e6:.0f} MB, generated in {time.perf_counter() - started:.0f} s; "
                  f"outputs: {args.outputs}; median of {args.repeat}, interleaved")
            base: list[Run] = []
            eng: list[Run] = []
            for i in range(args.repeat):
                if not args.no_baseline:
                    out = work / f"baseline-{i}"
                    out.mkdir()
                    base.append(child(BASELINE, str(data), str(out), STEM, "1", args.outputs))
                root = install(work, data, args.outputs)
                eng.append(engine(root / "gateway.yaml"))
                if not args.no_baseline:
                    differences = same_files(root / "outbox" / "sol-catalog", work / f"baseline-{i}")
                    if differences:
                        raise SystemExit(f"the baseline's files are not the gateway's: {differences}")
                    shutil.rmtree(work / f"baseline-{i}")
                shutil.rmtree(root)
            if base:
                print(line("hand-written (csv + dicts)", medians(base), count) + "  files identical")
            print(line("gateway engine (sol-catalog)", medians(eng), count))
            if base:
                e, b = medians(eng), medians(base)
                print(f"  engine / baseline: {e.seconds / b.seconds:.2f}x wall, {e.cpu / b.cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
