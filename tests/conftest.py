"""Shared fixtures: a real installation in a temporary folder, and Rakuten order files built to order."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli

if TYPE_CHECKING:
    from postgres import Postgres

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ORDERS = REPO / "examples" / "rakuten-orders" / "sample" / "input" / "orders_de.xml"


GATEWAY_YAML = """\
state: state
quarantine: quarantine
archive:
  folder: archive
  keep_days: 30
settle_seconds: 0
flows:
  rakuten-orders:
    mapping: mappings/rakuten-orders.yaml
    source:
      folder: inbox/rakuten-orders
      include: ["*.xml"]
    outbox:
      folder: outbox/rakuten-orders
"""


@dataclass
class Install:
    """A throw-away installation laid out like the shipped one."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "gateway.yaml"

    def inbox(self, flow: str = "rakuten-orders") -> Path:
        return self.root / "inbox" / flow

    def outbox(self, flow: str = "rakuten-orders") -> Path:
        return self.root / "outbox" / flow

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def drop(self, name: str, content: str | bytes, flow: str = "rakuten-orders") -> Path:
        """Put a complete file into the inbox the way a careful producer does (temp name, rename)."""
        inbox = self.inbox(flow)
        inbox.mkdir(parents=True, exist_ok=True)
        temp = inbox / f".{name}.part"
        temp.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        final = inbox / name
        temp.rename(final)
        return final

    def outputs(self, flow: str = "rakuten-orders") -> list[Path]:
        """Published outputs only (not temporaries, not markers)."""
        folder = self.outbox(flow)
        if not folder.exists():
            return []
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix == ".csv")

    def cli(self, *args: str, input: str | None = None) -> Result:
        """Run the command line in-process, as ``gateway --config <this> ARGS``."""
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], input=input, catch_exceptions=False)

    def process(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``gateway`` command in its own process."""
        import os

        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False,
        )


@pytest.fixture
def install(tmp_path: Path) -> Install:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "rakuten-orders.yaml", root / "mappings")
    (root / "gateway.yaml").write_text(GATEWAY_YAML, encoding="utf-8")
    (root / "inbox" / "rakuten-orders").mkdir(parents=True)
    (root / "outbox" / "rakuten-orders").mkdir(parents=True)
    return Install(root)


def order_xml(
    order_no: str = "100-200-300",
    *,
    client: dict[str, str] | None = None,
    delivery: dict[str, str] | None = None,
    items: list[dict[str, str]] | None = None,
    coupon: dict[str, str] | None = None,
    shipping: str = "4.90",
    payment: str = "PAL",
    status: str = "pending",
    created: str = "2026-11-27 09:14:03",
    extra: str = "",
    omit: tuple[str, ...] = (),
) -> str:
    """One <order> element; values are escaped, ``omit`` leaves elements out entirely."""
    client = {
        "client_id": "1", "gender": "Herr", "first_name": "Max", "last_name": "Muster", "company": "",
        "street": "Hauptstraße", "street_no": "5", "address_add": "", "zip_code": "10115", "city": "Berlin",
        "country": "DE", "email": "max@example.org", "phone": "030 1", **(client or {}),
    }
    delivery = {
        "gender": "Herr", "first_name": "Max", "last_name": "Muster", "company": "", "street": "Hauptstraße",
        "street_no": "5", "address_add": "", "zip_code": "10115", "city": "Berlin", "country": "DE",
        **(delivery or {}),
    }
    items = items or [{"product_art_no": "10001", "name": "Kaffeebecher", "qty": "1", "price": "12.90", "tax": "1"}]

    def fields(d: dict[str, str]) -> str:
        return "".join(f"<{k}>{escape(v)}</{k}>" for k, v in d.items() if k not in omit)

    item_xml = "".join(
        "<item>" + fields({"item_id": str(i), "product_id": "1", "variant_id": "0", "name_add": "",
                           "price_sum": it.get("price", "0"), **it}) + "</item>"
        for i, it in enumerate(items, 1)
    )
    head = {
        "order_no": order_no, "total": "0", "shipping": shipping, "max_shipping_date": "2026-11-29 18:00:00",
        "payment": payment, "status": status, "invoice_no": "", "comment_client": "", "comment_merchant": "",
        "created": created,
    }
    coupon_xml = f"<coupon>{fields(coupon)}</coupon>" if coupon else ""
    return (
        f"<order>{fields(head)}<client>{fields(client)}</client>"
        f"<delivery_address>{fields(delivery)}</delivery_address><items>{item_xml}</items>{coupon_xml}{extra}</order>"
    )


def orders_file(*orders: str) -> str:
    """A whole getOrders answer around the given <order> elements."""
    body = "".join(orders)
    return textwrap.dedent(f"""\
        <?xml version="1.0" encoding="utf-8"?>
        <result><success>1</success><orders><paging><total>{len(orders)}</total></paging>
        {body}
        </orders></result>
        """)


@pytest.fixture
def make_orders() -> Callable[..., str]:
    return orders_file


def read_csv_rows(path: Path, encoding: str = "windows-1252") -> list[dict[str, str]]:
    import csv
    import io

    text = path.read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL server for the whole session (tests/postgres.py); skipped only where none is installed."""
    from postgres import Postgres, PostgresUnavailable

    try:
        server = Postgres.create()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.cleanup()
