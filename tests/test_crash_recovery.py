"""Nothing lost, nothing delivered twice: a real ``gateway run --once`` killed with SIGKILL, then restarted.

Every test runs the real command in its own process (``python -m gateway --config X run --once``),
kills it with SIGKILL (a power cut as far as the gateway can tell), restarts it, and then checks
the end state against what was dropped into the inbox:

- every order number appears in exactly one output and with exactly as many rows as the order has
  positions (never doubled, never missing), counting outputs an importer already took away;
- the inbox and the work folder are empty, no input is quarantined, every input is archived;
- the outbox holds no temporary (``.``-named) file, and holds exactly the outputs the journal lists;
- every journal entry is final (``done`` or ``duplicate``), with no output still pending.

Deterministic kills use ``GATEWAY_CRASH_AT=point[:n]`` (gateway/crashpoints.py); the campaign at
the end kills at random moments instead, between the named points too. It is marked ``campaign``:
left out of the README's test command, run by CI (``.ci/run``: ``pytest -m campaign``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Install, order_xml, orders_file, read_csv_rows

FLOW = "rakuten-orders"
REPO = Path(__file__).resolve().parents[1]

# Every crashpoint() in the engine, in the order an input passes them.
CRASH_POINTS = ("claimed", "registered", "started", "converted", "committed", "uploaded", "published", "finished")

# The randomized campaign: each iteration drops a batch of files, kills the gateway at a random moment
# (once, sometimes twice in a row), restarts it and checks everything delivered so far.
CAMPAIGN_SEED = 1234
CAMPAIGN_ITERATIONS = 20
CAMPAIGN_FILES_PER_ITERATION = (40, 70)  # inclusive range; sized so most kills land mid-batch
CAMPAIGN_MAX_KILL_DELAY = 0.3  # seconds after the process has opened its journal

RESTARTS = 3  # bound on runs after a crash until `run --once` exits 0
RUN_TIMEOUT = 60.0
SIGKILLED = -signal.SIGKILL


# -- orders whose size is known ----------------------------------------------------------------------


def order_number(n: int) -> str:
    return f"900-{n // 1000:03d}-{n % 1000:03d}"


def positions(n: int) -> int:
    """Rows the SOL import file gets for order ``n``: its articles, plus shipping when it costs something."""
    return 1 + n % 3 + (1 if n % 2 == 0 else 0)


def order_for(n: int) -> str:
    """Order ``n``, always with the same content (an order seen in two files is the same order)."""
    items = [
        {"product_art_no": f"{10000 + i}", "name": f"Artikel {i}", "qty": str(i), "price": "9.90", "tax": "1"}
        for i in range(1, 2 + n % 3)
    ]
    return order_xml(order_number(n), items=items, shipping="4.90" if n % 2 == 0 else "0")


@dataclass
class Stream:
    """What was dropped into the inbox, and what an importer took out of the outbox meanwhile."""

    install: Install
    files: list[str] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    expected_rows: dict[str, int] = field(default_factory=dict)  # order number → positions
    numbers: list[int] = field(default_factory=list)  # every order dropped so far, first drop order
    taken: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # output name → its rows

    def drop(self, name: str, numbers: list[int]) -> None:
        self.drop_content(name, orders_file(*(order_for(n) for n in numbers)))
        for n in numbers:
            if order_number(n) not in self.expected_rows:
                self.expected_rows[order_number(n)] = positions(n)
                self.numbers.append(n)

    def drop_content(self, name: str, content: str) -> None:
        self.install.drop(name, content)
        self.files.append(name)
        self.contents.append(content)

    def drop_standard_batch(self) -> None:
        """Three files with distinct orders, and one that repeats an order of another file."""
        self.drop("a.xml", [1, 2])
        self.drop("b.xml", [3, 4])
        self.drop("c.xml", [5])
        self.drop("d.xml", [6, 3])

    def importer_takes_everything(self) -> list[str]:
        """SOL's importer reads every published output and deletes it, the moment it sees it."""
        names = []
        for out in self.install.outputs():
            assert out.name not in self.taken, f"{out.name} was published a second time after the importer took it"
            self.taken[out.name] = read_csv_rows(out)
            out.unlink()
            names.append(out.name)
        return names


# -- running the real command ---------------------------------------------------------------------------


def _command(install: Install) -> list[str]:
    return [sys.executable, "-m", "gateway", "--config", str(install.config), "run", "--once"]


