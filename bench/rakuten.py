"""The web-service flows against the local Rakuten server, each beside a baseline client in the same run.

    .venv/bin/python bench/rakuten.py sales [--count 10000] [--repeat 3] [--parallel 1]
    .venv/bin/python bench/rakuten.py stock [--count 100000] [--repeat 3] [--parallel 1]

``sales``: N Rakuten France sales (1–3 units each) fetched (``getnewsales`` and one
``getshippinginformation`` per sale), imported into the SOL order file and each unit accepted
(``acceptsale``, journaled before and after), by the real engine (flow ``rakuten-fr-sales``, no
pace limit). ``stock``: a SOL stock export of N articles sent to Rakuten.de as N ``editProduct``
calls (flow ``rakuten-de-stock``). The server (tests/rakuten_server.py) runs in this process, the
engine and the baseline each in a child of their own, measured alone (bench/harness.py: time and
peak memory, ``VmHWM``).

The baseline is the protocol and nothing else: a hand-written ``http.client`` loop on one keep-alive
connection that makes the same calls (for ``sales`` it reads the answer and pulls item ids out
with a regular expression; for ``stock`` it posts the values it is given), without journal,
mapping, SOL file, retries or safety. ``--parallel N`` lets the gateway keep N calls in flight
(the services' ``parallel_calls``; 1, one after the other, as shipped). The split shows where the
time goes: the seconds spent inside the server's handlers (parsing each request, applying it,
writing the answer) beside the run's total; what remains is the client's (the baseline's or the
gateway's) own work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, child

sys.path.insert(0, str(REPO / "tests"))  # the local Rakuten server lives with the tests

from rakuten_server import RakutenServer, make_sale

SERVICES = """\
settle_seconds: 0
services:
  rakuten-fr: {{ api: rakuten-fr, url_env: RAKUTEN_FR_URL, login_env: RAKUTEN_FR_LOGIN, token_env: RAKUTEN_FR_TOKEN,
                calls_per_second: 0, max_answer_mb: 500, parallel_calls: {parallel} }}
  rakuten-de: {{ api: rakuten-de, url_env: RAKUTEN_DE_URL, key_env: RAKUTEN_DE_KEY, calls_per_second: 0,
                parallel_calls: {parallel} }}
flows:
"""

FLOWS = {
    "sales": """\
  rakuten-fr-sales:
    mapping: mappings/rakuten-fr-orders.yaml
    source: { http: rakuten-fr, call: getnewsales }
    outbox: { folder: outbox }
    destinations:
      annahme: { http: rakuten-fr, call: acceptsale }
""",
    "stock": """\
  rakuten-de-stock:
    mapping: mappings/sol-stock.yaml
    source: { folder: inbox, include: ["bestand_*"], batch_marker: export.done }
    outbox: { http: rakuten-de, call: editProduct }
    same_content_is_duplicate: no
