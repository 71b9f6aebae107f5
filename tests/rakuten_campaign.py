"""A crash campaign through the Rakuten web services: real gateway processes killed with SIGKILL while they poll,
import, accept and confirm, against the local Rakuten server, whose own call log is the proof.

Each round, buyers buy (new Rakuten France sales, new Rakuten.de orders), SOL ships some of what
was imported (shipment files for sales whose units are accepted, and for imported Rakuten.de
orders), and the service sometimes misbehaves (a dropped connection after a call was applied, a
5xx, a truncated answer). Then the real command ``python -m gateway run --once`` runs and dies:
either at a named crash point (``GATEWAY_CRASH_AT``: the engine's points and the two around a
remote call, ``call-started`` and ``called``) or by SIGKILL after a random delay once it has
opened its journal; sometimes it is killed again while it recovers. Now and then it is run to
completion.

At the end everything is run to completion and checked (:meth:`Campaign.audit`):

* every sale is in the SOL order import exactly once, with all its units; every Rakuten.de order too;
* every unit is accepted exactly once, and no accept call was ever made for a unit a second time;
* every shipment is confirmed exactly once: each unit of a shipped sale (``settrackingpackageinfos``)
  and each shipped Rakuten.de order (``setOrderShipped``);
* no input is quarantined and every journal entry is final.

Used by tests/test_rakuten_crash_campaign.py (seeded, a few dozen kills) and bench/rakuten_campaign.py
(hundreds).
"""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from campaign import wait_until_journal_open
from conftest import order_xml
from rakuten_install import WebInstall, make_web_install
from rakuten_server import RakutenServer, make_sale

from gateway.journal import open_journal

FLOWS = ("rakuten-fr-sales", "rakuten-de-orders", "rakuten-shipping")
CRASH_POINTS = ("claimed", "registered", "started", "converted", "committed", "uploaded", "published", "finished",
                "call-started", "called")
FAULTS = (("acceptsale", "drop"), ("acceptsale", "500"), ("settrackingpackageinfos", "drop"),
          ("setOrderShipped", "drop"), ("getnewsales", "truncate"), ("getcurrentsales", "500"),
          ("getOrders", "500"), ("getshippinginformation", "drop"))
RUN_TIMEOUT = 120.0
FINISH_RUNS = 8


@dataclass
class Audit:
    counts: dict[str, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v == 0 for k, v in self.counts.items() if k not in ("sales", "units", "orders", "shipments"))

    def line(self, kills: int, at_points: int) -> str:
        return f"kills={kills} (at crash points {at_points}) " + " ".join(f"{k}={v}" for k, v in self.counts.items())