def _env(crash_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_CRASH_AT"}
    if crash_at:
        env["GATEWAY_CRASH_AT"] = crash_at
    return env


def run_gateway(install: Install, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(install), capture_output=True, text=True, timeout=RUN_TIMEOUT, env=_env(crash_at), check=False,
    )


def restart_until_done(install: Install) -> int:
    """Run ``run --once`` again until it exits 0 (bounded); return how many runs it took."""
    result = None
    for attempt in range(1, RESTARTS + 1):
        result = run_gateway(install)
        assert result.returncode >= 0, f"the restart died with signal {-result.returncode}:\n{result.stderr}"
        if result.returncode == 0:
            return attempt
    assert result is not None
    pytest.fail(f"`run --once` still exits {result.returncode} after {RESTARTS} restarts:\n{result.stderr}")


def _has_journal_open(pid: int) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd_dir / fd).endswith("journal.sqlite"):
                return True
        except OSError:
            continue
    return False


def run_and_kill(install: Install, delay: float, log: Path) -> int:
    """Start ``run --once``, kill it with SIGKILL ``delay`` seconds after it opened its journal; its exit status.

    The interpreter's start-up (~0.2 s of imports) touches nothing, so the clock starts when the
    engine is up; a kill that comes after the process ended finds nothing to kill (status 0).
    """
    with open(log, "ab") as err:
        proc = subprocess.Popen(_command(install), stdout=subprocess.DEVNULL, stderr=err, env=_env(None))
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while proc.poll() is None and not _has_journal_open(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(delay)
            # Not reaped before poll() reports an exit, so the pid cannot have been reused.
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:  # pragma: no cover - only when waiting for it failed
                proc.kill()
                proc.wait()


# -- what the installation looks like --------------------------------------------------------------------


def journal_entries(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def work_folder(install: Install) -> Path:
    return install.root / "state" / "work" / FLOW


def has_unfinished_work(install: Install) -> bool:
    """Something a restart must finish: a file in the inbox or work folder, or an unfinished journal entry."""
    in_inbox = any(p.name != ".gitkeep" for p in install.inbox().iterdir())
    work = work_folder(install)
    in_work = work.is_dir() and any(not p.name.startswith(".") for p in work.iterdir())
    journal = install.root / "state" / "journal.sqlite"
    unfinished = journal.exists() and any(e["state"] not in ("done", "duplicate") for e in journal_entries(install))
    return in_inbox or in_work or unfinished


def assert_every_order_delivered_exactly_once(stream: Stream) -> None:
    install = stream.install

    # Nothing waits, nothing is stuck, nothing was quarantined.
    assert [p.name for p in install.inbox().iterdir() if p.name != ".gitkeep"] == [], "files left in the inbox"
    work = work_folder(install)
    if work.is_dir():
        assert [p.name for p in work.iterdir() if not p.name.startswith(".")] == [], "inputs left in the work folder"
        stage = work / ".stage"
        leftovers = sorted(str(p.relative_to(stage)) for p in stage.rglob("*")) if stage.is_dir() else []
        assert leftovers == [], "staged outputs left behind"
    quarantine = install.quarantine
    quarantined = sorted(p.name for p in quarantine.rglob("*") if p.is_file()) if quarantine.is_dir() else []
    assert quarantined == [], "an input was quarantined"

    # Outputs appear whole: no temporary left visible to the importer.
    outbox_names = sorted(p.name for p in install.outbox().iterdir())
    temporaries = [n for n in outbox_names if n.startswith(".") and n != ".gitkeep"]
    assert temporaries == [], "temporary files left in the outbox"
    published = {p.name for p in install.outputs()}
    assert sorted(n for n in outbox_names if n != ".gitkeep") == sorted(published), "unexpected files in the outbox"

    # The journal: one final entry per input, every input archived, outputs known and present.
    entries = journal_entries(install)
    assert sorted(e["name"] for e in entries) == sorted(stream.files), "not exactly one journal entry per input"
    assert [(e["name"], e["state"], e["error"]) for e in entries if e["state"] not in ("done", "duplicate")] == []
    assert [(e["name"], e["pending_outputs"]) for e in entries if e["pending_outputs"]] == []
    not_archived = [e["name"] for e in entries if not (e["stored_path"] and Path(e["stored_path"]).is_file())]
    assert not_archived == [], "inputs missing from the archive"
    listed = [Path(o) for e in entries for o in e["outputs"]]
    assert len({p.name for p in listed}) == len(listed), "an output is listed twice in the journal"
    missing = [p.name for p in listed if not p.is_file() and p.name not in stream.taken]
    assert missing == [], "outputs listed in the journal are missing from the outbox"
    assert sorted(published | set(stream.taken)) == sorted(p.name for p in listed), (
        "the outbox (plus what the importer took) differs from the outputs the journal lists"
    )
    assert published.isdisjoint(stream.taken), "an output the importer took was written again"

    # Every order exactly once: all its positions, in one single output.
    rows_per_order: Counter[str] = Counter()
    outputs_per_order: defaultdict[str, set[str]] = defaultdict(set)
    all_rows = {name: read_csv_rows(install.outbox() / name) for name in published} | stream.taken
    for name, rows in all_rows.items():
        for row in rows:
            rows_per_order[row["Referenznummer"]] += 1
            outputs_per_order[row["Referenznummer"]].add(name)
    missing_orders = sorted(set(stream.expected_rows) - set(rows_per_order))
    assert missing_orders == [], "orders never delivered"
    wrong = {
        order: {"rows": rows_per_order[order], "positions": stream.expected_rows.get(order, 0)}
        for order in rows_per_order
        if rows_per_order[order] != stream.expected_rows.get(order, 0)
    }
    assert wrong == {}, "orders delivered twice (or with positions missing)"
    split = {order: sorted(names) for order, names in outputs_per_order.items() if len(names) > 1}
    assert split == {}, "orders delivered in more than one output"


# -- the tests -----------------------------------------------------------------------------------------


def test_every_crash_point_of_the_gateway_is_exercised_here() -> None:
    found = {
        m.group(1)
        for path in (REPO / "gateway").rglob("*.py")
        for m in re.finditer(r"""\bcrashpoint\(\s*["']([^"']+)["']\s*\)""", path.read_text(encoding="utf-8"))
    }
    # The staging-table destination's own points are exercised in tests/test_sql_staging.py, the two around a
    # web-service call in tests/test_flow_rakuten_fr_sales.py and the campaign of tests/rakuten_campaign.py.
    assert found == set(CRASH_POINTS) | {"sql-inserted", "sql-committed", "call-started", "called"}


def test_a_clean_run_delivers_every_order_exactly_once(install: Install) -> None:
    """The invariants hold without a crash (so a failure below is the crash's doing)."""
    stream = Stream(install)
    stream.drop_standard_batch()
    assert run_gateway(install).returncode == 0
    assert_every_order_delivered_exactly_once(stream)
    states = {e["name"]: e["state"] for e in journal_entries(install)}
    assert states == dict.fromkeys(("a.xml", "b.xml", "c.xml", "d.xml"), "done")


def test_the_check_notices_an_order_delivered_twice_or_not_at_all(install: Install) -> None:
    stream = Stream(install)
    stream.drop_standard_batch()
    assert run_gateway(install).returncode == 0
    first = install.outputs()[0]
    copy = first.with_name("auftraege_copy.csv")
    copy.write_bytes(first.read_bytes())
    with pytest.raises(AssertionError, match="outbox"):
        assert_every_order_delivered_exactly_once(stream)
    copy.unlink()
    first.unlink()
    with pytest.raises(AssertionError, match="missing"):
        assert_every_order_delivered_exactly_once(stream)


def state_after_crash(install: Install) -> dict[str, Any]:
    entries = journal_entries(install)
    work = work_folder(install)
    return {
        "states": [e["state"] for e in entries],
        "inputs in work folder": sum(1 for p in work.iterdir() if not p.name.startswith(".")) if work.is_dir() else 0,
        "published": len(install.outputs()),
        "temporaries": sum(1 for p in install.outbox().iterdir() if p.name.startswith(".") and p.name != ".gitkeep"),
        "recorded": sum(len(e["outputs"]) for e in entries),
    }


def expected_state_after_crash(point: str, n: int) -> dict[str, Any]:
    """Where the n-th input (one output each) stands when the process dies at ``point``."""
    before = n - 1  # inputs finished before
    current = {
        "claimed": [], "registered": ["waiting"], "started": ["processing"], "converted": ["processing"],
        "committed": ["delivering"], "uploaded": ["delivering"], "published": ["delivering"], "finished": ["done"],
    }[point]
    return {
        "states": ["done"] * before + current,
        "inputs in work folder": 1,
        "published": before + (1 if point in ("published", "finished") else 0),
        "temporaries": 1 if point == "uploaded" else 0,
        "recorded": before + (1 if point == "finished" else 0),
    }


@pytest.mark.parametrize("crash_at", [f"{point}:{n}" for point in CRASH_POINTS for n in (1, 2)])
def test_kill_at_crash_point_then_restart_delivers_every_order_exactly_once(install: Install, crash_at: str) -> None:
    stream = Stream(install)
    stream.drop_standard_batch()

    crashed = run_gateway(install, crash_at=crash_at)
    assert crashed.returncode == SIGKILLED, f"did not die at {crash_at}:\n{crashed.stderr}"
    point, _, nth = crash_at.partition(":")
    assert state_after_crash(install) == expected_state_after_crash(point, int(nth))

    restart_until_done(install)
    assert_every_order_delivered_exactly_once(stream)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_again_at_the_same_point_while_recovering_still_delivers_exactly_once(
    install: Install, point: str
) -> None:
    stream = Stream(install)
    stream.drop_standard_batch()

    for run in (1, 2):  # the second run recovers the first one's input first, then takes the rest
        crashed = run_gateway(install, crash_at=point)
        assert crashed.returncode == SIGKILLED, f"run {run} did not die at {point}:\n{crashed.stderr}"

    restart_until_done(install)
    assert_every_order_delivered_exactly_once(stream)


@pytest.mark.parametrize("nth", [1, 2])
def test_output_taken_by_importer_right_after_publishing_is_not_written_again(install: Install, nth: int) -> None:
    """Killed after the rename that published an output, before the journal recorded it.

    SOL's importer takes the output away before the restart; the restart must see that the
    temporary file is gone (so the output was published) and not write the output a second time.
    """
    stream = Stream(install)
    stream.drop_standard_batch()

    crashed = run_gateway(install, crash_at=f"published:{nth}")
    assert crashed.returncode == SIGKILLED, crashed.stderr
    taken = stream.importer_takes_everything()
    assert len(taken) == nth, "the crash should come right after the n-th output was published"
    recorded = {Path(o).name for e in journal_entries(install) for o in e["outputs"]}
    (unrecorded,) = set(taken) - recorded  # published, but the journal does not know yet

    restart_until_done(install)
    assert not (install.outbox() / unrecorded).exists(), "the output the importer took was written again"
    recorded = {Path(o).name for e in journal_entries(install) for o in e["outputs"]}
    assert unrecorded in recorded, "the output the importer took is not recorded as delivered"
    assert_every_order_delivered_exactly_once(stream)


@pytest.mark.campaign
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see when the engine has started")
def test_random_kills_during_a_stream_of_files_never_lose_or_double_an_order(install: Install) -> None:
    """Kills at random moments, between the named crash points too, with an importer taking outputs.

    The seed fixes the files (new orders, orders seen before, resent files), the kill delays and the
    importer's choices; where exactly a kill lands still depends on the machine's speed, so a failure
    names the iteration, and the log of the killed runs is in the test's tmp_path (campaign.log).
    """
    rng = random.Random(CAMPAIGN_SEED)
    stream = Stream(install)
    log = install.root.parent / "campaign.log"
    next_order = 1
    kills_mid_work = 0
    for iteration in range(CAMPAIGN_ITERATIONS):
        # A batch of files: mostly new orders, some orders seen before, now and then a resent file.
        for j in range(rng.randint(*CAMPAIGN_FILES_PER_ITERATION)):
            name = f"orders-{iteration:02d}-{j:02d}.xml"
            if stream.contents and rng.random() < 0.05:
                stream.drop_content(name, rng.choice(stream.contents))
                continue
            numbers = []
            for _ in range(rng.randint(1, 3)):
                if stream.numbers and rng.random() < 0.15:
                    numbers.append(rng.choice(stream.numbers))
                else:
                    numbers.append(next_order)
                    next_order += 1
            stream.drop(name, numbers)

        # Killed at a random moment, sometimes again while recovering; the importer may take outputs in between.
        for _kill in range(2 if rng.random() < 0.25 else 1):
            status = run_and_kill(install, rng.uniform(0, CAMPAIGN_MAX_KILL_DELAY), log)
            assert status in (0, SIGKILLED), f"iteration {iteration}: exit {status}, see {log}"
            if status == SIGKILLED and has_unfinished_work(install):
                kills_mid_work += 1
            if rng.random() < 0.5:
                stream.importer_takes_everything()

        restart_until_done(install)
        try:
            assert_every_order_delivered_exactly_once(stream)
        except AssertionError as exc:
            raise AssertionError(f"iteration {iteration} (seed {CAMPAIGN_SEED}): {exc}") from None

    # The campaign proves something only if the kills hit the gateway while it worked.
    assert kills_mid_work >= CAMPAIGN_ITERATIONS // 4, f"only {kills_mid_work} kills interrupted work"
