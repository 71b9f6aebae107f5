"""The rakuten-orders flow, value by value: Rakuten.de getOrders XML → SOL order import CSV.

Every column of the order import layout (docs/formats.md, "Order import CSV") that the shipped
mapping fills is checked against what the order says, for the shipped sample and for built orders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from conftest import SAMPLE_ORDERS, Install, order_xml, orders_file, read_csv_rows

LAYOUT = (
    "Mandant;Belegart;Referenznummer;Belegdatum;Liefertermin;A0Empfaenger;A0Anrede;A0Name1;A0Name2;A0Zusatz;"
    "A0Strasse;A0PLZ;A0Ort;A0Land;A0EMail;A0Telefon;A1Anrede;A1Name1;A1Name2;A1Zusatz;A1Strasse;A1PLZ;A1Ort;"
    "A1Land;Zahlungskond;Versandart;Kopftext;Position;Artikelnummer;AuspraegungID;Bezeichnung1;Bezeichnung2;"
    "Menge;Einzelpreis;Rabattbetrag;Steuersatz"
)
COLUMNS = LAYOUT.split(";")

# Columns the shipped mapping always leaves empty.
ALWAYS_EMPTY = {"Versandart": "Paket", "AuspraegungID": "", "Rabattbetrag": ""}  # Versandart: the setting's

# What order_xml() writes unless told otherwise, as the header columns of every row.
BUILT_HEAD: dict[str, str] = {
    "Mandant": "123", "Belegart": "VVA", "Referenznummer": "100-200-300", "Belegdatum": "27.11.2026",
    "Liefertermin": "29.11.2026", "A0Empfaenger": "D99999",
    "A0Anrede": "Herr", "A0Name1": "Max Muster", "A0Name2": "", "A0Zusatz": "", "A0Strasse": "Hauptstraße 5",
    "A0PLZ": "10115", "A0Ort": "Berlin", "A0Land": "D", "A0EMail": "max@example.org", "A0Telefon": "030 1",
    "A1Anrede": "Herr", "A1Name1": "Max Muster", "A1Name2": "", "A1Zusatz": "", "A1Strasse": "Hauptstraße 5",
    "A1PLZ": "10115", "A1Ort": "Berlin", "A1Land": "D",
    "Zahlungskond": "PAL", "Kopftext": "", **ALWAYS_EMPTY,
}


def run_once(install: Install, exit_code: int = 0) -> None:
    result = install.cli("run", "--once")
    assert result.exit_code == exit_code, result.output


def journal(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def convert_one(install: Install, xml: str, name: str = "orders.xml") -> list[dict[str, str]]:
    """Drop one file, run, and return the rows of its single output."""
    install.drop(name, xml)
    run_once(install)
    (out,) = install.outputs()
    return read_csv_rows(out)


def position(**columns: str) -> dict[str, str]:
    """The position columns of a row; unnamed ones empty."""
    base = {"Position": "", "Artikelnummer": "", "Bezeichnung1": "", "Bezeichnung2": "", "Menge": "",
            "Einzelpreis": "", "Steuersatz": ""}
    return {**base, **columns}


def shipping_row(pos: int, price: str) -> dict[str, str]:
    return position(Position=str(pos), Artikelnummer="VERSAND", Bezeichnung1="Versandkosten", Menge="1",
                    Einzelpreis=price, Steuersatz="19")


def expected_rows(head: dict[str, str], positions: list[dict[str, str]]) -> list[dict[str, str]]:
    rows = [{**head, **p} for p in positions]
    for row in rows:
        assert set(row) == set(COLUMNS), "test data must name every column"
    return rows


# -- the shipped sample ------------------------------------------------------------------------------------

SAMPLE_HEAD_1 = {
    "Mandant": "123", "Belegart": "VVA", "Referenznummer": "123-456-789", "Belegdatum": "27.11.2026",
    "Liefertermin": "29.11.2026", "A0Empfaenger": "D99999",
    "A0Anrede": "Herr", "A0Name1": "Max Mustermann", "A0Name2": "", "A0Zusatz": "", "A0Strasse": "Musterstraße 1",
    "A0PLZ": "11111", "A0Ort": "Musterstadt", "A0Land": "D", "A0EMail": "max@mustermann.example",
    "A0Telefon": "030 1234567",
    "A1Anrede": "Frau", "A1Name1": "Erika Mustermann", "A1Name2": "", "A1Zusatz": "Hinterhaus",
    "A1Strasse": "Gartenweg 7a", "A1PLZ": "11112", "A1Ort": "Musterstadt", "A1Land": "D",
    "Zahlungskond": "PAL", "Kopftext": "Bitte beim Nachbarn abgeben", **ALWAYS_EMPTY,
}
SAMPLE_HEAD_2 = {
    "Mandant": "123", "Belegart": "VVA", "Referenznummer": "987-654-321", "Belegdatum": "27.11.2026",
    "Liefertermin": "30.11.2026", "A0Empfaenger": "D99999",
    "A0Anrede": "Firma", "A0Name1": "Gabler & Co. KG", "A0Name2": "Erika Gabler", "A0Zusatz": "",
    "A0Strasse": "Lindenallee 12", "A0PLZ": "80331", "A0Ort": "München", "A0Land": "D",
    "A0EMail": "erika@example.org", "A0Telefon": "",
    "A1Anrede": "Firma", "A1Name1": "Gabler & Co. KG", "A1Name2": "Erika Gabler", "A1Zusatz": "",
    "A1Strasse": "Lindenallee 12", "A1PLZ": "80331", "A1Ort": "München", "A1Land": "D",
    "Zahlungskond": "VORKASSE", "Kopftext": "", **ALWAYS_EMPTY,
}


@pytest.fixture
def sample_output(install: Install) -> Path:
    install.drop("orders_de.xml", SAMPLE_ORDERS.read_bytes())
    run_once(install)
    (out,) = install.outputs()
    return out


def test_sample_becomes_one_file_named_after_input_and_journal_id(install: Install, sample_output: Path) -> None:
    assert sample_output.name == "auftraege_orders_de_1.csv"
    (entry,) = journal(install)
    assert entry["state"] == "done"
    assert entry["outputs"] == [str(sample_output)]
    assert not any(install.inbox().iterdir())


def test_sample_header_line_is_the_order_import_layout(sample_output: Path) -> None:
    first_line = sample_output.read_bytes().split(b"\r\n", 1)[0]
    assert first_line.decode("windows-1252") == LAYOUT


def test_sample_private_customer_order_with_coupon_converts_field_by_field(sample_output: Path) -> None:
    rows = [r for r in read_csv_rows(sample_output) if r["Referenznummer"] == "123-456-789"]
    assert rows == expected_rows(SAMPLE_HEAD_1, [
        position(Position="1", Artikelnummer="10001", Bezeichnung1='Kaffeebecher "Büro"', Menge="2",
                 Einzelpreis="12,90", Steuersatz="19"),
        position(Position="2", Artikelnummer="20001-BL-M", Bezeichnung1="Basic T-Shirt", Bezeichnung2="Blau, M",
                 Menge="1", Einzelpreis="19,90", Steuersatz="19"),
        position(Position="3", Artikelnummer="40001", Bezeichnung1='Kochbuch "Hausmannskost"', Menge="1",
                 Einzelpreis="24,00", Steuersatz="7"),
        shipping_row(4, "4,90"),
        position(Position="5", Artikelnummer="GUTSCHEIN", Bezeichnung1="Gutschein WINTER10",
                 Bezeichnung2="Neukunde", Menge="1", Einzelpreis="-11,40", Steuersatz="19"),
    ])


def test_sample_company_customer_order_without_coupon_converts_field_by_field(sample_output: Path) -> None:
    rows = [r for r in read_csv_rows(sample_output) if r["Referenznummer"] == "987-654-321"]
    assert rows == expected_rows(SAMPLE_HEAD_2, [
        position(Position="1", Artikelnummer="30001", Bezeichnung1="Frühstücks-Set", Menge="1",
                 Einzelpreis="29,90", Steuersatz="19"),
        shipping_row(2, "3,50"),
    ])


def test_sample_rows_keep_file_order_and_number_positions_per_order(sample_output: Path) -> None:
    rows = read_csv_rows(sample_output)
    assert [(r["Referenznummer"], r["Position"]) for r in rows] == [
        ("123-456-789", "1"), ("123-456-789", "2"), ("123-456-789", "3"), ("123-456-789", "4"),
        ("123-456-789", "5"), ("987-654-321", "1"), ("987-654-321", "2"),
    ]


def test_sample_file_is_windows_1252_with_crlf_after_every_line(sample_output: Path) -> None:
    data = sample_output.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert not data.startswith(b"\xef\xbb\xbf")
    for text in ("Musterstraße 1", "München", "Frühstücks-Set"):
        assert text.encode("windows-1252") in data
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    assert len(lines) == 1 + 1 + 7  # header, seven positions, the empty rest after the last CRLF
    assert all(b"\n" not in line and b"\r" not in line for line in lines)


def test_sample_quotes_are_doubled_inside_a_quoted_field(sample_output: Path) -> None:
    data = sample_output.read_bytes()
    assert ';"Kaffeebecher ""Büro""";'.encode("windows-1252") in data
    assert b';"Kochbuch ""Hausmannskost""";' in data
    # fields without a delimiter, quote or line break are not quoted
    assert b";Basic T-Shirt;Blau, M;" in data
    assert b";Gabler & Co. KG;" in data


