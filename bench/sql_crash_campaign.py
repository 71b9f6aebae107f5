"""The long crash campaign for SOL's staging table: a real gateway killed with SIGKILL hundreds of times.

    .venv/bin/python bench/sql_crash_campaign.py [--kills 200] [--seed 1]

Orders go into the staging table of a private PostgreSQL server (sql/staging-postgresql.sql), and
``gateway run --once`` is killed at random: between the insert and the commit, after the commit
before the journal hears of it, at the engine's own points, or after a random delay
(tests/sqlcampaign.py). At the end every order must be in the table exactly once, with all its
positions, and nothing quarantined. The summary line::

    kills=200 rounds=… orders=… lost=0 duplicated=0 wrongly_quarantined=0 keys_mismatch=0 elapsed=…s

Exit status 1 when a count other than kills, rounds and orders is not 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from postgres import Postgres  # noqa: E402 - tests/ holds the server and the campaign
from sqlcampaign import StagingCampaign, staging_database  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    started = time.monotonic()
    server = Postgres.create()
    try:
        url = staging_database(server, "campaign")
        with tempfile.TemporaryDirectory() as tmp:
            campaign = StagingCampaign(Path(tmp) / "gw", url, args.seed)
            result = campaign.run(args.kills)
            print(f"{result.line()} elapsed={time.monotonic() - started:.1f}s")
            for problem in result.problems:
                print(f"  {problem}")
            if not result.ok:
                print((Path(tmp) / "gw" / "gateway.log").read_text(errors="replace")[-4000:], file=sys.stderr)
                sys.exit(1)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