""",
}

ENGINE = r'''
import sys
from pathlib import Path
from gateway import Engine, load_installation
inst = load_installation(Path(sys.argv[1]))
summary = Engine(inst).run_once(inst.select([]), wait_for_settle=False)
assert summary.done == 1 and not summary.pending, summary
'''

SALES_BASELINE = r'''
import http.client, os, re, sys
from urllib.parse import urlencode, urlsplit
url = urlsplit(os.environ["RAKUTEN_FR_URL"])
conn = http.client.HTTPConnection(url.hostname, url.port)
auth = {"login": os.environ["RAKUTEN_FR_LOGIN"], "pwd": os.environ["RAKUTEN_FR_TOKEN"]}
def get(action, version, **params):
    conn.request("GET", "/sales_ws?" + urlencode({"action": action, "version": version, **auth, **params}))
    answer = conn.getresponse().read()
    assert b"errorresponse" not in answer[:300], answer[:300]
    return answer
answer = get("getnewsales", "2014-02-11")
sales = 0
for sale in re.finditer(rb"<sale>(.*?)</sale>", answer, re.S):
    body = sale.group(1)
    get("getshippinginformation", "2014-02-11", purchaseid=re.search(rb"<purchaseid>(\d+)<", body).group(1))
    for itemid in re.findall(rb"<itemid>(\d+)</itemid>", body):
        get("acceptsale", "2010-09-20", itemid=itemid)
    sales += 1
assert sales == int(sys.argv[1]), sales
'''

STOCK_BASELINE = r'''
import http.client, os, sys
from urllib.parse import urlencode, urlsplit
url = urlsplit(os.environ["RAKUTEN_DE_URL"])
conn = http.client.HTTPConnection(url.hostname, url.port)
key = os.environ["RAKUTEN_DE_KEY"]
for n in range(int(sys.argv[1])):
    body = urlencode({"key": key, "product_art_no": str(100000 + n), "stock": str(n % 50), "available": "1"})
    conn.request("POST", url.path + "products/editProduct", body,
                 {"Content-Type": "application/x-www-form-urlencoded"})
    answer = conn.getresponse().read()
    assert b"<success>1</success>" in answer, answer
'''


def installation(work: Path, kind: str, parallel: int) -> Path:
    root = work / f"inst-{time.monotonic_ns()}"
    (root / "mappings").mkdir(parents=True)
    mapping = "rakuten-fr-orders" if kind == "sales" else "sol-stock"
    shutil.copy(REPO / "mappings" / f"{mapping}.yaml", root / "mappings")
    (root / "gateway.yaml").write_text(SERVICES.format(parallel=parallel) + FLOWS[kind], encoding="utf-8")
    return root / "gateway.yaml"


def stock_export(folder: Path, count: int) -> None:
    """A SOL stock export of ``count`` articles without variants, one bin each (lager.csv + varianten.csv)."""
    folder.mkdir(parents=True)
    with open(folder / "lager.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write("Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand;Verfuegbarkeit\r\n")
        for n in range(count):
            fh.write(f"123;{100000 + n};0;HL;1;{n % 50};{n % 50}\r\n")
    (folder / "varianten.csv").write_text("Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer\r\n",
                                          encoding="utf-8")
    (folder / "export.done").write_text("bench", encoding="utf-8")


def fresh_server(kind: str, count: int) -> RakutenServer:
    server = RakutenServer().start()
    os.environ.update(server.env())
    if kind == "sales":
        for n in range(count):
            server.add_sale(make_sale(n))
    return server


def measure(kind: str, count: int, work: Path, engine: bool, parallel: int = 1) -> tuple[float, float, float, int]:
    """(seconds, peak MB, seconds inside the server's handlers, calls) of one run with a fresh server."""
    server = fresh_server(kind, count)
    try:
        if engine:
            config = installation(work, kind, parallel)
            if kind == "stock":
                stock_export(config.parent / "inbox" / "bestand_bench", count)
            seconds, mb = child(ENGINE, str(config))
            shutil.rmtree(config.parent)
        else:
            seconds, mb = child(SALES_BASELINE if kind == "sales" else STOCK_BASELINE, str(count))
        if kind == "sales":
            units = sum(len(s.items) for s in server.sales.values())
            assert server.count("acceptsale") == units, (server.count("acceptsale"), units)
        else:
            assert server.count("editProduct") == count
        return seconds, mb, server.handler_seconds, len(server.log)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("sales", "stock"))
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=1)
    args = ap.parse_args()
    count = args.count or (10_000 if args.kind == "sales" else 100_000)
    what = "sales" if args.kind == "sales" else "stock updates"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs: dict[str, list[tuple[float, float, float, int]]] = {"baseline": [], "gateway": []}
        for _ in range(args.repeat):
            runs["baseline"].append(measure(args.kind, count, work, engine=False))
            runs["gateway"].append(measure(args.kind, count, work, engine=True, parallel=args.parallel))
        engine = f"gateway engine ({args.parallel} in flight)"
        for name, label in (("baseline", "baseline (http.client, nothing else)"), ("gateway", engine)):
            r = runs[name]
            seconds = statistics.median(x[0] for x in r)
            mb = statistics.median(x[1] for x in r)
            server = statistics.median(x[2] for x in r)
            calls = r[0][3]
            print(f"{label:38s} {count:,} {what}: {seconds:6.1f} s, {count / seconds:8,.0f} {what}/s, "
                  f"peak {mb:.0f} MB; {calls:,} server log entries; inside the server's handlers {server:.1f} s "
                  f"({server / seconds:.0%} of the run)")
        ratio = statistics.median(x[0] for x in runs["gateway"]) / statistics.median(x[0] for x in runs["baseline"])
        print(f"gateway / baseline: {ratio:.2f}× the time (medians of {args.repeat})")


if __name__ == "__main__":
    main()