# -- built orders ------------------------------------------------------------------------------------------


def test_missing_optional_elements_leave_their_columns_empty(install: Install) -> None:
    omitted = ("company", "address_add", "phone", "comment_client", "name_add", "max_shipping_date")
    xml = orders_file(order_xml(omit=omitted))
    for name in omitted:
        assert f"<{name}>" not in xml  # left out entirely, not just empty
    assert "<coupon>" not in xml
    rows = convert_one(install, xml)
    assert rows == expected_rows({**BUILT_HEAD, "A0Telefon": "", "Liefertermin": ""}, [
        position(Position="1", Artikelnummer="10001", Bezeichnung1="Kaffeebecher", Menge="1",
                 Einzelpreis="12,90", Steuersatz="19"),
        shipping_row(2, "4,90"),
    ])


def test_street_without_house_number_has_no_trailing_space(install: Install) -> None:
    xml = orders_file(order_xml(client={"street": "Am Markt"}, delivery={"street": "Postfach 12 34"},
                                omit=("street_no",)))
    assert "<street_no>" not in xml
    rows = convert_one(install, xml)
    assert {(r["A0Strasse"], r["A1Strasse"]) for r in rows} == {("Am Markt", "Postfach 12 34")}


def test_name_without_first_name_has_no_leading_space(install: Install) -> None:
    xml = orders_file(order_xml(client={"last_name": "Muster-Solo"}, delivery={"last_name": "Lager"},
                                omit=("first_name",)))
    assert "<first_name>" not in xml
    rows = convert_one(install, xml)
    assert {(r["A0Name1"], r["A1Name1"]) for r in rows} == {("Muster-Solo", "Lager")}


