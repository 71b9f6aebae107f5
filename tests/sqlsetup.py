"""Installations with database flows for the tests: the shipped mappings, a gateway.yaml, SOL's tables filled."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gateway.clock import ManualClock
from gateway.config import Installation, load_installation
from gateway.engine import Engine, RunSummary

REPO = Path(__file__).resolve().parents[1]
ENV = "SOL_TEST_DATABASE_URL"
TODAY = ManualClock  # the golden examples' day is ManualClock's default, 2026-11-27


def unpack_example(flow: str, case: str, target: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """The batch of a golden example (its ZIP unpacked, or its batch folder), without the files in ``drop``."""
    folder = REPO / "examples" / flow / case
    target.mkdir(parents=True, exist_ok=True)
    zips = sorted((folder / "input").glob("*.zip"))
    if zips:
        with zipfile.ZipFile(zips[0]) as archive:
            archive.extractall(target)
    else:
        shutil.copytree(folder / "batch", target, dirs_exist_ok=True)
    for name in drop:
        path = target / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return target


@dataclass
class SqlInstall:
    root: Path

    @classmethod
    def create(cls, root: Path, flows: str, *, database: str = "sol", extra: str = "") -> SqlInstall:
        root.mkdir(parents=True, exist_ok=True)
        for folder in ("mappings", "templates", "lookups", "schemas", "sql"):
            shutil.copytree(REPO / folder, root / folder, dirs_exist_ok=True)
        (root / "gateway.yaml").write_text(
            "state: state\nquarantine: quarantine\narchive: { folder: archive, keep_days: 0 }\nsettle_seconds: 0\n"
            f"databases:\n  {database}:\n    url_env: {ENV}\n    staging_tables: [GatewayAuftragImport]\n"
            f"    lock_timeout_seconds: 2\n    connect_timeout_seconds: 3\n{extra}flows:\n{flows}",
            encoding="utf-8")
        return cls(root)

    @property
    def config(self) -> Path:
        return self.root / "gateway.yaml"

    def installation(self) -> Installation:
        return load_installation(self.config)

    def run(self, *flows: str, clock: ManualClock | None = None) -> RunSummary:
        inst = self.installation()
        engine = Engine(inst, clock=clock or ManualClock())
        try:
            return engine.run_once(inst.select(list(flows)))
        finally:
            engine.close()

    def outbox(self, flow: str) -> Path:
        return self.root / "outbox" / flow

    def outputs(self, flow: str) -> dict[str, bytes]:
        folder = self.outbox(flow)
        if not folder.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def by_kind(outputs: dict[str, bytes], stems: tuple[str, ...]) -> dict[str, bytes]:
    """Outputs named without their input's stem and number: rakuten_produkte_katalog_x_1.csv → rakuten_produkte.csv."""
    import re

    named: dict[str, bytes] = {}
    for name, data in outputs.items():
        short = name
        for stem in stems:
            short = re.sub(rf"_{re.escape(stem)}_\d+(\.\w+)$", r"\1", short)
        named[short] = data
    return named
