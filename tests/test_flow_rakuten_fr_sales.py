"""Rakuten France sales through the web service: polled, imported into SOL once, each unit accepted once.

The flow ``rakuten-fr-sales`` against the local Rakuten server (tests/rakuten_server.py): the
server's own call log proves what was called how often.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from rakuten_install import WebInstall, make_web_install, set_env
from rakuten_server import Item, RakutenServer, Sale, make_sale
from test_flow_orders_complete import switch_on

FR_SAMPLE = REPO / "examples" / "rakuten-fr-orders" / "sample"


@pytest.fixture
def server() -> Iterator[RakutenServer]:
    srv = RakutenServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def gw(tmp_path: Path, server: RakutenServer, monkeypatch: pytest.MonkeyPatch) -> WebInstall:
    set_env(monkeypatch, server)
    return make_web_install(tmp_path / "gw", server)


def journal(gw: WebInstall) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def units_accepted_once(server: RakutenServer, sales: list[Sale]) -> None:
    for sale in sales:
        for item in sale.items:
            assert server.count("acceptsale", item.itemid) == 1, item.itemid
            assert item.status == "ACCEPTED"


def test_sales_of_several_polls_are_imported_once_and_each_unit_accepted_once(gw: WebInstall,
                                                                              server: RakutenServer) -> None:
    sales = [server.add_sale(make_sale(n)) for n in range(6)]
    assert gw.cli("run", "--once").exit_code == 0
    sales += [server.add_sale(make_sale(n)) for n in range(6, 10)]
    assert gw.cli("run", "--once").exit_code == 0
    assert gw.cli("run", "--once").exit_code == 0  # nothing new: no input at all
    units_accepted_once(server, sales)
    rows = gw.sol_rows()
    assert sorted({r["Referenznummer"] for r in rows}) == sorted(s.purchaseid for s in sales)
    for sale in sales:  # units of one article at one price became one position with their count
        mine = [r for r in rows if r["Referenznummer"] == sale.purchaseid and r["Artikelnummer"] != "VERSAND"]
        assert sum(int(r["Menge"]) for r in mine) == len(sale.items)
        shipping = [r["Einzelpreis"] for r in rows if r["Referenznummer"] == sale.purchaseid
                    and r["Artikelnummer"] == "VERSAND"]
        assert shipping == (["4,90"] if sale.shipping == "4.9" else [])  # getshippinginformation's cost
    entries = journal(gw)
    assert [e["state"] for e in entries] == ["done", "done"]
    assert len(server.calls("getnewsales")) == 3


def test_a_thousand_sales_over_several_polls_are_each_imported_and_accepted_once(gw: WebInstall,
                                                                                   server: RakutenServer) -> None:
    server.max_new_sales = 300  # a poll brings at most 300: the rest come with the next polls
    sales = [server.add_sale(make_sale(n)) for n in range(1000)]
    runs = 0
    while any(i.status == "TO_CONFIRM" for s in sales for i in s.items) and runs < 6:
        assert gw.cli("run", "--once").exit_code == 0
        runs += 1
    assert runs == 4 and len(server.calls("getnewsales")) == 4
    units_accepted_once(server, sales)
    assert len(server.calls("acceptsale")) == sum(len(s.items) for s in sales)  # no call made twice
    numbers = [r["Referenznummer"] for r in gw.sol_rows() if r["Artikelnummer"] != "VERSAND"]
    assert set(numbers) == {s.purchaseid for s in sales}


def test_the_acceptances_come_after_the_sol_order_is_committed(gw: WebInstall, server: RakutenServer) -> None:
    server.add_sale(make_sale(1))
    server.inject("acceptsale", "500", times=99)  # the service fails: the SOL order is written all the same
    assert gw.cli("run", "--once").exit_code == 3  # 3: work waits for a place that cannot be reached
    assert len(gw.sol_rows()) == 3 and server.count("acceptsale") == 0  # two articles and the shipping
    (entry,) = journal(gw)
    assert entry["state"] == "delivering" and "acceptsale" in entry["error"]
    server.faults.clear()
    assert gw.cli("run", "--once").exit_code == 0
    assert server.count("acceptsale") == 2 and len(gw.sol_rows()) == 3


def test_each_sale_carries_its_shipping_cost_into_the_input(gw: WebInstall, server: RakutenServer) -> None:
    server.add_sale(make_sale(1))  # shipping 4.9
    server.add_sale(make_sale(2))  # shipping 0.0
    assert gw.cli("run", "--once").exit_code == 0
    (archived,) = (gw.root / "archive").rglob("*getnewsales*.xml")
    text = archived.read_text(encoding="utf-8")
    assert text.count("<shippinginformation><purchaseshippingcostprice><amount>4.9</amount>"
                      "<currency>EUR</currency></purchaseshippingcostprice></shippinginformation>") == 1
    assert "<amount>0.0</amount>" in text
    assert "<request>" not in text and server.login not in text  # the echo of the login is left out
    assert len(server.calls("getshippinginformation")) == 2


def test_an_answer_without_sales_makes_no_input(gw: WebInstall, server: RakutenServer) -> None:
    assert gw.cli("run", "--once").exit_code == 0
    assert journal(gw) == [] and len(server.calls("getnewsales")) == 1


def test_an_article_unknown_to_sol_is_refused_by_rule_with_the_reason_in_the_journal(
        gw: WebInstall, server: RakutenServer) -> None:
    mapping = gw.root / "mappings" / "rakuten-fr-orders.yaml"
    mapping.write_text(switch_on(mapping.read_text(encoding="utf-8"), "artikel"), encoding="utf-8")
    (gw.root / "lookups" / "artikel.csv").write_text("Artikelnummer;Steuerklasse\n10001;1\n10002;1\n", encoding="utf-8")
    known = server.add_sale(make_sale(1))
    unknown = server.add_sale(Sale("60000001", "27/11/2026-10:00", [Item("800000001", "10001", "5"),
                                                                     Item("800000002", "77777", "9.5")]))
    assert gw.cli("run", "--once").exit_code == 0
    units_accepted_once(server, [known])
    assert [server.count("refusesale", i.itemid) for i in unknown.items] == [1, 1]
    assert {i.status for i in unknown.items} == {"REFUSED"}
    assert {r["Referenznummer"] for r in gw.sol_rows()} == {known.purchaseid}  # no SOL order for it
    (entry,) = journal(gw)
    reasons = [s["reason"] for s in entry["skipped"] if s["key"] == "60000001"]
    assert reasons and all("77777" in r and "not known to SOL" in r for r in reasons)


def test_a_sale_accepted_elsewhere_meanwhile_is_imported_once_and_noted(gw: WebInstall, server: RakutenServer) -> None:
    sale = server.add_sale(make_sale(4, units=2))
    server.after["getnewsales"] = lambda srv, key: srv.accept_elsewhere(sale.items[0].itemid)
    assert gw.cli("run", "--once").exit_code == 0
    assert server.count("acceptsale", sale.items[0].itemid) == 0  # refused by Rakuten: already accepted
    assert server.count("acceptsale", sale.items[1].itemid) == 1
    assert len(server.calls("acceptsale")) == 2  # and not tried again
    (entry,) = journal(gw)
    (note,) = entry["skipped"]
    assert sale.items[0].itemid in note["reason"] and "ACCEPTED" in note["reason"]
    assert {r["Referenznummer"] for r in gw.sol_rows()} == {sale.purchaseid}


def test_an_expired_token_stops_the_calls_until_a_new_one_is_set(gw: WebInstall, server: RakutenServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sales = [server.add_sale(make_sale(n, units=1)) for n in range(5)]
    old = server.token
    server.after["acceptsale"] = lambda srv, key: (srv.expire_token("tok-new-9c1f2a") if srv.count("acceptsale") == 2
                                                   else None)
    first = gw.process("run", "--once")
    assert first.returncode == 3
    assert server.count("acceptsale") == 2
    assert "RAKUTEN_FR_TOKEN" in first.stderr
    status = gw.process("status", "--json")
    service = next(r for r in map(json.loads, status.stdout.splitlines()) if r.get("service") == "rakuten-fr")
    assert service["failing_since"] and "RAKUTEN_FR_TOKEN" in service["error"] and service["last_ok"]
    monkeypatch.setenv("RAKUTEN_FR_TOKEN", "tok-new-9c1f2a")
    second = gw.process("run", "--once", env={"RAKUTEN_FR_TOKEN": "tok-new-9c1f2a"})
    assert second.returncode == 0, second.stderr
    units_accepted_once(server, sales)
    assert len({r["Referenznummer"] for r in gw.sol_rows()}) == 5
    for secret in (old, "tok-new-9c1f2a"):
        assert secret not in first.stderr + second.stderr + status.stdout
        for path in gw.root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("fault", ["drop", "500", "truncate"])
def test_a_lost_answer_to_an_acceptance_is_resolved_by_asking(gw: WebInstall, server: RakutenServer,
                                                              fault: str) -> None:
    sale = server.add_sale(make_sale(7, units=3))
    server.inject("acceptsale", fault, skip=1)  # the second unit: applied or not, the answer is lost
    assert gw.cli("run", "--once").exit_code == 0
    if fault == "500":  # a 500 did not apply the call: asking shows it waiting, so it is made again
        assert len(server.calls("acceptsale")) == 4
    else:  # applied: asking shows it accepted, it is not made again
        assert len(server.calls("acceptsale")) == 3
    units_accepted_once(server, [sale])
    assert server.calls("getcurrentsales")  # the service was asked


def test_a_crash_between_the_call_and_its_record_is_resolved_by_asking(gw: WebInstall, server: RakutenServer) -> None:
    sales = [server.add_sale(make_sale(n)) for n in range(4)]
    crashed = gw.process("run", "--once", env={"GATEWAY_CRASH_AT": "called:1"})  # all made, none recorded
    assert crashed.returncode == -9
    assert gw.process("run", "--once").returncode == 0
    units_accepted_once(server, sales)
    assert len({r["Referenznummer"] for r in gw.sol_rows()}) == 4
    assert len(server.calls("acceptsale")) == server.count("acceptsale")  # no call was repeated


def test_getcurrentsales_is_read_page_by_page(gw: WebInstall, server: RakutenServer) -> None:
    server.page_size = 2
    earlier = [server.add_sale(make_sale(n)) for n in range(7)]
    for sale in earlier:  # accepted before, in the seller account: listed by getcurrentsales
        for item in sale.items:
            server.accept_elsewhere(item.itemid)
    sale = server.add_sale(make_sale(20, units=1))
    server.inject("acceptsale", "drop")
    assert gw.cli("run", "--once").exit_code == 0
    assert server.count("acceptsale", sale.items[0].itemid) == 1
    assert len(server.calls("getcurrentsales")) == 4  # 8 sales, 2 per page


def test_the_web_service_gives_the_same_sol_order_as_the_file_flow(gw: WebInstall, server: RakutenServer) -> None:
    """The golden example's sale, fetched from the service, gives the golden example's SOL file byte for byte."""
    from lxml import etree

    doc = etree.parse(str(FR_SAMPLE / "input" / "orders_fr.xml"))
    (el,) = doc.iterfind(".//{*}sale")
    buyer = {c.tag.split("}")[1]: (c.text or "") for c in el.find(".//{*}deliveryaddress")}
    buyer["email"] = el.findtext(".//{*}purchasebuyeremail") or ""
    items = [Item(i.findtext("{*}itemid") or "", i.findtext("{*}sku") or "", i.findtext("{*}price/{*}amount") or "",
                  headline=i.findtext("{*}headline") or "", advertid=i.findtext("{*}advertid") or "",
                  ean=i.findtext("{*}ean") or "") for i in el.iterfind(".//{*}item")]
    server.add_sale(Sale(el.findtext("{*}purchaseid") or "", el.findtext("{*}purchasedate") or "", items,
                         shipping="0.0", buyer=buyer))
    assert gw.cli("run", "--once").exit_code == 0
    (sol,) = (gw.root / "outbox" / "sol").glob("auftraege_*.csv")
    assert sol.read_bytes() == (FR_SAMPLE / "expected" / "auftraege_orders_fr_1.csv").read_bytes()


def test_a_flow_whose_variables_are_not_set_does_not_run_and_status_names_them(
        gw: WebInstall, server: RakutenServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_sale(make_sale(1))
    monkeypatch.delenv("RAKUTEN_FR_TOKEN")
    result = gw.cli("run", "--once")
    assert result.exit_code == 0 and "RAKUTEN_FR_TOKEN" in result.output
    assert server.log == []
    rows = [json.loads(line) for line in gw.cli("status", "--json").output.splitlines()]
    flow = next(r for r in rows if r.get("flow") == "rakuten-fr-sales")
    assert flow["waits_for"] == ["RAKUTEN_FR_TOKEN"]
    service = next(r for r in rows if r.get("service") == "rakuten-fr")
    assert service["waits_for"] == ["RAKUTEN_FR_TOKEN"]
