"""Rakuten.de orders into SOL's staging table on PostgreSQL: orders per second, beside the file outbox.

    .venv/bin/python bench/sql_staging.py [--orders 50000] [--repeat 3]

The orders of bench/orders.py (1 to 5 positions each) go through the real engine once into a
fresh staging table (sql/staging-postgresql.sql, on a private server: tests/postgres.py), and
once into the order import CSV of a folder outbox, each in a child process of its own. Every
value is converted to its column's type before the commit, and each output's rows and key go in
one transaction. Prints the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import REPO, engine
from orders import generate

sys.path.insert(0, str(REPO / "tests"))

from postgres import Postgres

OUTBOX = {
    "table": "{ sql: sol, table: GatewayAuftragImport, key_column: GatewayKey }",
    "folder": "{ folder: outbox }",
}


def install(root: Path, outbox: str, data: Path) -> Path:
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "rakuten-orders.yaml", root / "mappings")
    (root / "gateway.yaml").write_text(
        "settle_seconds: 0\narchive: { folder: archive, keep_days: 0 }\n"
        "databases:\n  sol:\n    url_env: SOL_DATABASE_URL\n"
        "flows:\n  rakuten-orders:\n    mapping: mappings/rakuten-orders.yaml\n"
        f"    source: {{ folder: inbox }}\n    outbox: {OUTBOX[outbox]}\n", encoding="utf-8")
    (root / "inbox").mkdir()
    os.link(data, root / "inbox" / "orders.xml")
    return root / "gateway.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    server = Postgres.create()
    script = (REPO / "sql" / "staging-postgresql.sql").read_text(encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data = work / "orders.xml"
            generate(data, args.orders)
            print(f"{args.orders} orders, {data.stat().st_size / 1e6:.0f} MB, median of {args.repeat} runs")
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in OUTBOX}
            rows = 0
            for i in range(args.repeat):
                name = f"staging_{i}"
                server.fresh_database(name)
                with server.connect(name) as conn:
                    conn.execute(script)
                    conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway")
                    conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO gateway")
                os.environ["SOL_DATABASE_URL"] = server.url(name)
                for outbox in OUTBOX:
                    root = work / f"{outbox}-{i}"
                    results[outbox].append(engine(install(root, outbox, data)))
                    shutil.rmtree(root)
                with server.connect(name) as conn:
                    rows = conn.execute("SELECT count(*), count(DISTINCT Referenznummer) "
                                        "FROM GatewayAuftragImport").fetchone()
                assert rows[1] == args.orders, rows
            print(f"staging table: {rows[0]} rows for {rows[1]} orders")
            for outbox, runs in results.items():
                seconds = statistics.median(t for t, _ in runs)
                peak = statistics.median(m for _, m in runs)
                print(f"into the {outbox:6s} {seconds:7.2f} s  {args.orders / seconds:7.0f} orders/s  "
                      f"peak RSS {peak:4.0f} MB")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