class Campaign:
    def __init__(self, root: Path, seed: int, *, sales: tuple[int, int] = (2, 6), orders: tuple[int, int] = (0, 2),
                 flows: tuple[str, ...] = FLOWS) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.server = RakutenServer(page_size=50).start()
        self.install: WebInstall = make_web_install(root / "gw", self.server, flows, timeout=2.0)
        self.flows = flows
        self.sales_range = sales
        self.orders_range = orders if "rakuten-de-orders" in flows else (0, 0)
        self.log_path = root / "gateway.log"
        self.sales: list[str] = []  # purchase ids, in the order they were bought
        self.orders: list[str] = []
        self.shipped_sales: set[str] = set()
        self.shipped_orders: set[str] = set()
        self.kills = 0
        self.at_points = 0
        self.runs = 0
        self.rounds = 0
        self.trouble: list[str] = []

    def close(self) -> None:
        self.server.stop()

    # -- what happens between runs ------------------------------------------------------------------

    def buy(self) -> None:
        for _ in range(self.rng.randint(*self.sales_range)):
            n = len(self.sales) + 1
            self.sales.append(self.server.add_sale(make_sale(n)).purchaseid)
        for _ in range(self.rng.randint(*self.orders_range)):
            number = f"500-{len(self.orders) // 1000:03d}-{len(self.orders) % 1000:03d}"
            self.server.add_order(number, order_xml(number))
            self.orders.append(number)

    def ship(self) -> None:
        """SOL ships some of what it has: sales whose units are all accepted, orders it imported."""
        if "rakuten-shipping" not in self.flows:
            return
        rows = []
        with self.server.lock:
            ready = [p for p in self.sales if p not in self.shipped_sales
                     and all(i.status == "ACCEPTED" for i in self.server.sales[p].items)]
        for purchase in self.rng.sample(ready, k=min(len(ready), self.rng.randint(0, 3))):
            rows.append(f"123;LS-{purchase};01.12.2026;{purchase};D9;DPD;Paket;T{purchase};01.12.2026;")
            self.shipped_sales.add(purchase)
        imported = {r["Referenznummer"] for r in self.install.sol_rows("outbox/sol-de")}
        for number in [o for o in self.orders if o in imported and o not in self.shipped_orders][:2]:
            rows.append(f"123;LS-{number};01.12.2026;{number};D1;DHL;Paket;T{number};01.12.2026;")
            self.shipped_orders.add(number)
        if rows:
            self.install.ship(f"versand_{self.rounds:04d}.csv", rows)

    def misbehave(self) -> None:
        self.server.faults.clear()
        if self.rng.random() < 0.5:
            action, kind = self.rng.choice(FAULTS)
            self.server.inject(action, kind, skip=self.rng.randint(0, 3))

    # -- runs --------------------------------------------------------------------------------------------

    def start(self, crash_at: str | None = None) -> subprocess.Popen[bytes]:
        self.runs += 1
        env = {**os.environ, **self.server.env()}
        env.pop("GATEWAY_CRASH_AT", None)
        if crash_at:
            env["GATEWAY_CRASH_AT"] = crash_at
        with open(self.log_path, "ab") as log:
            log.write(f"--- run {self.runs} (round {self.rounds}, crash at {crash_at or 'random'})\n".encode())
            return subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(self.install.config), "run",
                                     "--once"], stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                                    env=env)

    def round(self) -> None:
        self.rounds += 1
        self.buy()
        self.ship()
        self.misbehave()
        for _ in range(2 if self.rng.random() < 0.25 else 1):  # sometimes killed again while recovering
            if self.rng.random() < 0.5:
                point = self.rng.choice(CRASH_POINTS)
                proc = self.start(f"{point}:{self.rng.randint(1, 3)}")
                status = proc.wait(timeout=RUN_TIMEOUT)
                if status == -signal.SIGKILL:
                    self.kills += 1
                    self.at_points += 1
                else:
                    self.check(status, f"run --once crashing at {point}")
            else:
                proc = self.start()
                if not wait_until_journal_open(proc):
                    self.check(proc.wait(), "run --once ended before opening its journal")
                    continue
                try:
                    proc.wait(timeout=self.rng.uniform(0.0, 1.0))
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    self.kills += 1
                else:
                    self.check(proc.returncode, "run --once")
        if self.rng.random() < 0.2:
            self.finish()

    def check(self, status: int, what: str) -> None:
        if status not in (0, 3):  # 3: something waits (the service failed), taken by the next run
            self.trouble.append(f"round {self.rounds}: {what}: exit status {status} (see {self.log_path})")

    def finish(self) -> None:
        self.server.faults.clear()
        for _ in range(FINISH_RUNS):
            proc = self.start()
            status = proc.wait(timeout=RUN_TIMEOUT)
            if status == 0 and not self.unfinished():
                return
            self.check(status, "finishing run --once")
        self.trouble.append(f"round {self.rounds}: still unfinished after {FINISH_RUNS} runs (see {self.log_path})")

    def unfinished(self) -> list[dict[str, object]]:
        entries = self.journal()
        return [e for e in entries if e["state"] not in ("done", "duplicate", "failed")]

    def journal(self) -> list[dict[str, object]]:
        path = self.install.root / "state" / "journal.sqlite"
        if not path.exists():
            return []
        journal = open_journal(path)
        try:
            return [journal.as_dict(row) for row in journal.entries()]
        finally:
            journal.close()

    # -- the proof ---------------------------------------------------------------------------------------

    def audit(self) -> Audit:
        self.finish()
        if self.shipped_sales or self.shipped_orders or "rakuten-shipping" in self.flows:
            self.ship()  # a last shipment of what is accepted now, and finished
            self.finish()
        audit = Audit()
        c: Counter[str] = Counter()
        sol: dict[str, set[str]] = {}
        units: Counter[str] = Counter()
        for path in sorted((self.install.root / "outbox" / "sol").glob("*.csv")):
            text = path.read_bytes().decode("windows-1252")
            for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=";"):
                sol.setdefault(row["Referenznummer"], set()).add(path.name)
                if row["Artikelnummer"] != "VERSAND":  # the shipping position
                    units[row["Referenznummer"]] += int(row["Menge"])
        with self.server.lock:
            for purchase in self.sales:
                sale = self.server.sales[purchase]
                c["sales"] += 1
                c["units"] += len(sale.items)
                files = sol.get(purchase, set())
                if not files:
                    c["sales_lost"] += 1
                    audit.details.append(f"sale {purchase} is not in SOL")
                elif len(files) > 1 or units[purchase] != len(sale.items):
                    c["sales_duplicated"] += 1
                    audit.details.append(f"sale {purchase} in {sorted(files)} with {units[purchase]} units")
                for item in sale.items:
                    accepted = self.server.count("acceptsale", item.itemid)
                    if accepted != 1:
                        c["units_not_accepted_once"] += 1
                        audit.details.append(f"unit {item.itemid} accepted {accepted} times")
                    if purchase in self.shipped_sales and self.server.count("settrackingpackageinfos",
                                                                            item.itemid) != 1:
                        confirmed = self.server.count("settrackingpackageinfos", item.itemid)
                        c["shipments_not_confirmed_once"] += 1
                        audit.details.append(f"unit {item.itemid} of shipped {purchase}: {confirmed} confirmations")
            c["shipments"] = len(self.shipped_sales) + len(self.shipped_orders)
            made = [x for x in self.server.log if x.action == "acceptsale" and x.outcome != "denied"]
            repeated = Counter(x.key for x in made if not x.outcome.startswith("fault"))
            c["accept_calls_repeated"] = sum(n - 1 for n in repeated.values() if n > 1)
            if "rakuten-de-orders" in self.flows:
                de = {r["Referenznummer"] for r in self.install.sol_rows("outbox/sol-de")}
                c["orders"] = len(self.orders)
                c["orders_lost"] = sum(1 for o in self.orders if o not in de)
                for number in self.shipped_orders:
                    if self.server.count("setOrderShipped", number) != 1:
                        c["shipments_not_confirmed_once"] += 1
                        audit.details.append(f"order {number}: {self.server.count('setOrderShipped', number)} "
                                             "confirmations")
        entries = self.journal()
        c["quarantined"] = sum(1 for e in entries if e["state"] == "failed")
        c["unfinished"] = sum(1 for e in entries if e["state"] not in ("done", "duplicate", "failed"))
        c["campaign_trouble"] = len(self.trouble)
        audit.details += self.trouble
        for key in ("sales_lost", "sales_duplicated", "units_not_accepted_once", "accept_calls_repeated",
                    "shipments_not_confirmed_once", "orders_lost", "quarantined", "unfinished", "campaign_trouble"):
            c.setdefault(key, 0)
        audit.counts = dict(c)
        return audit


def run_campaign(root: Path, seed: int, rounds: int | None = None, kills: int | None = None,
                 progress: bool = False) -> tuple[Campaign, Audit, float]:
    """Rounds until ``kills`` have landed (at most ``rounds`` rounds); the campaign, its audit and its duration."""
    started = time.monotonic()
    campaign = Campaign(root, seed)
    try:
        while (rounds is None or campaign.rounds < rounds) and (kills is None or campaign.kills < kills):
            campaign.round()
            if progress and campaign.rounds % 10 == 0:
                print(f"  round {campaign.rounds}: {campaign.kills} kills, {len(campaign.sales)} sales", flush=True)
        audit = campaign.audit()
    finally:
        campaign.close()
    return campaign, audit, time.monotonic() - started