def test_company_customer_gets_firma_salutation_company_in_name1_and_person_in_name2(install: Install) -> None:
    rows = convert_one(install, orders_file(order_xml(
        client={"company": "Beispiel GmbH", "gender": "Frau", "first_name": "Anna", "last_name": "Schmidt"},
        delivery={"gender": "Herr", "first_name": "Bernd", "last_name": "Lager", "company": ""},
    )))
    assert len(rows) == 2
    for row in rows:
        assert (row["A0Anrede"], row["A0Name1"], row["A0Name2"]) == ("Firma", "Beispiel GmbH", "Anna Schmidt")
        assert (row["A1Anrede"], row["A1Name1"], row["A1Name2"]) == ("Herr", "Bernd Lager", "")


def test_private_customer_with_company_delivery_address(install: Install) -> None:
    rows = convert_one(install, orders_file(order_xml(
        client={"gender": "Frau", "first_name": "Anna", "last_name": "Schmidt"},
        delivery={"company": "Büro Schmidt KG", "first_name": "Anna", "last_name": "Schmidt"},
    )))
    for row in rows:
        assert (row["A0Anrede"], row["A0Name1"], row["A0Name2"]) == ("Frau", "Anna Schmidt", "")
        assert (row["A1Anrede"], row["A1Name1"], row["A1Name2"]) == ("Firma", "Büro Schmidt KG", "Anna Schmidt")


