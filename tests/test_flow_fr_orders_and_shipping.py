"""The flows rakuten-fr-orders (Rakuten France → SOL) and sol-shipping (SOL shipments → Rakuten.de
confirmation + tracking e-mail), in throw-away installations built from the shipped mappings,
templates and golden examples, with a real SMTP server on loopback for the e-mails."""

from __future__ import annotations

import email
import json
import shutil
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Install, order_xml, orders_file, read_csv_rows
from mailserver import Server
from test_flow_orders_complete import switch_on

FLOWS = ("rakuten-orders", "rakuten-fr-orders", "sol-shipping")
FR_SAMPLE = REPO / "examples" / "rakuten-fr-orders" / "sample" / "input" / "orders_fr.xml"
VERSAND_SAMPLE = REPO / "examples" / "sol-shipping" / "sample" / "input" / "versand_20261127T1600.csv"
HEADER = ("Mandant;Belegnummer;Belegdatum;Referenznummer;Kto;Versanddienstleister;Versandart;Sendungsnummer;"
          "Versanddatum;EMail")

GATEWAY_YAML = """\
state: state
quarantine: quarantine
archive: {{ folder: archive, keep_days: 30 }}
settle_seconds: 0
smtp:
  host: 127.0.0.1
  port: {port}
  security: none
  sender: Shop Müller <shop@example.org>
  domain: example.org
flows:
  rakuten-orders:
    mapping: mappings/rakuten-orders.yaml
    source: {{ folder: inbox/rakuten-orders, include: ["*.xml"] }}
    outbox: {{ folder: outbox/sol-import }}
  rakuten-fr-orders:
    mapping: mappings/rakuten-fr-orders.yaml
    source: {{ folder: inbox/rakuten-fr-orders, include: ["*.xml"] }}
    outbox: {{ folder: outbox/sol-import }}
    destinations:
      annahme: {{ folder: outbox/rakuten-fr-annahme }}
  sol-shipping:
    mapping: mappings/sol-shipping.yaml
    source: {{ folder: inbox/sol-shipping, include: ["versand_*.csv"] }}
    outbox: {{ folder: outbox/rakuten-shipping }}
    destinations:
      rakuten-fr: {{ folder: outbox/rakuten-fr-shipping }}
      mail: {{ smtp: yes }}
{shipping_settings}"""


def _install(root: Path, port: int, shipping_settings: str = "", fr_options: tuple[str, ...] = ()) -> Install:
    """The three flows as shipped; ``fr_options``: the optional blocks of rakuten-fr-orders switched on
    (with the shipped lookup files, and each example's expected-all-options/ as its expected/)."""
    (root / "mappings").mkdir(parents=True)
    (root / "templates").mkdir()
    for flow in FLOWS:
        shutil.copy(REPO / "mappings" / f"{flow}.yaml", root / "mappings")
        shutil.copytree(REPO / "examples" / flow, root / "examples" / flow)
    if fr_options:
        mapping = root / "mappings" / "rakuten-fr-orders.yaml"
        mapping.write_text(switch_on(mapping.read_text(encoding="utf-8"), *fr_options), encoding="utf-8")
        shutil.copytree(REPO / "lookups", root / "lookups")
        for case in (root / "examples" / "rakuten-fr-orders").iterdir():
            if (case / "expected-all-options").is_dir():
                shutil.rmtree(case / "expected")
                (case / "expected-all-options").rename(case / "expected")
    for template in (REPO / "templates").glob("sol-shipping-*.j2"):
        shutil.copy(template, root / "templates")
    (root / "gateway.yaml").write_text(
        GATEWAY_YAML.format(port=port, shipping_settings=shipping_settings), encoding="utf-8")
    return Install(root)


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture
def gw(tmp_path: Path, smtp: Server) -> Install:
    return _install(tmp_path / "gw", smtp.port)


def _journal(gw: Install) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def _run(gw: Install, expect: int = 0) -> None:
    result = gw.cli("run", "--once")
    assert result.exit_code == expect, result.output


def _messages(smtp: Server) -> list[EmailMessage]:
    return [email.message_from_bytes(data, policy=policy.default) for _, _, data, _ in smtp.mailbox.messages]


