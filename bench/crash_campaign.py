"""The long crash campaign: a real gateway killed with SIGKILL at random moments, hundreds of times.

    .venv/bin/python bench/crash_campaign.py [--kills 500] [--seed 1] [--service]

A stream of files for the rakuten-orders flow is dropped into a throw-away installation: new orders,
orders repeated in other files, resent identical files, and malformed files that must be quarantined
for their own fault (tests/campaign.py, ``Feed``). Each round drops a batch of files and starts the
real command, ``python -m gateway run --once`` (or, with ``--service``, the automatic mode
``gateway run``, which keeps running, watches the inbox and takes files dropped while it runs); once the
process has opened its journal (seen in /proc/<pid>/fd) it is killed with SIGKILL after a random delay
drawn over the time its backlog takes, so that kills land during real work. Now and then it is run to
completion. An importer thread takes outputs away the moment they appear, some of the time.

At the end everything is run to completion and checked against the inputs (tests/campaign.py,
``audit``): every valid order delivered exactly once with all its positions, counting the outputs the
importer took; only the malformed files quarantined, each once; every output listed in the journal,
none written twice, none partial (whole CSV, expected header and fields, final CRLF); no temporary file
visible to an importer. The summary line::

    kills=512 inputs=2130 lost=0 duplicated=0 partial=0 wrongly_quarantined=0 temp_visible=0 elapsed=612.3s

The exit status is 1 when a count other than kills and inputs is not 0, 2 when the campaign itself
could not finish (a run that would not complete, an unexpected exit status). The kill delays and files
are seeded; where exactly a kill lands still depends on the machine, so a failure names the round and
keeps the installation (and the gateway's log) for a look.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import campaign as cp  # noqa: E402 - tests/ holds the shared checks

SUMMARY = re.compile(r"(\d+) done, (\d+) duplicate, (\d+) quarantined(?:, [^,\n]*)?(?:, (\d+) waiting \(tried again)?")
FINISH_ATTEMPTS = 5
RUN_TIMEOUT = 300.0


class Campaign:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.install = cp.make_install(root / "gw", settle_seconds=args.settle)
        if args.service:
            with open(self.install.config, "a", encoding="utf-8") as config:
                config.write(f"watch: {args.watch}\nrescan_seconds: {args.rescan}\n")
        self.feed = cp.Feed(self.install, random.Random(args.seed + 1), malformed_rate=args.malformed)
        self.importer = cp.Importer(self.install.outbox(), cp.OutputFormat.of(self.install),
                                    random.Random(args.seed + 2))
        self.log_path = root / "gateway.log"
        self.kills = 0
        self.kills_mid_work = 0
        self.runs = 0
        self.rounds = 0
        self.per_file = 0.015  # seconds one input takes, learnt from runs that end by themselves
        # Kill delays are drawn over scale × the backlog's time; the scale shrinks when kills come too late
        # (the run had ended, or had nothing left to do) and grows when they land during work.
        self.scale = 1.0
        self.trouble: list[str] = []  # the campaign could not do what it meant to

    # -- processes -------------------------------------------------------------------------------------

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- run {self.runs}: gateway {' '.join(args)}\n".encode())
            return subprocess.Popen(cp.gateway_command(self.install, *args), stdout=subprocess.DEVNULL,
                                    stderr=log, stdin=subprocess.DEVNULL)

    def kill(self, proc: subprocess.Popen[bytes], delay: float) -> bool:
        """SIGKILL ``proc`` after ``delay`` seconds unless it ended before; whether the kill landed."""
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            # Not reaped (poll() said it runs), so the pid is still this process.
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.kills += 1
            if cp.pending_inputs(self.install) or cp.unfinished_entries(self.install):
                self.kills_mid_work += 1
                self.scale = min(3.0, self.scale * 1.03)
            else:
                self.scale = max(0.1, self.scale * 0.9)
            return True
        self.scale = max(0.1, self.scale * 0.9)
        return False

    def learn(self, seconds: float, inputs: int) -> None:
        if inputs >= 3:
            self.per_file = 0.8 * self.per_file + 0.2 * min(seconds / inputs, 0.5)

    def window(self) -> float:
        """How long the backlog takes: kill delays are drawn over this."""
        return self.scale * self.per_file * cp.pending_inputs(self.install) + 0.02

    # -- rounds ----------------------------------------------------------------------------------------

    def once_round(self) -> None:
        rng = self.rng
        self.feed.drop_batch(f"r{self.rounds:04d}", rng.randint(*self.args.batch))
        self.importer.take_probability = rng.choice((0.0, 0.5, 1.0))
        for _ in range(2 if rng.random() < 0.25 else 1):  # sometimes killed again while recovering
            backlog = cp.pending_inputs(self.install)
            window = self.window()
            proc = self.start("run", "--once")
            if not cp.wait_until_journal_open(proc):
                self.check_status(proc.wait(), "run --once ended before opening its journal")
                continue
            opened = time.monotonic()
            if not self.kill(proc, rng.uniform(0, window)):
                self.learn(time.monotonic() - opened, backlog)
                self.check_status(proc.returncode, "run --once")
        if rng.random() < self.args.finish_rate:
            self.finish_once()

    def service_round(self) -> None:
        rng = self.rng
        self.feed.drop_batch(f"r{self.rounds:04d}", rng.randint(*self.args.batch))
        self.importer.take_probability = rng.choice((0.0, 0.5, 1.0))
        window = self.window()
        proc = self.start("run")
        if not cp.wait_until_journal_open(proc):
            self.check_status(proc.wait(), "run (service) ended before opening its journal")
            return
        delay = rng.uniform(0, window)
        if rng.random() < 0.5:  # files arriving while it works
            first = rng.uniform(0, delay)
            time.sleep(first)
            self.feed.drop_batch(f"r{self.rounds:04d}s", rng.randint(1, 5))
            delay -= first
        if not self.kill(proc, delay):
            self.check_status(proc.returncode, "run (service) ended by itself")
        if rng.random() < self.args.finish_rate:
            self.finish_service()

    def check_status(self, status: int, what: str) -> None:
        if status not in (0, 1, 3, 4):  # done, quarantined, waiting for the next run, all skipped
            self.trouble.append(f"round {self.rounds}: {what}: exit status {status}")

    # -- running to completion ---------------------------------------------------------------------------

    def finish_once(self) -> None:
        """``run --once`` until nothing is left to do (exit 1 is fine when malformed files were quarantined, 3 when
        something waits for the next run)."""
        for _attempt in range(FINISH_ATTEMPTS):
            backlog = cp.pending_inputs(self.install)
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            proc = self.start("run", "--once")
            cp.wait_until_journal_open(proc)
            opened = time.monotonic()
            status = proc.wait(timeout=RUN_TIMEOUT)
            self.learn(time.monotonic() - opened, backlog)
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
            summary = SUMMARY.findall(text)
            if "Traceback" in text:
                self.trouble.append(f"round {self.rounds}: a traceback in a finishing run (see {self.log_path})")
            self.check_status(status, "finishing run --once")
            waiting = bool(summary and summary[-1][3])
            if not waiting and not cp.pending_inputs(self.install) and not cp.unfinished_entries(self.install):
                return
        self.trouble.append(f"round {self.rounds}: still unfinished after {FINISH_ATTEMPTS} runs of run --once")

    def finish_service(self) -> None:
        """The service until it has done everything, then SIGTERM: it must end by itself with status 0."""
        backlog = cp.pending_inputs(self.install)
        proc = self.start("run")
        cp.wait_until_journal_open(proc)
        opened = time.monotonic()
        deadline = opened + RUN_TIMEOUT
        idle = 0
        while time.monotonic() < deadline and proc.poll() is None:
            busy = cp.pending_inputs(self.install) or cp.unfinished_entries(self.install)
            idle = 0 if busy else idle + 1
            if idle >= 3:
                break
            time.sleep(0.05)
        self.learn(time.monotonic() - opened, backlog)
        if proc.poll() is not None:
            self.trouble.append(f"round {self.rounds}: the service ended by itself with status {proc.returncode}")
            return
        if idle < 3:
            self.trouble.append(f"round {self.rounds}: the service did not finish its backlog in {RUN_TIMEOUT}s")
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.trouble.append(f"round {self.rounds}: the service did not stop within 60 s of SIGTERM")
            return
        if status != 0:
            self.trouble.append(f"round {self.rounds}: the service ended with status {status} after SIGTERM")

    def finish(self) -> None:
        if self.args.service:
            self.finish_service()
        else:
            self.finish_once()

    # -- the campaign ------------------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        started = time.monotonic()
        first_failure: str | None = None
        self.importer.start()
        next_check = args.check_every
        try:
            while self.kills < args.kills:
                if len(self.trouble) >= 20:
                    self.trouble.append("stopped early: too much trouble")
                    break
                self.rounds += 1
                if args.service:
                    self.service_round()
                else:
                    self.once_round()
                if args.check_every and self.kills >= next_check:
                    next_check += args.check_every
                    self.finish()
                    result = cp.audit(self.install, self.feed, self.importer)
                    print(f"[{time.monotonic() - started:7.1f}s] round {self.rounds}: {result.line(self.kills)} "
                          f"mid_work={self.kills_mid_work}", file=sys.stderr, flush=True)
                    if not result.ok and first_failure is None:
                        first_failure = f"first seen by the check after round {self.rounds}"
                        print(result.details(), file=sys.stderr, flush=True)
            self.finish()
        finally:
            self.importer.stop()
        result = cp.audit(self.install, self.feed, self.importer)
        elapsed = time.monotonic() - started

        print(f"{result.line(self.kills)} elapsed={elapsed:.1f}s")
        mode = f"service (gateway run, watch={args.watch}, rescan={args.rescan}s)" if args.service else "run --once"
        print(f"mode={mode} seed={args.seed} rounds={self.rounds} runs={self.runs} "
              f"kills_mid_work={self.kills_mid_work} malformed={len(self.feed.malformed)} "
              f"resent={len(self.feed.resent)} orders={len(self.feed.expected_rows)} "
              f"outputs_taken={len(self.importer.taken)} outputs_left={len(self.importer.seen)} "
              f"per_input={self.per_file * 1000:.1f}ms window_scale={self.scale:.2f}")
        tracebacks = self.log_path.read_text(encoding="utf-8", errors="replace").count("Traceback")
        if tracebacks:
            result.notes.append(f"{tracebacks} traceback(s) in the gateway's log")
        for note in result.notes:
            print(f"note: {note}")
        if not result.ok:
            print(result.details())
            if first_failure:
                print(first_failure)
        for item in self.trouble[:20]:
            print(f"trouble: {item}")
        if not result.ok or self.trouble or args.keep:
            print(f"installation kept in {self.install.root} (gateway log: {self.log_path})")
        if not result.ok:
            return 1
        return 2 if self.trouble else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=500, help="SIGKILLs that must land on a running gateway")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--service", action="store_true",
                        help="kill the automatic mode (gateway run) instead of run --once")
    parser.add_argument("--watch", choices=("auto", "native", "polling"), default="auto",
                        help="--service: how the service watches the inbox (gateway.yaml 'watch')")
    parser.add_argument("--rescan", type=float, default=2.0,
                        help="--service: seconds between full rescans (gateway.yaml 'rescan_seconds')")
    parser.add_argument("--batch", type=int, nargs=2, default=(3, 12), metavar=("MIN", "MAX"),
                        help="files dropped per round")
    parser.add_argument("--settle", type=float, default=0.05, help="settle_seconds of the installation")
    parser.add_argument("--malformed", type=float, default=0.04, help="share of malformed files")
    parser.add_argument("--finish-rate", type=float, default=0.4,
                        help="chance that a round ends with a run to completion")
    parser.add_argument("--check-every", type=int, default=100,
                        help="full check after every N kills (0: only at the end)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to make the installation")
    parser.add_argument("--keep", action="store_true", help="keep the installation even when all is well")
    args = parser.parse_args()
    if not Path("/proc/self/fd").is_dir():
        print("needs /proc to see when the gateway has opened its journal", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="crash-campaign-", dir=args.workdir))
    status = Campaign(args, root).run()
    if status == 0 and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