@pytest.mark.parametrize(("country", "sol_land"), [("AT", "A"), ("CH", "CH"), ("FR", "F"), ("US", "US")])
def test_delivery_address_abroad_goes_to_a1_with_the_sol_country_code(
    install: Install, country: str, sol_land: str
) -> None:
    delivery = {"gender": "Frau", "first_name": "Eva", "last_name": "Berger", "street": "Mariahilfer Straße",
                "street_no": "10/3", "address_add": "Top 4", "zip_code": "1060", "city": "Wien", "country": country}
    rows = convert_one(install, orders_file(order_xml(delivery=delivery)))
    a1 = {"A1Anrede": "Frau", "A1Name1": "Eva Berger", "A1Name2": "", "A1Zusatz": "Top 4",
          "A1Strasse": "Mariahilfer Straße 10/3", "A1PLZ": "1060", "A1Ort": "Wien", "A1Land": sol_land}
    assert rows == expected_rows({**BUILT_HEAD, **a1}, [
        position(Position="1", Artikelnummer="10001", Bezeichnung1="Kaffeebecher", Menge="1",
                 Einzelpreis="12,90", Steuersatz="19"),
        shipping_row(2, "4,90"),
    ])


def test_umlauts_and_xml_escapes_in_names_arrive_as_plain_windows_1252_text(install: Install) -> None:
    xml = orders_file(order_xml(
        client={"company": "Müller & Söhne <GmbH>", "first_name": "Jürgen", "last_name": "Weiß",
                "city": "Köln", "street": "Äußere Straße"},
        delivery={"first_name": "Zoë", "last_name": "O'Brien & Co", "city": "Düsseldorf"},
        items=[{"product_art_no": "T-1", "name": "Tee „Ostfriese“ <1 kg> & Kanne", "name_add": "10 € Pfand",
                "qty": "1", "price": "9.99", "tax": "2"}],
    ))
    assert "Müller &amp; Söhne &lt;GmbH&gt;" in xml
    install.drop("orders.xml", xml)
    run_once(install)
    (out,) = install.outputs()
    row = read_csv_rows(out)[0]
    assert (row["A0Name1"], row["A0Name2"], row["A0Ort"], row["A0Strasse"]) == (
        "Müller & Söhne <GmbH>", "Jürgen Weiß", "Köln", "Äußere Straße 5")
    assert (row["A1Name1"], row["A1Ort"]) == ("Zoë O'Brien & Co", "Düsseldorf")
    assert (row["Bezeichnung1"], row["Bezeichnung2"]) == ("Tee „Ostfriese“ <1 kg> & Kanne", "10 € Pfand")
    data = out.read_bytes()
    assert b"M\xfcller & S\xf6hne <GmbH>" in data
    assert b"Tee \x84Ostfriese\x93 <1 kg> & Kanne;10 \x80 Pfand" in data  # „ “ € as Windows-1252 has them
    assert b"&amp;" not in data and b"&lt;" not in data


def test_comment_with_delimiter_and_line_break_is_one_quoted_field(install: Install) -> None:
    xml = orders_file(order_xml()).replace(
        "<comment_client></comment_client>", "<comment_client>Tor 2; bitte klingeln\nab 14 Uhr</comment_client>")
    rows = convert_one(install, xml)
    assert [r["Kopftext"] for r in rows] == ["Tor 2; bitte klingeln\nab 14 Uhr"] * 2
    assert [r["Position"] for r in rows] == ["1", "2"]


