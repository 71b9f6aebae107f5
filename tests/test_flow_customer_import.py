"""The customer-import flow: a customer list filled in from templates/kunden-vorlage.csv → SOL customer import.

Every row is checked (postcode by country, country code, e-mail address, VAT id by its country prefix, …);
a row that fails is not imported and the journal lists it with its row number and the reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Install, read_csv_rows

FLOW = "customer-import"
LAYOUT = ("Mandant;Kto;Anrede;Name1;Name2;Zusatz;Strasse;PLZ;Ort;Land;Telefon;EMail;EUUStID;Zahlungskond;"
          "Preisliste;Kundengruppe;Quelle;QuelleKundenID")
COLUMNS = LAYOUT.split(";")
SAMPLE = REPO / "examples" / FLOW / "sample" / "input" / "kunden_neu.csv"

GATEWAY_YAML = f"""\
state: state
quarantine: quarantine
archive: {{ folder: archive, keep_days: 30 }}
settle_seconds: 0
flows:
  {FLOW}:
    mapping: mappings/{FLOW}.yaml
    source: {{ folder: inbox/{FLOW}, include: ["*.csv"] }}
    outbox: {{ folder: outbox/{FLOW} }}
"""


@pytest.fixture
def gw(tmp_path: Path) -> Install:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / f"{FLOW}.yaml", root / "mappings")
    shutil.copytree(REPO / "examples" / FLOW, root / "examples" / FLOW)
    (root / "gateway.yaml").write_text(GATEWAY_YAML, encoding="utf-8")
    return Install(root)


def run(gw: Install, exit_code: int = 0) -> None:
    result = gw.cli("run", "--once")
    assert result.exit_code == exit_code, result.output


def journal(gw: Install) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def imported(gw: Install) -> list[dict[str, str]]:
    return [row for out in gw.outputs(FLOW) for row in read_csv_rows(out)]


def customer_list(*rows: dict[str, str], encoding: str = "windows-1252") -> bytes:
    """A filled-in template: the header of templates/kunden-vorlage.csv and one line per customer."""
    header = (REPO / "templates" / "kunden-vorlage.csv").read_text(encoding="ascii")
    lines = [";".join(row.get(c, "") for c in COLUMNS) + "\r\n" for row in rows]
    return (header + "".join(lines)).encode(encoding)


def customer(name: str, **fields: str) -> dict[str, str]:
    base = {"Mandant": "123", "Anrede": "Herr", "Name1": name, "Strasse": "Hauptstraße 1", "PLZ": "10115",
            "Ort": "Berlin", "Land": "D", "Kundengruppe": "ENDK"}
    return {**base, **fields}


# -- the template and the golden example ---------------------------------------------------------------------


def test_the_empty_template_has_the_customer_import_columns_and_imports_nothing(gw: Install) -> None:
    template = (REPO / "templates" / "kunden-vorlage.csv").read_bytes()
    assert template == (LAYOUT + "\r\n").encode("ascii")
    gw.drop("vorlage.csv", template, flow=FLOW)
    run(gw)
    (entry,) = journal(gw)
    assert (entry["state"], entry["outputs"], entry["note"]) == ("done", [], "no records to convert")


def test_check_and_the_golden_example_pass(gw: Install) -> None:
    assert gw.cli("check").exit_code == 0
    result = gw.cli("test")
    assert result.exit_code == 0, result.output
    assert "PASS  customer-import/sample" in result.output


def test_sample_imports_the_good_rows_in_windows_1252_and_lists_each_refused_row_with_its_reason(gw: Install) -> None:
    gw.drop("kunden_neu.csv", SAMPLE.read_bytes(), flow=FLOW)
    run(gw)
    (out,) = gw.outputs(FLOW)
    data = out.read_bytes()
    assert data.split(b"\r\n")[0].decode("windows-1252") == LAYOUT
    assert "Möbel Weiß GmbH".encode("windows-1252") in data
    rows = read_csv_rows(out)
    assert [r["Name1"] for r in rows] == [
        "Jutta Schäfer", "Möbel Weiß GmbH", "Holzbau Gruber KG", "Beat Müller", "Maison Dupont SARL"]
    assert [(r["Mandant"], r["PLZ"], r["Land"], r["EMail"], r["EUUStID"]) for r in rows] == [
        ("123", "01067", "D", "jutta.schaefer@example.org", ""),   # Mandant empty → the setting
        ("123", "70565", "D", "einkauf@moebel-weiss.example", "DE123456789"),  # DE → D; spaces trimmed
        ("123", "1060", "A", "office@holzbau-gruber.example", "ATU12345678"),
        ("123", "8001", "CH", "", ""),                             # "ch" → CH; no e-mail is fine
        ("123", "75002", "F", "contact@dupont.example", "FR12345678901"),
    ]
    (entry,) = journal(gw)
    assert entry["state"] == "done"
    assert [(s["key"], s["reason"]) for s in entry["skipped"]] == [
        ("row no. 5", "'Klaus Vogel': the PLZ '1067' is not 5 digits, as German postcodes are "
                      "(Excel drops a leading 0: format the column PLZ as Text)"),
        ("row no. 6", "'Anna Berg': the e-mail address 'anna.berg@' is not an address like name@firma.de"),
        ("row no. 7", "'Technik Nord GmbH': the VAT id 'DE12345678' is not DE and 9 digits, as German ones are"),
        ("row no. 8", "'Ole Hansen': the country 'XX' is not in the table 'land' of mappings/customer-import.yaml "
                      "(D or DE, A or AT, CH, …); add it there if it is right"),
        ("row no. 9", "'Bäckerei Huber': the VAT id 'AT12345678' is not ATU and 8 digits, as Austrian ones are"),
        ("row no. 10", "Name1 is empty: every customer needs a name"),
        ("row no. 12", "'Zu Langes Konto': the Kto 'D99999000011112222333' is longer than 20 characters"),
    ]


def test_a_list_saved_as_csv_utf8_by_excel_gives_the_same_file(gw: Install, tmp_path: Path) -> None:
    text = SAMPLE.read_bytes().decode("windows-1252")
    gw.drop("kunden_neu.csv", b"\xef\xbb\xbf" + text.encode("utf-8"), flow=FLOW)
    run(gw)
    (out,) = gw.outputs(FLOW)
    expected = REPO / "examples" / FLOW / "sample" / "expected" / "kunden_kunden_neu_1.csv"
    assert out.read_bytes() == expected.read_bytes()


# -- the checks, one by one -------------------------------------------------------------------------------


CASES: list[tuple[dict[str, str], str | None]] = [
    # postcode by country
    ({"Land": "D", "PLZ": "01067"}, None),
    ({"Land": "DE", "PLZ": "1067"}, "the PLZ '1067' is not 5 digits"),
    ({"Land": "D", "PLZ": "123456"}, "the PLZ '123456' is not 5 digits"),
    ({"Land": "D", "PLZ": "1O115"}, "the PLZ '1O115' is not 5 digits"),
    ({"Land": "D", "PLZ": " 10115 "}, None),
    ({"Land": "A", "PLZ": "1060"}, None),
    ({"Land": "AT", "PLZ": "10600"}, "the PLZ '10600' is not 4 digits, as postcodes in Austria are"),
    ({"Land": "CH", "PLZ": "8001"}, None),
    ({"Land": "CH", "PLZ": "CH-8001"}, "the PLZ 'CH-8001' is not 4 digits, as postcodes in Switzerland are"),
    ({"Land": "NL", "PLZ": "1012 AB"}, None),
    ({"Land": "F", "PLZ": ""}, "the PLZ is empty"),
    # country code
    ({"Land": "fr", "PLZ": "75002"}, None),
    ({"Land": "", "PLZ": "10115"}, "the country '' is not in the table 'land'"),
    ({"Land": "Deutschland"}, "the country 'Deutschland' is not in the table 'land'"),
    # e-mail address
    ({"EMail": "a.b-c+d@sub.example.de"}, None),
    ({"EMail": "kein-at-zeichen.de"}, "the e-mail address 'kein-at-zeichen.de' is not"),
    ({"EMail": "zwei@@example.de"}, "is not an address like"),
    ({"EMail": "a@b@example.de"}, "is not an address like"),
    ({"EMail": "@example.de"}, "is not an address like"),
    ({"EMail": "max@localhost"}, "is not an address like"),
    ({"EMail": "max@.example.de"}, "is not an address like"),
    ({"EMail": "max@example.de."}, "is not an address like"),
    ({"EMail": "max@example..de"}, "is not an address like"),
    ({"EMail": "max muster@example.de"}, "is not an address like"),
    ({"EMail": "a@example.de, b@example.de"}, "is not an address like"),
    # VAT id by country prefix
    ({"EUUStID": "DE123456789"}, None),
    ({"EUUStID": "de 123 456 789"}, None),
    ({"EUUStID": "DE1234567890"}, "is not DE and 9 digits"),
    ({"EUUStID": "DE12345678X"}, "is not DE and 9 digits"),
    ({"EUUStID": "ATU12345678"}, None),
    ({"EUUStID": "ATU1234567"}, "is not ATU and 8 digits"),
    ({"EUUStID": "AT123456789"}, "is not ATU and 8 digits"),
    ({"EUUStID": "NL123456789B01"}, None),
    ({"EUUStID": "FR1234"}, "is not a country prefix and 8 to 12 letters or digits"),
    ({"EUUStID": "CHE123456789"}, "does not start with the prefix of an EU country"),
    ({"EUUStID": "US12345678"}, "does not start with the prefix of an EU country"),
    # the rest
    ({"Mandant": ""}, None),
    ({"Mandant": "12a"}, "the Mandant '12a' is not a number"),
    ({"Kto": "D" + "1" * 19}, None),
    ({"Kto": "D" + "1" * 20}, "is longer than 20 characters"),
]


def test_each_check_refuses_exactly_the_rows_it_should(gw: Install) -> None:
    rows = [customer(f"Kunde {i}", **fields) for i, (fields, _) in enumerate(CASES, 1)]
    gw.drop("liste.csv", customer_list(*rows), flow=FLOW)
    run(gw)
    (entry,) = journal(gw)
    reasons = {s["key"]: s["reason"] for s in entry["skipped"]}
    names = {r["Name1"] for r in imported(gw)}
    for i, (fields, problem) in enumerate(CASES, 1):
        if problem is None:
            assert f"Kunde {i}" in names, (fields, reasons.get(f"row no. {i}"))
        else:
            assert f"row no. {i}" in reasons, fields
            assert reasons[f"row no. {i}"].startswith(f"'Kunde {i}': ") and problem in reasons[f"row no. {i}"], (
                fields, reasons[f"row no. {i}"])
    assert len(names) + len(reasons) == len(CASES)


def test_values_are_trimmed_and_normalised_for_sol(gw: Install) -> None:
    gw.drop("liste.csv", customer_list(customer(" Gabler & Co. KG ", Land="at", PLZ=" 6020", Ort="Innsbruck ",
                                                EUUStID="atu 1234 5678", EMail=" info@gabler.example")), flow=FLOW)
    run(gw)
    (row,) = imported(gw)
    assert (row["Name1"], row["Land"], row["PLZ"], row["Ort"], row["EUUStID"], row["EMail"]) == (
        "Gabler & Co. KG", "A", "6020", "Innsbruck", "ATU12345678", "info@gabler.example")


def test_a_list_without_a_needed_column_is_refused_whole(gw: Install) -> None:
    gw.drop("liste.csv", "Name1;PLZ;Ort\r\nMax;10115;Berlin\r\n".encode("windows-1252"), flow=FLOW)
    run(gw, exit_code=1)
    (entry,) = journal(gw)
    assert entry["state"] == "failed"
    assert "Land" in entry["error"] and "EMail" in entry["error"]
    assert gw.outputs(FLOW) == []


def test_a_name_windows_1252_cannot_hold_stops_the_file_naming_row_and_column(gw: Install) -> None:
    gw.drop("liste.csv", customer_list(customer("Anna"), customer("Lech Wałęsa"), encoding="utf-8"), flow=FLOW)
    run(gw, exit_code=1)
    (entry,) = journal(gw)
    assert entry["state"] == "failed"
    assert "row no. 2" in entry["error"] and "'Name1'" in entry["error"] and "windows-1252" in entry["error"]
    assert gw.outputs(FLOW) == []