def _sale(purchaseid: str, units: list[tuple[str, str]], first: str = "Hélène") -> str:
    """One Rakuten France <sale>; ``units`` are (sku, price) of each unit sold."""
    address = (f"<civility>Mme</civility><lastname>Lefèvre</lastname><firstname>{first}</firstname>"
               "<address1>12 rue des Écoles</address1><address2></address2><zipcode>75005</zipcode>"
               "<city>Paris</city><country>France</country><countryalpha2>FR</countryalpha2>"
               "<phonenumber1>0601020304</phonenumber1>")
    items = "".join(
        f"<item><sku>{sku}</sku><itemid>{i}</itemid><headline><![CDATA[Tasse à café « {sku} »]]></headline>"
        f"<price><amount>{price}</amount><currency>EUR</currency></price></item>"
        for i, (sku, price) in enumerate(units, 1))
    return (f"<sale><purchaseid>{purchaseid}</purchaseid><purchasedate>27/11/2026-08:41</purchasedate>"
            f"<deliveryinformation><purchasebuyeremail>h@example.fr</purchasebuyeremail>"
            f"<deliveryaddress>{address}</deliveryaddress><billingaddress>{address}</billingaddress>"
            f"</deliveryinformation><items>{items}</items></sale>")


def _sales(*sales: str) -> bytes:
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            '<getnewsalesresult xmlns="http://pmcdn.priceminister.com/res/schema/getnewsales"><response><sales>'
            + "".join(sales) + "</sales></response></getnewsalesresult>\n").encode("iso-8859-1")


def _versand(*rows: str) -> bytes:
    return ("\r\n".join((HEADER, *rows)) + "\r\n").encode("cp1252")


def _sol_rows(gw: Install) -> list[dict[str, str]]:
    return [row for path in gw.outputs("sol-import") for row in read_csv_rows(path)]


# -- both flows: golden examples --------------------------------------------------------------


def test_golden_examples_of_both_flows_pass(gw: Install) -> None:
    assert gw.cli("check").exit_code == 0
    result = gw.cli("test", "rakuten-fr-orders", "sol-shipping")
    assert result.exit_code == 0, result.output
    for case in ("rakuten-fr-orders/sample", "rakuten-fr-orders/mixed", "rakuten-fr-orders/collection-point",
                 "sol-shipping/sample", "sol-shipping/mixed", "sol-shipping/unknown-carrier"):
        assert f"PASS  {case}" in result.output
    assert result.output.rstrip().endswith("6 passed, 0 failed")
    assert "warning" not in gw.cli("check").output  # the first example has every field the mapping reads


FR_OPTIONS = ("artikel", "varianten")


@pytest.fixture
def fr_all(tmp_path: Path, smtp: Server) -> Install:
    return _install(tmp_path / "all", smtp.port, fr_options=FR_OPTIONS)


def test_fr_blocks_switch_on_and_pass_check_and_the_golden_examples(fr_all: Install) -> None:
    text = (REPO / "mappings" / "rakuten-fr-orders.yaml").read_text(encoding="utf-8")
    import re
    assert set(re.findall(r"^\s*# \[optional: (\w+)\]", text, re.MULTILINE)) == set(FR_OPTIONS)
    assert fr_all.cli("check").exit_code == 0
    result = fr_all.cli("test", "rakuten-fr-orders")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("3 passed, 0 failed")


# -- rakuten-fr-orders ----------------------------------------------------------------------------


def test_an_fr_order_is_delivered_once_and_shares_its_memory_with_the_de_orders(gw: Install) -> None:
    gw.drop("orders_fr.xml", FR_SAMPLE.read_bytes(), flow="rakuten-fr-orders")
    gw.drop("orders_de.xml", (REPO / "examples" / "rakuten-orders" / "sample" / "input" / "orders_de.xml")
            .read_bytes())
    _run(gw)
    assert len(gw.outputs("sol-import")) == 2  # DE and FR into the same SOL folder, names apart
    assert sorted({r["Referenznummer"] for r in _sol_rows(gw)}) == ["123-456-789", "40021877", "987-654-321"]

    # The same sale again, in another file with one new sale: only the new one goes to SOL.
    gw.drop("orders_fr_2.xml", _sales(_sale("40021877", [("10001", "12.9")]), _sale("40029999", [("10002", "14.5")])),
            flow="rakuten-fr-orders")
    _run(gw)
    # And a Rakuten.de file that carries the FR number: the memory is one for both flows (scope sol-orders).
    gw.drop("orders_de_2.xml", orders_file(order_xml("40021877"), order_xml("555-666-777")))
    _run(gw)
    rows = _sol_rows(gw)
    firsts = [r["Referenznummer"] for r in rows if r["Position"] == "1"]  # one per order delivered
    assert sorted(firsts) == ["123-456-789", "40021877", "40029999", "555-666-777", "987-654-321"]
    entries = {e["name"]: e for e in _journal(gw)}
    fr_first = entries["orders_fr.xml"]["id"]
    assert entries["orders_fr_2.xml"]["skipped"] == [
        {"key": "40021877", "reason": f"order number 40021877 was already delivered (input {fr_first})"}]
    assert entries["orders_de_2.xml"]["skipped"] == [
        {"key": "40021877", "reason": f"order number 40021877 was already delivered (input {fr_first})"}]
    assert entries["orders_fr_2.xml"]["state"] == entries["orders_de_2.xml"]["state"] == "done"


