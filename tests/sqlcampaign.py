"""Orders into SOL's staging table while the gateway is killed with SIGKILL, then the table checked.

Shared by tests/test_sql_staging.py (a short seeded campaign) and bench/sql_crash_campaign.py (the
long one). Each round drops a few order files (new orders, and orders already sent in an earlier
file), starts the real ``gateway run --once`` and kills it: at one of the named points around the
staging insert (``sql-inserted``: rows in, not committed; ``sql-committed``: committed, the journal
not told; ``published``, ``uploaded``, ``committed``: the engine's own) chosen at random, or after a
random delay once the process has opened its journal. At the end everything is run to completion
and the staging table is audited: every order exactly once, with all its positions; no input
quarantined; the key table holds exactly the outputs the journal delivered.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from campaign import wait_until_journal_open
from conftest import orders_file
from sqlsetup import ENV, SqlInstall
from test_crash_recovery import order_for, order_number, positions

POINTS = ("sql-inserted", "sql-committed", "published", "uploaded", "committed", "finished")

ORDERS_FLOW = """\
  rakuten-orders:
    mapping: mappings/rakuten-orders.yaml
    source: { folder: inbox/rakuten-orders, include: ["*.xml"] }
    outbox: { sql: sol, table: GatewayAuftragImport, key_column: GatewayKey }
    settings: { mandant: "123", belegart: VVA }
"""


def staging_database(postgres: Any, name: str) -> str:
    """A fresh database with the shipped staging script run in it; its URL."""
    postgres.fresh_database(name)
    script = (Path(__file__).resolve().parents[1] / "sql" / "staging-postgresql.sql").read_text(encoding="utf-8")
    with postgres.connect(name) as conn:
        conn.execute(script)
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway")
        conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO gateway")
    return str(postgres.url(name))


@dataclass
class Result:
    kills: int = 0
    rounds: int = 0
    orders: int = 0
    lost: int = 0
    duplicated: int = 0
    wrongly_quarantined: int = 0
    keys_mismatch: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"kills={self.kills} rounds={self.rounds} orders={self.orders} lost={self.lost} "
                f"duplicated={self.duplicated} wrongly_quarantined={self.wrongly_quarantined} "
                f"keys_mismatch={self.keys_mismatch}")

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrongly_quarantined or self.keys_mismatch or self.problems)


class StagingCampaign:
    def __init__(self, root: Path, url: str, seed: int, *, files_per_round: tuple[int, int] = (2, 4),
                 orders_per_file: tuple[int, int] = (1, 4), max_delay: float = 0.4) -> None:
        self.install = SqlInstall.create(root, ORDERS_FLOW)
        self.url = url
        self.rng = random.Random(seed)
        self.files_per_round = files_per_round
        self.orders_per_file = orders_per_file
        self.max_delay = max_delay
        self.expected: dict[str, int] = {}  # order number → positions
        self.next_order = 1
        self.files = 0
        self.result = Result()
        self.log = root / "gateway.log"
        self.env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASH_AT"} | {ENV: url}

    # -- feeding ----------------------------------------------------------------------------------

    def drop_round(self) -> None:
        inbox = self.install.root / "inbox" / "rakuten-orders"
        inbox.mkdir(parents=True, exist_ok=True)
        for _ in range(self.rng.randint(*self.files_per_round)):
            numbers = []
            for _ in range(self.rng.randint(*self.orders_per_file)):
                if self.expected and self.rng.random() < 0.2:  # an order already sent, in another file
                    numbers.append(self.rng.randint(1, self.next_order - 1))
                else:
                    numbers.append(self.next_order)
                    self.next_order += 1
            for n in numbers:
                self.expected.setdefault(order_number(n), positions(n))
            self.files += 1
            name = f"orders_{self.files:05d}.xml"
            (inbox / f".{name}.part").write_text(orders_file(*(order_for(n) for n in dict.fromkeys(numbers))),
                                                  encoding="utf-8")
            (inbox / f".{name}.part").rename(inbox / name)

    # -- running ----------------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gateway", "--config", str(self.install.config), "run", "--once"]

    def run_killed(self) -> None:
        """One run, killed at a named point or after a random delay."""
        env = dict(self.env)
        if self.rng.random() < 0.5:
            env["GATEWAY_CRASH_AT"] = f"{self.rng.choice(POINTS)}:{self.rng.randint(1, 3)}"
            delay = None
        else:
            delay = self.rng.uniform(0, self.max_delay)
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=log, env=env)
            try:
                if delay is not None:
                    wait_until_journal_open(proc)
                    try:
                        proc.wait(timeout=delay)
                    except subprocess.TimeoutExpired:
                        os.kill(proc.pid, signal.SIGKILL)
                status = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if status == -signal.SIGKILL:
            self.result.kills += 1
        elif status not in (0, 1):
            self.result.problems.append(f"round {self.result.rounds}: exit status {status}")

    def finish(self) -> None:
        for _ in range(5):
            done = subprocess.run(self.command(), capture_output=True, text=True, env=self.env, timeout=300,
                                  check=False)
            if done.returncode == 0:
                return
        self.result.problems.append(f"the last run still exits {done.returncode}: {done.stderr[-2000:]}")

    def run(self, kills: int) -> Result:
        while self.result.kills < kills:
            self.result.rounds += 1
            self.drop_round()
            self.run_killed()
            if self.rng.random() < 0.1:
                self.finish()
        self.finish()
        self.audit()
        return self.result

    # -- the audit --------------------------------------------------------------------------------

    def audit(self) -> None:
        import json

        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                rows = Counter(r[0] for r in conn.execute(sa.text("SELECT Referenznummer FROM GatewayAuftragImport")))
                keys = {r[0]: r[1] for r in conn.execute(sa.text("SELECT DeliveryKey, RowsInserted "
                                                                 "FROM GatewayDelivered"))}
                per_key = Counter(r[0] for r in conn.execute(sa.text("SELECT GatewayKey FROM GatewayAuftragImport")))
        finally:
            engine.dispose()
        self.result.orders = len(self.expected)
        self.result.lost = sum(1 for order in self.expected if rows[order] == 0)
        self.result.duplicated = sum(1 for order, n in self.expected.items() if rows[order] > n)
        self.result.duplicated += sum(1 for order in rows if order not in self.expected)
        partial = [o for o, n in self.expected.items() if 0 < rows[o] < n]
        if partial:
            self.result.problems.append(f"orders with positions missing: {partial[:5]}")
        self.result.keys_mismatch = sum(1 for key, n in keys.items() if per_key[key] != n)
        result = subprocess.run([*self.command()[:-2], "journal", "--json"], capture_output=True, text=True,
                                env=self.env, timeout=120, check=False)
        entries = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        self.result.wrongly_quarantined = sum(1 for e in entries if e["state"] == "failed")
        unfinished = [e["name"] for e in entries if e["state"] not in ("done", "duplicate")]
        if unfinished:
            self.result.problems.append(f"unfinished inputs: {unfinished[:5]}")
        delivered = sum(len(e["outputs"]) for e in entries)
        if delivered != len(keys):
            self.result.keys_mismatch += abs(delivered - len(keys))
