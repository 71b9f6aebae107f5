"""SOL articles (artikel.csv) → Rakuten.de product CSV: the real engine beside a hand-written converter.

    .venv/bin/python bench/products.py [--articles 200000] [--repeat 3]

Both run in child processes, each measured alone (time, peak RSS). The baseline is what a
programmer would write for this one file with the csv module, doing the same work (same
columns, same cuts, same lookup). The engine's figure includes everything a real run does:
claim, journal, hashing, staging, fsync, atomic delivery and archiving.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from harness import REPO, Run, child, compile_gateway, engine_once, medians

MAPPING = REPO / "bench" / "products-mapping.yaml"
HEADER = ("Mandant;Artikelnummer;Bezeichnung1;Bezeichnung2;Matchcode;Langtext;LangtextHTML;Artikelgruppe;"
          "Hauptartikelgruppe;Vaterartikelgruppe;Hersteller;HArtikelnummer;Steuerklasse;Basismengeneinheit;"
          "Verkaufsmengeneinheit;Gewicht;Gewichtseinheit;EANNummer;Stuecklistentyp;Variante;Artikelart;Aktiv;"
          "IstVerkaufsartikel;MetaTitel;MetaBeschreibung;MetaKeywords;GeaendertAm")

BASELINE = r'''
import csv, sys
src, dst = sys.argv[1], sys.argv[2]
MWST = {"1": "1", "2": "2", "3": "3"}
COLS = ["id", "variante_zu_id", "artikelnummer", "produkt_bestellbar", "produktname", "hersteller", "beschreibung",
        "variante", "variantenwert", "isbn_ean", "lagerbestand", "preis", "grundpreis_inhalt", "grundpreis_einheit",
        "reduzierter_preis", "bezug_reduzierter_preis", "mwst_klasse", "bestandsverwaltung_aktiv", "bild1", "bild2",
        "bild3", "bild4", "bild5", "kategorien", "lieferzeit", "tradoria_kategorie", "sichtbar"]
with open(src, encoding="cp1252", newline="") as fin, open(dst, "w", encoding="utf-8", newline="") as fout:
    w = csv.writer(fout, delimiter=";", lineterminator="\n")
    w.writerow(COLS)
    for r in csv.DictReader(fin, delimiter=";"):
        w.writerow([r["Artikelnummer"], "", r["Artikelnummer"][:30], "1", r["Bezeichnung1"][:100],
                    r["Hersteller"][:30], r["LangtextHTML"], "", "", r["EANNummer"], "0", "", "", "", "", "",
                    MWST[r["Steuerklasse"]], "1", "", "", "", "", "", r["Artikelgruppe"], "", "", "1"])
'''

def generate(path: Path, articles: int, seed: int = 11) -> None:
    rnd = random.Random(seed)
    makers = ["Müller & Söhne", "Weiß GmbH", "Öko-Gläser AG", "Groß & Klein", "Bäckerei-Bedarf"]
    with open(path, "w", encoding="cp1252", newline="") as fh:
        fh.write(HEADER + "\r\n")
        for n in range(articles):
            text = f"Spülmaschinenfest; für {rnd.randint(1, 12)} Personen. Maße {rnd.randint(5, 90)} cm."
            fh.write(
                f'123;{100000 + n};Kaffeebecher „Büro“ Nr. {n};Steingut, 300 ml;BECHER{n};"{text}";'
                f'"<p>{text}</p>";{rnd.randint(100, 999):04d};01;01;{rnd.choice(makers)};MS-{n};'
                f"{rnd.choice('1112')};Stk;Stk;0,{rnd.randint(100, 999)};kg;400638{n:07d};0;0;0;-1;-1;"
                f"Becher kaufen;Becher aus Steingut;becher,kaffee;14.11.2026\r\n"
            )


def main() -> None:
    compile_gateway()
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, nargs="+", default=[200_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for count in args.articles:
            data = work / "artikel.csv"
            generate(data, count)
            print(f"{count} articles, {data.stat().st_size / 1e6:.0f} MB (Windows-1252), median of {args.repeat}, "
                  "interleaved")
            runs: dict[str, list[Run]] = {"baseline": [], "engine": []}
            for _ in range(args.repeat):
                runs["baseline"].append(child(BASELINE, str(data), str(work / "out.csv")))
                runs["engine"].append(engine_once(work, data, flow="products", mapping=MAPPING,
                                                   input_name="artikel.csv"))
            for label, results in (("hand-written csv module", runs["baseline"]), ("gateway engine", runs["engine"])):
                m = medians(results)
                print(f"  {label:24s} {m.seconds:6.2f} s  {count / m.seconds:9.0f} records/s  cpu {m.cpu:6.2f} s  "
                      f"peak RSS {m.mb:6.0f} MB")
            e, b = medians(runs["engine"]), medians(runs["baseline"])
            print(f"  engine / baseline: {e.seconds / b.seconds:.2f}x wall, {e.cpu / b.cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