def test_fr_accents_from_iso_8859_1_are_right_in_the_windows_1252_output(gw: Install) -> None:
    gw.drop("orders_fr.xml", FR_SAMPLE.read_bytes(), flow="rakuten-fr-orders")
    _run(gw)
    (out,) = gw.outputs("sol-import")
    data = out.read_bytes()
    assert "Hélène Lefèvre;;;12 rue des Écoles".encode("cp1252") in data
    assert b"H\xe9l\xe8ne Lef\xe8vre" in data and b"Tasse \xe0 caf\xe9 \xab Bureau \xbb" in data
    first = read_csv_rows(out)[0]
    assert (first["A0Anrede"], first["A0Name1"], first["A0Land"], first["Belegdatum"]) == (
        "Frau", "Hélène Lefèvre", "F", "27.11.2026")
    assert first["Bezeichnung1"] == "Tasse à café « Bureau »"
    assert list(first) == list(read_csv_rows(REPO / "examples" / "rakuten-orders" / "sample" / "expected"
                                             / "auftraege_orders_de_1.csv")[0])  # the same columns as DE


def test_units_of_one_article_become_one_position_with_the_price_per_unit(gw: Install) -> None:
    units = [("A-1", "12.9"), ("B-2", "3"), ("A-1", "12.9"), ("A-1", "12.9"), ("C-3", "7.5"), ("C-3", "6")]
    gw.drop("units.xml", _sales(_sale("40030001", units, first="Zoé")), flow="rakuten-fr-orders")
    _run(gw)
    got = [(r["Position"], r["Artikelnummer"], r["Menge"], r["Einzelpreis"]) for r in _sol_rows(gw)]
    # three units at 12.9 → one position; C-3 at two prices → two positions (nothing lost).
    assert got == [("1", "A-1", "3", "12,90"), ("2", "B-2", "1", "3,00"), ("3", "C-3", "1", "6,00"),
                   ("4", "C-3", "1", "7,50")]


def _fr_sale(purchaseid: str, units: list[tuple[str, str]], *, shippingtype: str = "Normal",
             pickup: dict[str, str] | None = None, shipping: str | None = None) -> str:
    """A Rakuten France <sale> with a shipping type, to a pickup point or home, with or without shipping cost."""
    sale = _sale(purchaseid, units)
    sale = sale.replace("<deliveryinformation>", f"<deliveryinformation><shippingtype>{shippingtype}</shippingtype>")
    if pickup is not None:
        point = "".join(f"<{k}>{v}</{k}>" for k, v in pickup.items())
        start, end = sale.index("<deliveryaddress>"), sale.index("</deliveryaddress>") + len("</deliveryaddress>")
        sale = sale[:start] + f"<collectionpointaddress>{point}</collectionpointaddress>" + sale[end:]
    if shipping is not None:
        cost = "" if shipping == "<none>" else f"<amount>{shipping}</amount>"
        sale = sale.replace("</items>", "</items><shippinginformation><purchaseshippingcostprice>"
                            f"{cost}<currency>EUR</currency></purchaseshippingcostprice></shippinginformation>")
    return sale


PICKUP = {"civility": "M.", "lastname": "Peeters", "firstname": "Jan", "id": "BE-4711", "name": "Librairie du Parc",
          "address": "Rue Royale 12", "zipcode": "1000", "city": "Bruxelles", "country": "Belgique"}


