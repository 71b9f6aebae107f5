"""Rakuten.de orders fetched page by page, and shipments confirmed once on the marketplace they came from.

Against the local Rakuten server (tests/rakuten_server.py): Rakuten.de ``getOrders`` into the
existing order flow, ``setOrderShipped`` per Rakuten.de order, ``settrackingpackageinfos`` per unit
of a Rakuten France sale (the units the acceptance remembered, or those Rakuten lists).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, order_xml
from rakuten_install import WebInstall, make_web_install, set_env
from rakuten_server import RakutenServer, make_sale


@pytest.fixture
def server() -> Iterator[RakutenServer]:
    srv = RakutenServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def gw(tmp_path: Path, server: RakutenServer, monkeypatch: pytest.MonkeyPatch) -> WebInstall:
    set_env(monkeypatch, server)
    return make_web_install(tmp_path / "gw", server, ("rakuten-fr-sales", "rakuten-de-orders", "rakuten-shipping"))


def journal(gw: WebInstall) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def order_no(n: int) -> str:
    return f"300-{n // 1000:03d}-{n % 1000:03d}"


def test_rakuten_de_orders_are_fetched_page_by_page_into_sol(gw: WebInstall, server: RakutenServer) -> None:
    for n in range(45):
        server.add_order(order_no(n), order_xml(order_no(n)))
    server.add_order("999-999-999", order_xml("999-999-999", status="shipped"), status="shipped")
    assert gw.cli("run", "--once", "rakuten-de-orders").exit_code == 0
    assert len(server.calls("getOrders")) == 3  # 45 pending orders, 20 per page
    numbers = [r["Referenznummer"] for r in gw.sol_rows("outbox/sol-de")]
    assert sorted(set(numbers)) == sorted(order_no(n) for n in range(45))
    # pending orders stay pending at Rakuten: the next poll brings the same answer, which is not taken again
    assert gw.cli("run", "--once", "rakuten-de-orders").exit_code == 0
    assert [e["state"] for e in journal(gw)] == ["done"]


def test_rakuten_de_orders_give_the_same_sol_file_as_the_file_flow(gw: WebInstall, server: RakutenServer) -> None:
    from lxml import etree

    sample = REPO / "examples" / "rakuten-orders" / "sample"
    for el in etree.parse(str(sample / "input" / "orders_de.xml")).iterfind(".//order"):
        server.add_order(el.findtext("order_no") or "", etree.tostring(el))
    assert gw.cli("run", "--once", "rakuten-de-orders").exit_code == 0
    (sol,) = (gw.root / "outbox" / "sol-de").glob("auftraege_*.csv")
    assert sol.read_bytes() == (sample / "expected" / "auftraege_orders_de_1.csv").read_bytes()


def test_shipments_are_confirmed_once_on_the_marketplace_they_came_from(gw: WebInstall, server: RakutenServer) -> None:
    sale = server.add_sale(make_sale(3, units=3))
    server.add_order("111-222-333", order_xml("111-222-333"))
    assert gw.cli("run", "--once", "rakuten-fr-sales").exit_code == 0
    gw.ship("versand_1.csv", [
        "123;LS-1;01.12.2026;111-222-333;D1;DHL;Paket;00340434161094042557;01.12.2026;kunde@example.org",
        f"123;LS-2;01.12.2026;{sale.purchaseid};D9;DPD;Paket;01234567890123;01.12.2026;acheteur@example.fr",
    ])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 0
    assert server.count("setOrderShipped", "111-222-333") == 1
    assert server.orders["111-222-333"].shipped["tracking_number"] == "00340434161094042557"
    for item in sale.items:  # every unit of the sale, from what the acceptance remembered
        assert server.count("settrackingpackageinfos", item.itemid) == 1
        assert item.tracking == {"transporter_name": "DPD", "tracking_number": "01234567890123",
                                 "tracking_url": "https://tracking.dpd.de/status/de_DE/parcel/01234567890123"}
    assert server.calls("getcurrentsales") == []  # remembered: Rakuten was not asked
    mails = list((gw.root / "outbox" / "mail").glob("*.eml"))
    assert [m.name for m in mails] == ["versand_LS-1_00340434161094042557.eml"]  # Rakuten France tells its buyers


def test_a_sale_accepted_in_the_seller_account_is_found_among_the_current_sales(gw: WebInstall,
                                                                                server: RakutenServer) -> None:
    sale = server.add_sale(make_sale(5, units=2))
    for item in sale.items:
        server.accept_elsewhere(item.itemid)
    gw.ship("versand_2.csv", [f"123;LS-3;01.12.2026;{sale.purchaseid};D9;UPS;Paket;1Z999;01.12.2026;"])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 0
    assert [server.count("settrackingpackageinfos", i.itemid) for i in sale.items] == [1, 1]


def test_a_purchase_nobody_knows_is_noted_not_retried(gw: WebInstall, server: RakutenServer) -> None:
    gw.ship("versand_3.csv", ["123;LS-4;01.12.2026;44440000;D9;DHL;Paket;0034;01.12.2026;"])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 0
    (entry,) = journal(gw)
    (note,) = entry["skipped"]
    assert note["key"] == "44440000" and "seller account" in note["reason"]
    assert server.calls("settrackingpackageinfos") == []


def test_a_lost_answer_of_a_shipping_confirmation_is_resolved_by_asking(gw: WebInstall, server: RakutenServer) -> None:
    for n in range(3):
        server.add_order(order_no(n), order_xml(order_no(n)))
    server.inject("setOrderShipped", "drop", skip=1)  # applied, answer lost
    gw.ship("versand_4.csv", [f"123;LS-{n};01.12.2026;{order_no(n)};D1;DHL;Paket;0034{n};01.12.2026;"
                              for n in range(3)])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 0
    assert [server.count("setOrderShipped", order_no(n)) for n in range(3)] == [1, 1, 1]
    assert len(server.calls("setOrderShipped")) == 3  # never made twice
    assert server.calls("getOrders")  # the open orders were asked for


def test_an_order_shipped_before_is_an_error_of_that_record_only(gw: WebInstall, server: RakutenServer) -> None:
    server.add_order("111-111-111", order_xml("111-111-111"), status="shipped")
    server.add_order("222-222-222", order_xml("222-222-222"))
    gw.ship("versand_5.csv", ["123;LS-5;01.12.2026;111-111-111;D1;DHL;Paket;0034a;01.12.2026;",
                              "123;LS-6;01.12.2026;222-222-222;D1;DHL;Paket;0034b;01.12.2026;"])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 0
    assert server.count("setOrderShipped", "222-222-222") == 1
    (entry,) = journal(gw)
    (note,) = entry["skipped"]
    assert note["key"] == "111-111-111" and "3120" in note["reason"]


def test_a_shipment_of_a_sale_whose_acceptance_is_still_owed_waits_for_it(gw: WebInstall,
                                                                          server: RakutenServer) -> None:
    sale = server.add_sale(make_sale(8, units=1))
    server.inject("acceptsale", "drop-before", times=99)  # the acceptance cannot get through
    assert gw.cli("run", "--once", "rakuten-fr-sales").exit_code == 3
    gw.ship("versand_6.csv", [f"123;LS-8;01.12.2026;{sale.purchaseid};D9;GLS;Paket;G1;01.12.2026;"])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 3
    (_sales, shipping) = journal(gw)
    assert "not accepted yet" in shipping["error"] and shipping["skipped"] == []
    server.faults.clear()
    assert gw.cli("run", "--once").exit_code == 0  # the acceptance first, then the confirmation
    item = sale.items[0]
    assert server.count("acceptsale", item.itemid) == 1 and server.count("settrackingpackageinfos", item.itemid) == 1


def test_an_error_code_not_known_as_one_of_the_record_makes_the_calls_wait_and_says_where_to_add_it(
        gw: WebInstall, server: RakutenServer) -> None:
    config = gw.config.read_text(encoding="utf-8").replace('    record_errors: ["2210", "2310", "3110", "3120"]', "")
    gw.config.write_text(config, encoding="utf-8")  # as shipped: only the documented 2210 and 2310
    server.add_order("111-111-111", order_xml("111-111-111"), status="shipped")
    gw.ship("versand_7.csv", ["123;LS-7;01.12.2026;111-111-111;D1;DHL;Paket;0034c;01.12.2026;"])
    assert gw.cli("run", "--once", "rakuten-shipping").exit_code == 3  # waits: the service's fault, or is it?
    (entry,) = journal(gw)
    assert "code 3120" in entry["error"] and "record_errors" in entry["error"] and "RAKUTEN_DE_KEY" in entry["error"]
