"""The catalog read from PostgreSQL beside the same catalog from a CSV export: time and peak memory.

    .venv/bin/python bench/sql_catalog.py [--articles 200000] [--repeat 3]

Generates the catalog export of bench/catalog.py (N articles × 3 variants, 3 warehouses, 2
languages, 2 tiers), loads it into SOL's KHK tables on a private PostgreSQL server
(tests/postgres.py, tests/soldb.py), and runs the real engine once on each: the export flow
(sol-catalog, the ZIP) and the database flow (sol-catalog-db, the shipped queries), each in a
fresh installation and a child process of its own. Prints the medians of time and of the child's
peak RSS (VmHWM): the database flow streams each table (server-side cursor, 5,000 rows at a time)
into the batch's files, so its memory must stay level with the export's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from catalog import generate
from harness import REPO, engine

sys.path.insert(0, str(REPO / "tests"))

from postgres import Postgres
from soldb import load_export

FLOWS = {
    "sol-catalog": "    source: { folder: inbox/sol-catalog, include: ['katalog*'] }\n",
    "sol-catalog-db": "    source: { sql: sol, name: katalog }\n",
}


def install(root: Path, flow: str, zip_path: Path) -> Path:
    for folder in ("mappings", "templates", "schemas", "lookups"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "gateway.yaml").write_text(
        "settle_seconds: 0\narchive: { folder: archive, keep_days: 0 }\n"
        "databases:\n  sol:\n    url_env: SOL_DATABASE_URL\n"
        f"flows:\n  {flow}:\n    mapping: mappings/{flow}.yaml\n{FLOWS[flow]}    outbox: {{ folder: outbox }}\n",
        encoding="utf-8")
    if flow == "sol-catalog":
        (root / "inbox" / "sol-catalog").mkdir(parents=True)
        os.link(zip_path, root / "inbox" / "sol-catalog" / zip_path.name)
    return root / "gateway.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    server = Postgres.create()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            zip_path = work / "katalog_bench.zip"
            started = time.perf_counter()
            generate(zip_path, args.articles)
            export = work / "export"
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(export)
            generated = time.perf_counter() - started
            server.fresh_database("sol")
            os.environ["SOL_DATABASE_URL"] = server.url("sol")
            import sqlalchemy as sa

            db = sa.create_engine(server.url("sol"))
            started = time.perf_counter()
            load_export(db, export)
            with db.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
            db.dispose()
            print(f"{args.articles} articles × 3 variants, 3 warehouses, 2 languages, 2 tiers: export generated in "
                  f"{generated:.0f} s, loaded into PostgreSQL in {time.perf_counter() - started:.0f} s; "
                  f"median of {args.repeat} runs each")
            results: dict[str, list[tuple[float, float]]] = {flow: [] for flow in FLOWS}
            for i in range(args.repeat):
                for flow in FLOWS:
                    root = work / f"{flow}-{i}"
                    results[flow].append(engine(install(root, flow, zip_path)))
                    outputs = sorted((root / "outbox").iterdir())
                    assert any(p.name.startswith("rakuten_produkte") for p in outputs), outputs
                    shutil.rmtree(root)
            for flow, runs in results.items():
                seconds = statistics.median(t for t, _ in runs)
                peak = statistics.median(m for _, m in runs)
                rate = args.articles / seconds
                print(f"{flow:15s} {seconds:7.1f} s  {rate:6.0f} articles/s  peak RSS {peak:4.0f} MB")
            db_t = statistics.median(t for t, _ in results["sol-catalog-db"])
            csv_t = statistics.median(t for t, _ in results["sol-catalog"])
            print(f"database / export: {db_t / csv_t:.2f}x")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