def test_a_pickup_point_sale_goes_to_the_point_for_the_buyer_with_its_shipping_type(gw: Install) -> None:
    gw.drop("p.xml", _sales(_fr_sale("40040001", [("10001", "12.9")], shippingtype="Mondial Relay", pickup=PICKUP)),
            flow="rakuten-fr-orders")
    _run(gw)
    (row,) = _sol_rows(gw)
    assert {k: row[k] for k in ("A1Anrede", "A1Name1", "A1Name2", "A1Zusatz", "A1Strasse", "A1PLZ", "A1Ort",
                                "A1Land", "Versandart")} == {
        "A1Anrede": "Firma", "A1Name1": "Librairie du Parc", "A1Name2": "Jan Peeters",
        "A1Zusatz": "Abholstelle BE-4711", "A1Strasse": "Rue Royale 12", "A1PLZ": "1000", "A1Ort": "Bruxelles",
        "A1Land": "B", "Versandart": "Paketshop"}
    assert (row["A0Name1"], row["A0Strasse"], row["A0Land"]) == ("Hélène Lefèvre", "12 rue des Écoles", "F")


def test_an_unknown_shipping_type_stops_the_file_naming_it_and_the_table(gw: Install) -> None:
    gw.drop("s.xml", _sales(_fr_sale("40040002", [("10001", "12.9")], shippingtype="Pigeon voyageur")),
            flow="rakuten-fr-orders")
    _run(gw, expect=1)
    (entry,) = _journal(gw)
    assert entry["state"] == "failed"
    assert "order 40040002" in entry["error"] and "field 'Versandart'" in entry["error"]
    assert "'Pigeon voyageur' is not in the lookup table 'versandart'" in entry["error"]


@pytest.mark.parametrize(("shipping", "expected"), [
    ("4.90", [("10001", "12,90", ""), ("VERSAND", "4,90", "19")]),
    ("0.0", [("10001", "12,90", "")]),  # free shipping: no position
    (None, [("10001", "12,90", "")]),  # a sale from a file, without shipping information
])
def test_the_shipping_cost_of_the_shipping_information_becomes_a_position(
    gw: Install, shipping: str | None, expected: list[tuple[str, str, str]]
) -> None:
    gw.drop("v.xml", _sales(_fr_sale("40040003", [("10001", "12.9")], shipping=shipping)), flow="rakuten-fr-orders")
    _run(gw)
    assert [(r["Artikelnummer"], r["Einzelpreis"], r["Steuersatz"]) for r in _sol_rows(gw)] == expected


def test_shipping_information_without_an_amount_stops_the_file_naming_the_order(gw: Install) -> None:
    gw.drop("v.xml", _sales(_fr_sale("40040004", [("10001", "12.9")], shipping="<none>")), flow="rakuten-fr-orders")
    _run(gw, expect=1)
    (entry,) = _journal(gw)
    assert "order 40040004" in entry["error"] and "'versandkosten'" in entry["error"]
    assert "expected a number, but the field is empty" in entry["error"], entry["error"]


def test_with_the_article_export_the_vat_rate_comes_from_the_tax_class_and_variants_are_translated(
    fr_all: Install
) -> None:
    fr_all.drop("a.xml", _sales(_fr_sale("40040005", [("40001", "24"), ("20001-RT-M", "21.9"), ("10001", "12.9")],
                                         shipping="3.50")), flow="rakuten-fr-orders")
    _run(fr_all)
    assert [(r["Artikelnummer"], r["AuspraegungID"], r["Steuersatz"]) for r in _sol_rows(fr_all)] == [
        ("10001", "", "19"), ("20001", "3", "19"), ("40001", "", "7"), ("VERSAND", "", "19")]


def test_an_unknown_fr_variant_refuses_the_sale_without_and_takes_the_replacement_article_with_a_fallback(
    tmp_path: Path, smtp: Server
) -> None:
    content = _sales(_fr_sale("40040006", [("20001-XX-9", "19.9"), ("10001", "12.9")]),
                     _fr_sale("40040007", [("10002", "14.5")]))
    strict = _install(tmp_path / "strict", smtp.port, fr_options=FR_OPTIONS)
    strict.drop("a.xml", content, flow="rakuten-fr-orders")
    _run(strict)
    assert {r["Referenznummer"] for r in _sol_rows(strict)} == {"40040007"}
    (annahme,) = (strict.root / "outbox" / "rakuten-fr-annahme").glob("annahme_*.csv")
    assert [(r["purchaseid"], r["action"], r["reason"]) for r in read_csv_rows(annahme, "utf-8")] == [
        ("40040006", "refuse", "article(s) 20001-XX-9 not known to SOL (not in lookups/artikel.csv)"),
        ("40040006", "refuse", "article(s) 20001-XX-9 not known to SOL (not in lookups/artikel.csv)"),
        ("40040007", "accept", "")]  # refused at Rakuten France, unit by unit, instead of waiting there

    lenient = _install(tmp_path / "lenient", smtp.port, fr_options=FR_OPTIONS)
    config = lenient.config.read_text(encoding="utf-8").replace(
        "      annahme: { folder: outbox/rakuten-fr-annahme }\n",
        "      annahme: { folder: outbox/rakuten-fr-annahme }\n    settings: { ersatzartikel: DIVERSE }\n", 1)
    lenient.config.write_text(config, encoding="utf-8")
    lenient.drop("a.xml", content, flow="rakuten-fr-orders")
    _run(lenient)
    rows = [r for r in _sol_rows(lenient) if r["Referenznummer"] == "40040006"]
    assert [(r["Artikelnummer"], r["AuspraegungID"], r["Bezeichnung2"], r["Steuersatz"]) for r in rows] == [
        ("10001", "", "", "19"), ("DIVERSE", "", "Rakuten-Artikelnummer 20001-XX-9", "19")]  # DIVERSE: class 1


