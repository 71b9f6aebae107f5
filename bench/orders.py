"""Rakuten.de orders → SOL order import CSV: the real engine beside a hand-written converter.

    .venv/bin/python bench/orders.py [--orders 50000] [--repeat 3]

Both run in child processes, so that peak memory (max RSS) is measured for each alone. The
baseline is what a programmer would write by hand for this one format (lxml iterparse with
clearing + the csv module), doing the same work: the same rows and columns, Windows-1252.
The engine's figure includes everything a real run does: claim, journal, hashing, duplicate
checks, staging, fsync, atomic delivery and archiving. Medians of --repeat runs are printed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from harness import REPO, Run, child, compile_gateway, engine_once, medians

BASELINE = r'''
import csv, sys
from lxml import etree
src, dst = sys.argv[1], sys.argv[2]
TAX = {"1": "19", "2": "7", "3": "0", "4": "10,7"}
PAY = {"PP": "VORKASSE", "CC": "KREDITKARTE", "PAL": "PAL", "INV": "RECHNUNG"}
def num(s, places=2):
    from decimal import Decimal, ROUND_HALF_UP
    return str(Decimal(s).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)).replace(".", ",")
def date(s):
    d = s[:10]
    return f"{d[8:10]}.{d[5:7]}.{d[0:4]}"
with open(dst, "w", encoding="cp1252", newline="") as fh:
    w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
    w.writerow(["Mandant", "Belegart", "Referenznummer", "Belegdatum", "A0Name1", "A0Strasse", "A0PLZ", "A0Ort",
                "A1Name1", "Zahlungskond", "Position", "Artikelnummer", "Bezeichnung1", "Menge", "Einzelpreis",
                "Steuersatz"])
    for _, el in etree.iterparse(src, tag="order", resolve_entities=False, no_network=True):
        c = el.find("client"); d = el.find("delivery_address")
        head = ["123", "VVA", el.findtext("order_no"), date(el.findtext("created")),
                c.findtext("first_name") + " " + c.findtext("last_name"),
                c.findtext("street") + " " + c.findtext("street_no"), c.findtext("zip_code"), c.findtext("city"),
                d.findtext("first_name") + " " + d.findtext("last_name"), PAY[el.findtext("payment")]]
        pos = 0
        for it in el.iter("item"):
            pos += 1
            w.writerow(head + [pos, it.findtext("product_art_no"), it.findtext("name"), num(it.findtext("qty"), 0),
                               num(it.findtext("price")), TAX[it.findtext("tax")]])
        if el.findtext("shipping") not in ("", "0", "0.00"):
            pos += 1
            w.writerow(head + [pos, "VERSAND", "Versandkosten", "1", num(el.findtext("shipping")), "19"])
        el.clear(keep_tail=True)
        while el.getprevious() is not None:
            del el.getparent()[0]
'''

NAMES = ["Müller", "Schäfer", "Weiß", "Groß", "Becker", "Hoffmann", "Öztürk", "Krüger"]


def generate(path: Path, orders: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n<result><success>1</success><orders>\n')
        for n in range(orders):
            items = []
            for i in range(rnd.randint(1, 5)):
                price = f"{rnd.randint(100, 99999) / 100:.2f}"
                items.append(
                    f"<item><item_id>{i + 1}</item_id><product_id>{rnd.randint(1, 10**6)}</product_id>"
                    f"<variant_id>0</variant_id><product_art_no>{rnd.randint(10000, 99999)}</product_art_no>"
                    f"<name>{escape('Artikel „Premium“ & Co')} {i}</name><name_add></name_add>"
                    f"<qty>{rnd.randint(1, 4)}</qty><price>{price}</price><price_sum>{price}</price_sum>"
                    f"<tax>{rnd.choice('12')}</tax></item>"
                )
            name = rnd.choice(NAMES)
            addr = (f"<gender>Herr</gender><first_name>Max</first_name><last_name>{name}</last_name>"
                    f"<company></company><street>Lindenstraße</street><street_no>{n % 200}</street_no>"
                    f"<address_add></address_add><zip_code>{10000 + n % 89999}</zip_code><city>Berlin</city>"
                    f"<country>DE</country>")
            fh.write(
                f"<order><order_no>{n:03d}-{rnd.randint(100, 999)}-{rnd.randint(100, 999)}</order_no>"
                f"<total>99.00</total><shipping>4.90</shipping><max_shipping_date>2026-11-29 18:00:00"
                f"</max_shipping_date><payment>{rnd.choice(['PP', 'CC', 'PAL', 'INV'])}</payment>"
                f"<status>pending</status><invoice_no></invoice_no><comment_client>Bitte klingeln</comment_client>"
                f"<comment_merchant></comment_merchant><created>2026-11-27 09:14:03</created>"
                f"<client><client_id>{n}</client_id>{addr}<email>k{n}@example.org</email><phone>030</phone></client>"
                f"<delivery_address>{addr}</delivery_address><items>{''.join(items)}</items></order>\n"
            )
        fh.write("</orders></result>\n")


def main() -> None:
    compile_gateway()
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "orders.xml"
        generate(data, args.orders)
        size_mb = data.stat().st_size / 1e6
        print(f"{args.orders} orders, {size_mb:.0f} MB, median of {args.repeat} runs, interleaved")
        base: list[Run] = []
        eng: list[Run] = []
        for _ in range(args.repeat):
            base.append(child(BASELINE, str(data), str(work / "baseline.csv")))
            eng.append(engine_once(work, data, flow="rakuten-orders", input_name="orders.xml",
                                   mapping=REPO / "mappings" / "rakuten-orders.yaml"))
        for label, runs in (("hand-written iterparse+csv", base), ("gateway engine", eng)):
            m = medians(runs)
            print(f"{label:28s} {m.seconds:6.2f} s  {args.orders / m.seconds:8.0f} orders/s  cpu {m.cpu:6.2f} s  "
                  f"peak RSS {m.mb:5.0f} MB")
        e, b = medians(eng), medians(base)
        print(f"engine / baseline: {e.seconds / b.seconds:.2f}x wall, {e.cpu / b.cpu:.2f}x CPU")

if __name__ == "__main__":
    main()
