"""What the long crash campaign (bench/crash_campaign.py) and the fault tests (test_faults.py) share.

- ``make_install``: a throw-away installation like conftest's ``install`` fixture, with a chosen settle time.
- ``Feed``: a stream of order files for the rakuten-orders flow (new orders, orders repeated in other
  files, resent identical files, malformed files), remembering what each file must lead to.
- ``Importer``: SOL's importer, a thread that sees every output the moment it appears in the outbox and
  sometimes takes it away (reads and deletes it); it notices an output written twice or read partial.
- ``audit``: the end state checked against the inputs, as *counts* (lost, duplicated, partial,
  wrongly_quarantined, temp_visible) with one line of detail per finding, so that a long campaign can
  report figures instead of stopping at the first assertion.

The order contents, the journal reader and the /proc probe are those of test_crash_recovery.py (imported,
not copied), so that both campaigns drop the same kind of orders and read the journal the same way.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from conftest import GATEWAY_YAML, REPO, Install, order_xml, orders_file
from test_crash_recovery import FLOW, _has_journal_open, journal_entries, order_for, order_number, positions

__all__ = [
    "FLOW", "SIGKILLED", "Audit", "Feed", "Importer", "OutputFormat", "audit", "gateway_command",
    "has_journal_open", "is_temporary", "journal_entries", "make_install", "malformed_content",
    "pending_inputs", "unfinished_entries", "wait_until_journal_open", "work_folder",
]

SIGKILLED = -9
has_journal_open = _has_journal_open

# Order numbers of malformed files start here (valid orders count up from 1 and never get that far), so an
# order of a malformed file found in an output is told apart from a valid one.
BAD_BASE = 900_000
MALFORMED_KINDS = ("truncated", "unknown-payment", "no-order-number", "doctype")
# Suffixes under which a file is still a temporary for an importer (besides a leading ".").
TEMPORARY_SUFFIXES = (".part", ".tmp", ".temp", ".partial", ".filepart", "~")


# -- the installation ----------------------------------------------------------------------------------------


def make_install(root: Path, settle_seconds: float = 0.0, mapping: Path | None = None) -> Install:
    """A fresh installation at ``root`` (created), laid out like the ``install`` fixture of conftest.py."""
    (root / "mappings").mkdir(parents=True)
    shutil.copy(mapping or REPO / "mappings" / "rakuten-orders.yaml", root / "mappings" / "rakuten-orders.yaml")
    config = GATEWAY_YAML.replace("settle_seconds: 0\n", f"settle_seconds: {settle_seconds}\n")
    assert f"settle_seconds: {settle_seconds}\n" in config
    (root / "gateway.yaml").write_text(config, encoding="utf-8")
    (root / "inbox" / FLOW).mkdir(parents=True)
    (root / "outbox" / FLOW).mkdir(parents=True)
    return Install(root)


def gateway_command(install: Install, *args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "--config", str(install.config), *args]


def wait_until_journal_open(proc: subprocess.Popen[Any], timeout: float = 60.0) -> bool:
    """Wait until ``proc`` has opened its journal (the engine is up); ``False`` if it ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if has_journal_open(proc.pid):
            return True
        time.sleep(0.005)
    return False


def work_folder(install: Install) -> Path:
    return install.root / "state" / "work" / FLOW


def pending_inputs(install: Install) -> int:
    """Inputs a run still has to take or finish, as far as the folders show (cheap: no journal)."""
    inbox = sum(1 for p in install.inbox().iterdir() if not p.name.startswith("."))
    work = work_folder(install)
    in_work = sum(1 for p in work.iterdir() if not p.name.startswith(".")) if work.is_dir() else 0
    return inbox + in_work


def unfinished_entries(install: Install) -> int:
    """Journal entries not in a final state, read directly (works while a gateway runs)."""
    path = install.root / "state" / "journal.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM inputs WHERE state NOT IN ('done', 'duplicate', 'failed')").fetchone()
    finally:
        db.close()
    return int(n)


