"""SOL stock batch (lager.csv + varianten.csv) → Rakuten stock update: the shipped `sol-stock` flow
beside a hand-written converter.

    .venv/bin/python bench/stock.py [--articles 50000] [--repeat 3]

The batch is the catalog bench's export (N articles × 3 variants, stock in HL, AL and RETOURE:
9 stock rows per article); `sol-stock` reads only lager.csv and varianten.csv of it. The baseline
is what a programmer would write for this one job with the csv module: variant numbers and sums
in dicts, in memory. The engine's figure includes claim, journal, hashing, staging, fsync and
atomic delivery.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from catalog import generate
from harness import REPO, child, compile_gateway, engine_once, medians

BASELINE = r'''
import csv, io, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
LAGER = {"HL", "AL"}
with zipfile.ZipFile(src) as zf:
    with zf.open("varianten.csv") as raw:
        nummern = {(r["Artikelnummer"], r["AuspraegungID"]): r["Variantenartikelnummer"]
                   for r in csv.DictReader(io.TextIOWrapper(raw, "cp1252", newline=""), delimiter=";")
                   if r["Mandant"] == "123"}
    summen = {}
    with zf.open("lager.csv") as raw:
        for r in csv.DictReader(io.TextIOWrapper(raw, "cp1252", newline=""), delimiter=";"):
            if r["Mandant"] != "123":
                continue
            key = (r["Artikelnummer"], r["AuspraegungID"])
            menge = int(float(r["Bestand"].replace(".", "").replace(",", "."))) if r["Lagerkennung"] in LAGER else 0
            summen[key] = summen.get(key, 0) + menge
with open(dst, "w", encoding="utf-8", newline="") as fout:
    w = csv.writer(fout, delimiter=";")
    w.writerow(["product_art_no", "variant_art_no", "stock", "available", "price", "price_reduced",
                "price_reduced_type"])
    for (art, aid), menge in summen.items():
        if aid != "0" and (art, aid) not in nummern:
            continue
        bestand = min(max(menge, 0), 9999)
        w.writerow([art, nummern.get((art, aid), "") if aid != "0" else "", bestand, 1 if bestand > 0 else 0,
                    "", "", ""])
'''


def main() -> None:
    compile_gateway()
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "bestand_bench.zip"
        generate(data, args.articles)
        rows = args.articles * 9
        print(f"{args.articles} articles × 3 variants × 3 warehouses = {rows} stock rows, "
              f"ZIP {data.stat().st_size / 1e6:.0f} MB")
        base, eng = [], []
        for _ in range(args.repeat):
            base.append(child(BASELINE, str(data), str(work / "baseline.csv")))
            eng.append(engine_once(work, data, flow="sol-stock", mapping=REPO / "mappings" / "sol-stock.yaml",
                                   input_name="bestand_bench.zip"))
        b, e = medians(base), medians(eng)
        print(f"baseline (csv module, dicts): {b.seconds:.1f} s, {rows / b.seconds:,.0f} rows/s, cpu {b.cpu:.1f} s, "
              f"peak {b.mb:.0f} MB")
        print(f"gateway engine (sol-stock):   {e.seconds:.1f} s, {rows / e.seconds:,.0f} rows/s, cpu {e.cpu:.1f} s, "
              f"peak {e.mb:.0f} MB")
        print(f"ratio engine / baseline: {e.seconds / b.seconds:.2f}x wall, {e.cpu / b.cpu:.2f}x CPU "
              f"(medians of {args.repeat}, interleaved)")

if __name__ == "__main__":
    main()
