"""The console's journal page on a journal of 100,000 inputs, beside the same queries straight on SQLite.

Runs ``gateway console`` and ``gateway run`` (the service) as real processes on a throw-away installation,
then measures, as medians over ``--repeat`` requests: the time to the first byte and to the whole page of
the journal's first page, a search by order number, a search by part of a file name, and the overview's JSON;
beside each, the same query run straight on the journal with ``sqlite3`` (the floor the page stands on).
Last, the console process's memory: its high-water mark (VmHWM) and resident size (VmRSS).

    .venv/bin/python bench/console.py [--entries 100000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from journalfill import fill_journal, key_of  # noqa: E402 - tests/ holds the journal both fill

GATEWAY_YAML = """\
settle_seconds: 0
flows:
  rakuten-orders:
    mapping: mappings/rakuten-orders.yaml
    source: { folder: inbox/rakuten-orders, include: ["*.xml"] }
    outbox: { folder: outbox/rakuten-orders }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(client: httpx.Client, url: str) -> tuple[float, float]:
    """Seconds to the first byte of the answer and to its last."""
    start = time.perf_counter()
    with client.stream("GET", url) as response:
        chunks = response.iter_raw()
        next(chunks, b"")
        first = time.perf_counter() - start
        for _chunk in chunks:
            pass
        assert response.status_code == 200, response.status_code
    return first, time.perf_counter() - start


def straight(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> float:
    start = time.perf_counter()
    db.execute(sql, params).fetchall()
    return time.perf_counter() - start


def memory(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0]) // 1024
    return found


PAGE = "SELECT * FROM inputs {where} ORDER BY id DESC LIMIT 51"
COUNT = "SELECT COUNT(*) FROM inputs {where}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gateway-bench-console-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        (root / "mappings").mkdir()
        shutil.copy(REPO / "mappings" / "rakuten-orders.yaml", root / "mappings")
        port = free_port()
        (root / "gateway.yaml").write_text(GATEWAY_YAML + f"console:\n  port: {port}\n", encoding="utf-8")
        started = time.perf_counter()
        fill_journal(root / "state" / "journal.sqlite", args.entries)
        print(f"journal with {args.entries:,} inputs written in {time.perf_counter() - started:.1f} s")
        gateway = [sys.executable, "-m", "gateway", "--config", str(root / "gateway.yaml")]
        processes.append(subprocess.Popen([*gateway, "run"], stderr=subprocess.DEVNULL))  # the service beside it
        console = subprocess.Popen([*gateway, "console"], stderr=subprocess.DEVNULL)
        processes.append(console)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    client.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            client.get("/")  # the session cookie of the local operator
            wanted = key_of(54_321)
            db = sqlite3.connect(root / "state" / "journal.sqlite")
            by_key = "WHERE id IN (SELECT input_id FROM record_keys WHERE key = ?)"
            by_name = "WHERE id IN (SELECT id FROM inputs INDEXED BY inputs_by_name WHERE name LIKE ? ESCAPE '\\')"
            cases = [
                ("journal, first page", "/journal", "", ()),
                ("search by order number", f"/journal?key={wanted}", by_key, (wanted,)),
                ("search by part of a name", "/journal?name=orders_0999", by_name, ("%orders\\_0999%",)),
            ]
            print(f"\n{'medians of ' + str(args.repeat):<28} {'first byte':>11} {'whole page':>11} "
                  f"{'SQLite alone':>13}")
            for label, url, where, params in cases:
                timed(client, url)  # warm
                runs = [timed(client, url) for _ in range(args.repeat)]
                sql = [straight(db, COUNT.format(where=where), params) + straight(db, PAGE.format(where=where),
                                                                                  params)
                       for _ in range(args.repeat)]
                print(f"{label:<28} {statistics.median(r[0] for r in runs) * 1000:>8.1f} ms "
                      f"{statistics.median(r[1] for r in runs) * 1000:>8.1f} ms "
                      f"{statistics.median(sql) * 1000:>10.1f} ms")
            timed(client, "/api/overview")
            runs = [timed(client, "/api/overview") for _ in range(args.repeat)]
            counts = [straight(db, "SELECT flow, state, COUNT(*) FROM inputs GROUP BY flow, state", ())
                      for _ in range(args.repeat)]
            print(f"{'overview JSON (polled)':<28} {statistics.median(r[0] for r in runs) * 1000:>8.1f} ms "
                  f"{statistics.median(r[1] for r in runs) * 1000:>8.1f} ms "
                  f"{statistics.median(counts) * 1000:>10.1f} ms")
            db.close()
        mem = memory(console.pid)
        print(f"\nconsole process (service running beside it): VmHWM {mem['VmHWM']} MB, VmRSS {mem['VmRSS']} MB")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