HYPERLINK = '=HYPERLINK("http://evil.example/rechnung","Rechnung ansehen")'


def test_a_buyers_comment_that_is_a_formula_reaches_sol_as_text_not_as_a_formula(install: Install) -> None:
    xml = orders_file(order_xml(coupon={"code": "X", "total": "11.40"})).replace(
        "<comment_client></comment_client>", f"<comment_client>{escape(HYPERLINK)}</comment_client>")
    rows = convert_one(install, xml)
    assert {r["Kopftext"] for r in rows} == {"'" + HYPERLINK}
    assert "-11,40" in [r["Einzelpreis"] for r in rows]  # a negative amount is a number, left alone


def test_formulas_keep_writes_the_comment_as_the_buyer_wrote_it(install: Install) -> None:
    path = install.root / "mappings" / "rakuten-orders.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("    encoding: windows-1252\n") >= 1
    path.write_text(text.replace("    encoding: windows-1252\n", "    encoding: windows-1252\n    formulas: keep\n", 1),
                    encoding="utf-8")
    xml = orders_file(order_xml()).replace(
        "<comment_client></comment_client>", f"<comment_client>{escape(HYPERLINK)}</comment_client>")
    assert {r["Kopftext"] for r in convert_one(install, xml)} == {HYPERLINK}


def test_several_files_in_one_run_each_get_their_own_output(install: Install) -> None:
    numbers = {"mon.xml": "111-000-001", "tue.xml": "222-000-002", "wed.xml": "333-000-003"}
    for name, order_no in numbers.items():
        install.drop(name, orders_file(order_xml(order_no)))
    run_once(install)
    entries = journal(install)
    assert sorted(e["name"] for e in entries) == sorted(numbers)
    assert len(install.outputs()) == 3
    for entry in entries:
        assert entry["state"] == "done"
        stem = entry["name"].removesuffix(".xml")
        (location,) = entry["outputs"]
        out = Path(location)
        assert out.name == f"auftraege_{stem}_{entry['id']}.csv"
        assert out in install.outputs()
        assert [r["Referenznummer"] for r in read_csv_rows(out)] == [numbers[entry["name"]]] * 2


def test_order_with_several_items_and_quantities(install: Install) -> None:
    items = [
        {"product_art_no": "10001", "name": "Kaffeebecher", "qty": "3", "price": "12.90", "tax": "1"},
        {"product_art_no": "20001-BL-M", "name": "Basic T-Shirt", "name_add": "Blau, M", "qty": "12",
         "price": "19.90", "tax": "1"},
        {"product_art_no": "40001", "name": "Kochbuch", "qty": "2", "price": "24", "tax": "2"},
        {"product_art_no": "50001", "name": "Gutscheinkarte", "qty": "1", "price": "25.00", "tax": "3"},
        {"product_art_no": "60001", "name": "Tageszeitung", "qty": "100", "price": "1.10", "tax": "4"},
    ]
    rows = convert_one(install, orders_file(order_xml(items=items, shipping="5.95")))
    assert rows == expected_rows(BUILT_HEAD, [
        position(Position="1", Artikelnummer="10001", Bezeichnung1="Kaffeebecher", Menge="3",
                 Einzelpreis="12,90", Steuersatz="19"),
        position(Position="2", Artikelnummer="20001-BL-M", Bezeichnung1="Basic T-Shirt", Bezeichnung2="Blau, M",
                 Menge="12", Einzelpreis="19,90", Steuersatz="19"),
        position(Position="3", Artikelnummer="40001", Bezeichnung1="Kochbuch", Menge="2",
                 Einzelpreis="24,00", Steuersatz="7"),
        position(Position="4", Artikelnummer="50001", Bezeichnung1="Gutscheinkarte", Menge="1",
                 Einzelpreis="25,00", Steuersatz="0"),
        position(Position="5", Artikelnummer="60001", Bezeichnung1="Tageszeitung", Menge="100",
                 Einzelpreis="1,10", Steuersatz="10,7"),
        shipping_row(6, "5,95"),
    ])