# -- the output format ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    """What a complete output of the flow looks like: its header, encoding and delimiter."""

    columns: tuple[str, ...]
    encoding: str
    delimiter: str

    @classmethod
    def of(cls, install: Install) -> OutputFormat:
        mapping = yaml.safe_load((install.root / "mappings" / "rakuten-orders.yaml").read_text(encoding="utf-8"))
        (out,) = [o for o in mapping["outputs"] if o.get("format") == "csv" and not o.get("to")]
        return cls(tuple(out["columns"]), out.get("encoding", "utf-8"), out.get("delimiter", ";"))

    def parse(self, data: bytes) -> tuple[list[dict[str, str]], str | None]:
        """The complete rows of an output, and what is wrong with it (``None`` when it is whole)."""
        problem = None if data.endswith(b"\r\n") else "does not end with CRLF"
        try:
            text = data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            return [], f"not {self.encoding}: {exc}"
        table = list(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter))
        if not table or tuple(table[0]) != self.columns:
            return [], "the header is not the expected one"
        rows = []
        for number, values in enumerate(table[1:], 2):
            if len(values) != len(self.columns):
                problem = problem or f"line {number} has {len(values)} fields instead of {len(self.columns)}"
                continue
            rows.append(dict(zip(self.columns, values, strict=True)))
        if not rows:
            problem = problem or "no rows"
        return rows, problem


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


# -- the inputs ------------------------------------------------------------------------------------------------