def test_an_item_without_sku_skips_the_sale_naming_its_advert(gw: Install) -> None:
    sale = _fr_sale("40040008", [("", "9.9")]).replace("<itemid>1</itemid>", "<advertid>691501999</advertid>"
                                                       "<itemid>1</itemid>")
    gw.drop("a.xml", _sales(sale, _fr_sale("40040009", [("10002", "14.5")])), flow="rakuten-fr-orders")
    _run(gw)
    assert {r["Referenznummer"] for r in _sol_rows(gw)} == {"40040009"}
    (entry,) = _journal(gw)
    assert "the unit(s) of advertid 691501999 have no seller reference (sku)" in entry["skipped"][0]["reason"]


# -- sol-shipping --------------------------------------------------------------------------------


def test_one_tracking_email_per_shipment_with_umlauts_and_none_twice(gw: Install, smtp: Server) -> None:
    gw.drop(VERSAND_SAMPLE.name, VERSAND_SAMPLE.read_bytes(), flow="sol-shipping")
    _run(gw)
    mails = _messages(smtp)
    assert [rcpt for _, rcpt, _, _ in smtp.mailbox.messages] == [["max@mustermann.example"], ["erika@example.org"]]
    assert [str(m["Subject"]) for m in mails] == ["Ihre Bestellung 123-456-789 wurde an DHL übergeben",
                                                  "Ihre Bestellung 987-654-321 wurde an Deutsche Post übergeben"]
    assert str(mails[0]["From"]) == "Shop Müller <shop@example.org>"
    text = mails[0].get_body(("plain",))
    html = mails[0].get_body(("html",))
    assert text is not None and html is not None
    link = "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode=00340434161094042557"
    for body in (text.get_content(), html.get_content()):
        assert "übergeben" in body and "können" in body and "Grüße" in body and "Shop Müller" in body
        assert "00340434161094042557" in body and link in body
    assert f'<a href="{link}">' in html.get_content()
    (confirmation,) = gw.outputs("rakuten-shipping")
    assert [r["order_no"] for r in read_csv_rows(confirmation, "utf-8")] == ["123-456-789", "987-654-321"]

    # The same file again: a duplicate, nothing sent. A re-export with one new shipment: only that one.
    gw.drop(VERSAND_SAMPLE.name, VERSAND_SAMPLE.read_bytes(), flow="sol-shipping")
    _run(gw)
    assert len(smtp.mailbox.messages) == 2
    new_row = "123;LS-2026-0817;28.11.2026;111-222-333;D1;GLS;Paket;12345678901;28.11.2026;gls@example.org\r\n"
    again = VERSAND_SAMPLE.read_bytes() + new_row.encode("cp1252")
    gw.drop("versand_20261128T1600.csv", again, flow="sol-shipping")
    _run(gw)
    assert [rcpt for _, rcpt, _, _ in smtp.mailbox.messages][2:] == [["gls@example.org"]]
    (newest,) = [p for p in gw.outputs("rakuten-shipping") if "_versand_20261128T1600_" in p.name]
    assert [r["order_no"] for r in read_csv_rows(newest, "utf-8")] == ["111-222-333"]
    states = [e["state"] for e in _journal(gw)]
    assert states == ["done", "duplicate", "done"]


