"""The long crash campaign through the Rakuten web services: hundreds of SIGKILLs while the gateway polls,
imports, accepts and confirms against the local Rakuten server.

    .venv/bin/python bench/rakuten_campaign.py [--kills 200] [--seed 1]

Rounds of tests/rakuten_campaign.py until ``--kills`` kills have landed (half at the named crash
points, among them the two around every remote call, half at random moments), then everything is
run to completion and checked against the server's own call log. The summary line::

    kills=203 (at crash points 98) sales=… units=… shipments=… sales_lost=0 sales_duplicated=0
    units_not_accepted_once=0 accept_calls_repeated=0 shipments_not_confirmed_once=0 orders_lost=0
    quarantined=0 unfinished=0 campaign_trouble=0 runs=… elapsed=…s

Exit status 1 when a count other than kills, sales, units, orders and shipments is not 0; the
installation and the gateway's log are then kept for a look.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from rakuten_campaign import run_campaign  # noqa: E402 - tests/ holds the campaign and the local server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gateway-rakuten-campaign-"))
    campaign, audit, seconds = run_campaign(root, args.seed, kills=args.kills, progress=True)
    print(f"{audit.line(campaign.kills, campaign.at_points)} runs={campaign.runs} elapsed={seconds:.1f}s")
    if not audit.ok:
        print("\n".join(audit.details[:30]))
        print(f"kept for a look: {root} (gateway's log: {root / 'gateway.log'})")
        return 1
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
