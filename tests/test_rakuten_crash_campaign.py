"""A seeded crash campaign through the web services: real gateway processes killed while they poll, import,
accept and confirm; the local Rakuten server's call log proves every sale imported once, every unit accepted
once and every shipment confirmed once (tests/rakuten_campaign.py; the long campaign is bench/rakuten_campaign.py).
"""

from __future__ import annotations

from pathlib import Path

from rakuten_campaign import run_campaign

SEED = 7
KILLS = 2
MAX_ROUNDS = 15  # where a kill lands depends on the machine: rounds go on until KILLS have landed


def test_crashes_while_polling_importing_accepting_and_confirming_lose_and_repeat_nothing(tmp_path: Path) -> None:
    campaign, audit, _seconds = run_campaign(tmp_path, SEED, rounds=MAX_ROUNDS, kills=KILLS)
    assert audit.ok, "\n".join([audit.line(campaign.kills, campaign.at_points), *audit.details[:20]])
    assert campaign.kills >= KILLS and audit.counts["units"] > 5 and audit.counts["shipments"] > 0