def malformed_content(kind: str, n: int) -> str:
    """A file that must be quarantined for its own fault; ``n`` makes its content unique."""
    if kind == "truncated":  # cut off in the middle: broken XML
        text = orders_file(order_for(n), order_for(n + 1))
        return text[: len(text) * 2 // 3]
    if kind == "unknown-payment":  # a payment code the mapping's lookup does not know
        return orders_file(order_xml(order_number(n), payment="XYZ"), order_for(n + 1))
    if kind == "no-order-number":  # the key (and a required column) is missing
        return orders_file(order_for(n), order_xml(client={"client_id": str(n + 1)}, omit=("order_no",)))
    if kind == "doctype":  # foreign input with a DTD is refused
        head, rest = orders_file(order_for(n)).split("\n", 1)
        return f'{head}\n<!DOCTYPE result [<!ENTITY x "y">]>\n{rest}'
    raise ValueError(kind)


@dataclass
class Feed:
    """Files dropped into the inbox, and what each must lead to."""

    install: Install
    rng: random.Random
    files: list[str] = field(default_factory=list)
    malformed: dict[str, str] = field(default_factory=dict)  # file name → kind
    resent: set[str] = field(default_factory=set)  # files whose content was dropped before
    valid_contents: list[str] = field(default_factory=list)
    expected_rows: dict[str, int] = field(default_factory=dict)  # order number → positions
    numbers: list[int] = field(default_factory=list)
    bad_numbers: set[str] = field(default_factory=set)
    next_order: int = 1
    next_bad: int = BAD_BASE
    malformed_rate: float = 0.04
    resend_rate: float = 0.05
    repeat_rate: float = 0.15
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop_batch(self, prefix: str, count: int) -> list[str]:
        return [self.drop_one(f"{prefix}-{j:02d}.xml") for j in range(count)]

    def drop_one(self, name: str) -> str:
        with self._lock:
            rng = self.rng
            draw = rng.random()
            if draw < self.malformed_rate:
                kind = rng.choice(MALFORMED_KINDS)
                content = malformed_content(kind, self.next_bad)
                self.bad_numbers.update((order_number(self.next_bad), order_number(self.next_bad + 1)))
                self.next_bad += 2
                self.malformed[name] = kind
            elif draw < self.malformed_rate + self.resend_rate and self.valid_contents:
                content = rng.choice(self.valid_contents)
                self.resent.add(name)
            else:
                numbers = []
                for _ in range(rng.randint(1, 3)):
                    if self.numbers and rng.random() < self.repeat_rate:
                        numbers.append(rng.choice(self.numbers))
                    else:
                        numbers.append(self.next_order)
                        self.next_order += 1
                content = self.orders(numbers)
                self.valid_contents.append(content)
            self.install.drop(name, content)
            self.files.append(name)
            return name

    def orders(self, numbers: Sequence[int]) -> str:
        """A valid file with these orders; they count as expected from now on."""
        for n in numbers:
            if order_number(n) not in self.expected_rows:
                self.expected_rows[order_number(n)] = positions(n)
                self.numbers.append(n)
        return orders_file(*(order_for(n) for n in numbers))

    def drop_orders(self, name: str, numbers: Sequence[int]) -> str:
        with self._lock:
            content = self.orders(numbers)
            self.valid_contents.append(content)
            self.install.drop(name, content)
            self.files.append(name)
        return name


# -- the importer ---------------------------------------------------------------------------------------------


@dataclass
class Importer:
    """SOL's importer: looks at the outbox every ``interval`` seconds and takes each new output with
    ``take_probability`` (reads it whole, then deletes it), the way an importer polling a folder does."""

    outbox: Path
    fmt: OutputFormat
    rng: random.Random
    interval: float = 0.02
    take_probability: float = 0.0
    taken: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    seen: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # left in place: (inode, size, mtime)
    written_twice: list[str] = field(default_factory=list)
    _flagged: set[str] = field(default_factory=set, repr=False)
    partial: list[str] = field(default_factory=list)
    temp_visible: list[str] = field(default_factory=list)
    scans: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> Importer:
        self._thread = threading.Thread(target=self._loop, name="importer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.look()  # one last look, so that the audit and the importer agree

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.look()

    def look(self) -> None:
        with self._lock:
            self.scans += 1
            try:
                entries = list(os.scandir(self.outbox))
            except FileNotFoundError:
                return
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue  # an importer ignores hidden files: that is what makes them temporaries
                if is_temporary(name):
                    if name not in self.temp_visible:
                        self.temp_visible.append(name)
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)
                if name in self.taken or (name in self.seen and self.seen[name] != sig):
                    if name not in self._flagged:
                        self._flagged.add(name)
                        how = "published again after the importer took it" if name in self.taken else "changed"
                        self.written_twice.append(f"{name}: {how}")
                    continue
                if name in self.seen:
                    continue
                if self.rng.random() < self.take_probability:
                    data = Path(entry.path).read_bytes()
                    os.unlink(entry.path)
                    rows, problem = self.fmt.parse(data)
                    if problem:
                        self.partial.append(f"{name} (taken): {problem}")
                    self.taken[name] = rows
                else:
                    self.seen[name] = sig


# -- the audit ---------------------------------------------------------------------------------------------------


@dataclass
class Audit:
    """Findings, one line each, by the guarantee they break."""

    inputs: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    wrongly_quarantined: list[str] = field(default_factory=list)
    temp_visible: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth reporting that break no guarantee

    CATEGORIES = ("lost", "duplicated", "partial", "wrongly_quarantined", "temp_visible")

    def counts(self) -> dict[str, int]:
        return {c: len(getattr(self, c)) for c in self.CATEGORIES}

    @property
    def ok(self) -> bool:
        return not any(self.counts().values())

    def line(self, kills: int) -> str:
        return f"kills={kills} inputs={self.inputs} " + " ".join(f"{k}={v}" for k, v in self.counts().items())

    def details(self, limit: int = 20) -> str:
        out = []
        for c in self.CATEGORIES:
            for item in getattr(self, c)[:limit]:
                out.append(f"  {c}: {item}")
            if len(getattr(self, c)) > limit:
                out.append(f"  {c}: … {len(getattr(self, c)) - limit} more")
        return "\n".join(out)


def audit(install: Install, feed: Feed, importer: Importer | None = None) -> Audit:
    """The end state against the inputs (call it when no gateway runs and nothing is left to do).

    - lost: a valid order in no output; an input with no journal entry, not finished, or left in the
      inbox or work folder; an output the journal lists that is neither in the outbox nor was taken;
    - duplicated: an order with more rows than positions or in two outputs; an input with two journal
      entries; an output written again (after the importer took it, or changed in place); an output
      the journal does not list (a restart would not know it was delivered); an unknown order number;
    - partial: an output that is not a whole CSV with the expected header, fields and final CRLF (when
      it is read, or at the end); an order with fewer rows than positions; a stray file in the outbox;
    - wrongly_quarantined: a valid input quarantined (or failed); a malformed input not quarantined exactly
      once, or one of its orders delivered;
    - temp_visible: a temporary file left in the outbox, or one an importer could see under a final name.
    """
    fmt = importer.fmt if importer is not None else OutputFormat.of(install)
    result = Audit(inputs=len(feed.files))
    entries = journal_entries(install)
    _audit_inputs(feed, entries, result)
    _audit_leftovers(install, feed, entries, result)
    _audit_quarantine(install, feed, result)
    published, taken = _audit_outbox(install, importer, entries, result)
    _audit_orders(install.outbox(), feed, fmt, published, taken, result)
    return result


def _audit_inputs(feed: Feed, entries: list[dict[str, Any]], result: Audit) -> None:
    """Inputs: one final journal entry each, in the right place."""
    by_name: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        by_name[e["name"]].append(e)
    for name in feed.files:
        found = by_name.get(name, [])
        if not found:
            result.lost.append(f"{name}: no journal entry")
            continue
        if len(found) > 1:
            result.duplicated.append(f"{name}: {len(found)} journal entries")
        _audit_entry(name, found[-1], feed, result)
    for name in set(by_name) - set(feed.files):
        result.duplicated.append(f"{name}: journal entry for a file never dropped")


def _audit_entry(name: str, e: dict[str, Any], feed: Feed, result: Audit) -> None:
    """An input's last journal entry: a malformed input quarantined, a valid one done, delivered and archived."""
    if name in feed.malformed:
        if e["state"] != "failed":
            result.wrongly_quarantined.append(f"{name} ({feed.malformed[name]}): {e['state']}, not quarantined")
        return
    if e["state"] == "failed":
        result.wrongly_quarantined.append(f"{name}: quarantined: {e['error']}")
    elif e["state"] not in ("done", "duplicate"):
        result.lost.append(f"{name}: left {e['state']} ({e['error']})")
    elif e["pending_outputs"]:
        result.lost.append(f"{name}: outputs never delivered: {e['pending_outputs']}")
    elif not (e["stored_path"] and Path(e["stored_path"]).is_file()):
        result.lost.append(f"{name}: not in the archive")


def _audit_leftovers(install: Install, feed: Feed, entries: list[dict[str, Any]], result: Audit) -> None:
    """Nothing left in the inbox or the work folder; staged files left behind are noted, not counted."""
    left = [p.name for p in install.inbox().iterdir() if not p.name.startswith(".")]
    result.lost.extend(f"{n}: still in the inbox" for n in sorted(left))
    work = work_folder(install)
    if not work.is_dir():
        return
    result.lost.extend(f"{p.name}: still in the work folder" for p in sorted(work.iterdir())
                       if not p.name.startswith("."))
    stage = work / ".stage"
    ids = {e["id"]: e for e in entries}
    for folder in sorted(stage.iterdir()) if stage.is_dir() else []:
        e = ids.get(int(folder.name)) if folder.name.isdigit() else None
        what = "no journal entry"
        if e is not None:
            kind = f", malformed: {feed.malformed[e['name']]}" if e["name"] in feed.malformed else ""
            what = f"input {e['id']} {e['name']} ({e['state']}{kind})"
        result.notes.append(f"staged files left behind: .stage/{folder.name}/"
                            f"{sorted(p.name for p in folder.iterdir())} of {what}")


def _audit_quarantine(install: Install, feed: Feed, result: Audit) -> None:
    """Quarantine: the malformed files, each exactly once, with a reason."""
    folder = install.quarantine / FLOW
    stored = sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    quarantined = Counter(p.name.split("--", 1)[-1] for p in stored if not p.name.endswith(".reason.txt"))
    reasons = Counter(p.name.split("--", 1)[-1].removesuffix(".reason.txt") for p in stored
                      if p.name.endswith(".reason.txt"))
    for name, n in quarantined.items():
        if name not in feed.malformed:
            result.wrongly_quarantined.append(f"{name}: in the quarantine folder")
        elif reasons[name] != n:
            result.wrongly_quarantined.append(f"{name}: quarantined without its reason file")
    for name, kind in feed.malformed.items():
        if quarantined[name] != 1:
            result.wrongly_quarantined.append(f"{name} ({kind}): quarantined {quarantined[name]} times")
    if folder.is_dir() and any(p.name.startswith(".") for p in folder.iterdir()):
        result.notes.append("hidden temporaries in the quarantine folder: "
                            f"{sorted(p.name for p in folder.iterdir() if p.name.startswith('.'))[:5]}")


def _audit_outbox(install: Install, importer: Importer | None, entries: list[dict[str, Any]],
                  result: Audit) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """The outbox: only whole outputs, each listed in the journal once, none written twice.

    Returns the outputs published in the outbox and those the importer took (by name, with their rows)."""
    outbox = install.outbox()
    names = sorted(p.name for p in outbox.iterdir() if p.name != ".gitkeep")
    result.temp_visible.extend(f"{n}: temporary left in the outbox" for n in names if is_temporary(n))
    published = [n for n in names if not is_temporary(n) and n.endswith(".csv")]
    result.partial.extend(f"{n}: unexpected file in the outbox" for n in names
                          if not is_temporary(n) and not n.endswith(".csv"))
    taken = importer.taken if importer is not None else {}
    if importer is not None:
        _audit_importer(importer, outbox, published, result)
    listed = [Path(o).name for e in entries for o in e["outputs"]]
    for n, k in Counter(listed).items():
        if k > 1:
            result.duplicated.append(f"{n}: listed {k} times in the journal")
    for n in sorted(set(published) | set(taken)):
        if n not in listed:
            result.duplicated.append(f"{n}: an output the journal does not list")
    for n in sorted(set(listed) - set(published) - set(taken)):
        result.lost.append(f"{n}: listed in the journal, neither in the outbox nor taken by the importer")
    return published, taken


def _audit_importer(importer: Importer, outbox: Path, published: list[str], result: Audit) -> None:
    """What the importer saw while the gateway ran: outputs written twice or changed, temporaries, partial files."""
    result.duplicated.extend(importer.written_twice)
    result.partial.extend(importer.partial)
    result.temp_visible.extend(f"{n}: seen by the importer under that name" for n in importer.temp_visible)
    for n in published:
        st = (outbox / n).stat()
        if n in importer.seen and importer.seen[n] != (st.st_ino, st.st_size, st.st_mtime_ns):
            result.duplicated.append(f"{n}: changed after it was published")


def _audit_orders(outbox: Path, feed: Feed, fmt: OutputFormat, published: list[str],
                  taken: dict[str, list[dict[str, str]]], result: Audit) -> None:
    """Orders: each valid one with all its positions, in exactly one output."""
    rows_per_order: Counter[str] = Counter()
    outputs_per_order: defaultdict[str, set[str]] = defaultdict(set)
    all_rows = dict(taken)
    for n in published:
        rows, problem = fmt.parse((outbox / n).read_bytes())
        if problem:
            result.partial.append(f"{n}: {problem}")
        all_rows[n] = rows
    for n, rows in all_rows.items():
        for row in rows:
            rows_per_order[row["Referenznummer"]] += 1
            outputs_per_order[row["Referenznummer"]].add(n)
    for order, want in feed.expected_rows.items():
        got = rows_per_order.get(order, 0)
        if got == 0:
            result.lost.append(f"order {order}: never delivered")
        elif got > want:
            result.duplicated.append(f"order {order}: {got} rows for {want} positions")
        elif got < want:
            result.partial.append(f"order {order}: {got} rows for {want} positions")
    for order, outs in outputs_per_order.items():
        if order in feed.bad_numbers:
            result.wrongly_quarantined.append(f"order {order} of a malformed file delivered in {sorted(outs)}")
        elif order not in feed.expected_rows:
            result.duplicated.append(f"order {order}: never dropped, yet in {sorted(outs)}")
        elif len(outs) > 1:
            result.duplicated.append(f"order {order}: in {len(outs)} outputs {sorted(outs)}")