@pytest.mark.parametrize("shipping", ["0", "0.00", None], ids=["0", "0.00", "omitted"])
def test_no_shipping_row_when_shipping_is_zero_or_absent(install: Install, shipping: str | None) -> None:
    order = order_xml(omit=("shipping",)) if shipping is None else order_xml(shipping=shipping)
    rows = convert_one(install, orders_file(order, order_xml("100-200-301", shipping="2.50")))
    assert [(r["Referenznummer"], r["Position"], r["Artikelnummer"]) for r in rows] == [
        ("100-200-300", "1", "10001"),
        ("100-200-301", "1", "10001"), ("100-200-301", "2", "VERSAND"),
    ]


@pytest.mark.parametrize(("price", "written"), [
    ("1234.5", "1234,50"),
    ("1234.50", "1234,50"),
    ("7", "7,00"),
    ("1000000.1", "1000000,10"),
    ("12345.678", "12345,68"),
    ("0.125", "0,13"),
    ("0.005", "0,01"),
    ("19.994", "19,99"),
])
def test_prices_are_written_with_decimal_comma_and_two_places(install: Install, price: str, written: str) -> None:
    items = [{"product_art_no": "A-1", "name": "Teuer", "qty": "1", "price": price, "tax": "1"}]
    coupon = {"coupon_id": "9", "total": price, "code": "C", "comment": ""}
    rows = convert_one(install, orders_file(order_xml(items=items, shipping=price, coupon=coupon)))
    assert [(r["Artikelnummer"], r["Einzelpreis"]) for r in rows] == [
        ("A-1", written), ("VERSAND", written), ("GUTSCHEIN", "-" + written),
    ]


def test_file_with_zero_orders_is_done_without_an_output(install: Install) -> None:
    install.drop("empty.xml", orders_file())
    run_once(install)
    assert install.outputs() == []
    assert not any(install.outbox().iterdir())
    (entry,) = journal(install)
    assert entry["state"] == "done"
    assert entry["outputs"] == [] and entry["pending_outputs"] == []
    assert entry["error"] is None
    assert entry["note"] == "no records to convert"
    assert Path(entry["stored_path"]).is_file()
    assert install.archive in Path(entry["stored_path"]).parents
    assert not any(install.inbox().iterdir())


@pytest.mark.parametrize(("overrides", "column", "char"), [
    ({"client": {"last_name": "Wałęsa"}}, "A0Name1", "ł"),
    ({"delivery": {"city": "Łódź"}}, "A1Ort", "Ł"),
    ({"items": [{"product_art_no": "10001", "name": "Becher 😀", "qty": "1", "price": "1.00", "tax": "1"}]},
     "Bezeichnung1", "😀"),
], ids=["l-stroke-in-client-name", "l-stroke-in-delivery-city", "emoji-in-item-name"])
def test_character_not_in_windows_1252_quarantines_the_file_naming_order_and_column(
    install: Install, overrides: dict[str, Any], column: str, char: str
) -> None:
    install.drop("fine.xml", orders_file(order_xml("100-000-001")))
    install.drop("odd.xml", orders_file(order_xml("100-000-002"), order_xml("555-666-777", **overrides)))
    run_once(install, exit_code=1)
    entries = {e["name"]: e for e in journal(install)}
    assert entries["fine.xml"]["state"] == "done"
    bad = entries["odd.xml"]
    assert bad["state"] == "failed"
    assert bad["outputs"] == []
    assert "order 555-666-777" in bad["error"]
    assert f"field '{column}'" in bad["error"]
    assert repr(char) in bad["error"] and "windows-1252" in bad["error"]
    stored = install.quarantine / "rakuten-orders" / f"{bad['id']}--odd.xml"
    assert Path(bad["stored_path"]) == stored and stored.is_file()
    assert bad["error"] in stored.with_name(stored.name + ".reason.txt").read_text(encoding="utf-8")
    # nothing of the quarantined file reached SOL, not even its good first order
    (out,) = install.outputs()
    assert [r["Referenznummer"] for r in read_csv_rows(out)] == ["100-000-001"] * 2