def test_a_shipment_without_tracking_code_is_skipped_with_its_reason_and_goes_later(gw: Install, smtp: Server) -> None:
    late = "123;LS-2026-0820;28.11.2026;321-654-987;D5;DPD;Paket;{code};28.11.2026;spaet@example.org"
    gw.drop("versand_a.csv", _versand(late.format(code=""),
                                       "123;LS-2026-0821;28.11.2026;111-111-111;D6;Hermes;Päckchen;H0001;;h@example.org"),
            flow="sol-shipping")
    _run(gw)
    (entry,) = _journal(gw)
    assert entry["state"] == "done"
    assert entry["skipped"] == [{"key": "LS-2026-0820", "reason": (
        "delivery note LS-2026-0820 (order 321-654-987) has no tracking code (Sendungsnummer) yet; "
        "it is confirmed once SOL exports it with one")}]
    assert [rcpt for _, rcpt, _, _ in smtp.mailbox.messages] == [["h@example.org"]]
    # Without Versanddatum the e-mail simply leaves the date out.
    body = _messages(smtp)[0].get_body(("plain",))
    assert body is not None and "Sendung an Hermes übergeben" in body.get_content()
    gw.drop("versand_b.csv", _versand(late.format(code="01234567890123")), flow="sol-shipping")
    _run(gw)
    assert [rcpt for _, rcpt, _, _ in smtp.mailbox.messages][1:] == [["spaet@example.org"]]


def test_an_unknown_carrier_stops_the_file_before_anything_is_sent(gw: Install, smtp: Server) -> None:
    gw.drop("versand_c.csv", _versand(
        "123;LS-2026-0830;28.11.2026;111-222-333;D1;DHL;Paket;00340434161094000001;28.11.2026;a@example.org",
        "123;LS-2026-0831;28.11.2026;444-555-666;D2;Spedition Meier;Spedition;SM-1;28.11.2026;b@example.org",
    ), flow="sol-shipping")
    _run(gw, expect=1)
    (entry,) = _journal(gw)
    assert entry["state"] == "failed"
    error = str(entry["error"])
    assert "shipment LS-2026-0831/SM-1" in error and "line 3" in error
    assert "field 'carrier': 'Spedition Meier' is not in the lookup table 'carrier'" in error
    assert smtp.mailbox.messages == [] and gw.outputs("rakuten-shipping") == []
    assert any(p.name.endswith(".reason.txt") for p in (gw.quarantine / "sol-shipping").iterdir())


def test_each_shipment_is_confirmed_for_its_marketplace_and_dhl_follows_the_setting(tmp_path: Path,
                                                                                     smtp: Server) -> None:
    gw = _install(tmp_path / "gw", smtp.port, '    settings: { dhl_rahmenvertrag: "1" }\n')
    gw.drop("versand_d.csv", _versand(
        "123;LS-1;28.11.2026;999-888-777;D1;DHL;Paket;00340434161094000002;28.11.2026;nie-importiert@example.org",
        "123;LS-2;28.11.2026;40021877;D2;DHL;Paket;00340434161094000003;28.11.2026;fr@example.fr",
        "123;LS-3;28.11.2026;;D3;UPS;Paket;1Z1;28.11.2026;b2b@example.org",
        "123;LS-4;28.11.2026;111-222-333;D4;Deutsche Post;Einschreiben;RR1DE;28.11.2026;",
    ), flow="sol-shipping")
    _run(gw)
    (confirmation,) = gw.outputs("rakuten-shipping")
    rows = read_csv_rows(confirmation, "utf-8")
    # A never-imported Rakuten.de number is confirmed; a French purchase id goes to the Rakuten France
    # confirmation instead, and a phone order is confirmed nowhere.
    assert [(r["order_no"], r["carrier"], r["dhl"]) for r in rows] == [
        ("999-888-777", "DHL", "1"), ("111-222-333", "Deutsche Post (Einschreiben)", "0")]
    assert rows[1]["tracking_url"] == "https://www.deutschepost.de/de/s/sendungsverfolgung.html?piececode=RR1DE"
    (france,) = gw.outputs("rakuten-fr-shipping")
    assert [(r["purchaseid"], r["transporter"], r["trackingnumber"]) for r in read_csv_rows(france, "utf-8")] == [
        ("40021877", "DHL", "00340434161094000003")]
    (entry,) = _journal(gw)
    assert [s["key"] for s in entry["skipped"]] == ["LS-3/1Z1"]
    # Only the first has an address among the confirmed Rakuten.de rows (Rakuten France tells its buyers itself).
    assert [rcpt for _, rcpt, _, _ in smtp.mailbox.messages] == [["nie-importiert@example.org"]]
