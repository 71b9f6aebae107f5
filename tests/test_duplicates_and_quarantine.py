"""Exactly once, and bad inputs aside: duplicates, skipped orders, quarantine with reasons, retry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE_ORDERS, Install, order_xml, orders_file, read_csv_rows

FLOW = "rakuten-orders"


def run_once(install: Install, exit_code: int = 0) -> None:
    result = install.cli("run", "--once")
    assert result.exit_code == exit_code, result.output


def journal(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def entry_named(install: Install, name: str) -> dict[str, Any]:
    (entry,) = [e for e in journal(install) if e["name"] == name]
    return entry


def delivered_order_numbers(install: Install) -> list[str]:
    """Every Referenznummer in the outbox, once per order (not per position)."""
    numbers: list[str] = []
    for out in install.outputs():
        for row in read_csv_rows(out):
            if row["Position"] == "1":
                numbers.append(row["Referenznummer"])
    return numbers


def quarantined(install: Install, entry: dict[str, Any]) -> tuple[Path, Path]:
    """The quarantined input and its reason file, checked to be where the admin looks for them."""
    stored = install.quarantine / FLOW / f"{entry['id']}--{entry['name']}"
    reason = stored.with_name(stored.name + ".reason.txt")
    assert Path(entry["stored_path"]) == stored
    assert stored.is_file(), stored
    assert reason.is_file(), reason
    return stored, reason


# -- duplicates ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("same_run", [False, True], ids=["later-run", "same-run"])
def test_same_file_content_twice_is_a_duplicate_and_delivered_once(install: Install, same_run: bool) -> None:
    content = orders_file(order_xml("100-000-001"), order_xml("100-000-002"))
    install.drop("a.xml", content)
    if not same_run:
        run_once(install)
    install.drop("b.xml", content)
    run_once(install)
    first, second = journal(install)
    assert (first["name"], first["state"]) == ("a.xml", "done")
    assert (second["name"], second["state"]) == ("b.xml", "duplicate")
    assert second["outputs"] == [] and second["pending_outputs"] == []
    assert second["note"] == f"same content as input {first['id']}"
    assert [p.name for p in install.outputs()] == [f"auftraege_a_{first['id']}.csv"]
    assert delivered_order_numbers(install) == ["100-000-001", "100-000-002"]
    assert install.archive in Path(second["stored_path"]).parents and Path(second["stored_path"]).is_file()


def test_order_number_delivered_before_is_skipped_and_the_rest_of_the_file_delivered(install: Install) -> None:
    install.drop("monday.xml", orders_file(order_xml("111-111-111")))
    run_once(install)
    # Rakuten sends the order again (changed meanwhile) together with a new one
    install.drop("tuesday.xml", orders_file(order_xml("111-111-111", shipping="0"), order_xml("222-222-222")))
    run_once(install)
    monday, tuesday = journal(install)
    assert tuesday["state"] == "done"
    assert tuesday["skipped"] == [
        {"key": "111-111-111", "reason": f"order number 111-111-111 was already delivered (input {monday['id']})"},
    ]
    (location,) = tuesday["outputs"]
    rows = read_csv_rows(Path(location))
    assert [(r["Referenznummer"], r["Position"]) for r in rows] == [("222-222-222", "1"), ("222-222-222", "2")]
    assert sorted(delivered_order_numbers(install)) == ["111-111-111", "222-222-222"]


def test_order_number_twice_in_one_file_is_delivered_once(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("333-333-333"), order_xml("333-333-333", shipping="9.99"),
                                      order_xml("444-444-444")))
    run_once(install)
    (entry,) = journal(install)
    assert entry["state"] == "done"
    assert entry["skipped"] == [
        {"key": "333-333-333", "reason": "order number 333-333-333 was already delivered (earlier in this file)"},
    ]
    (out,) = install.outputs()
    rows = read_csv_rows(out)
    assert [(r["Referenznummer"], r["Artikelnummer"], r["Einzelpreis"]) for r in rows] == [
        ("333-333-333", "10001", "12,90"), ("333-333-333", "VERSAND", "4,90"),  # the first one counts
        ("444-444-444", "10001", "12,90"), ("444-444-444", "VERSAND", "4,90"),
    ]


def test_file_whose_orders_were_all_delivered_before_is_a_duplicate_without_output(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("100-000-001"), order_xml("100-000-002")))
    run_once(install)
    # other content (order and shipping changed), same order numbers
    install.drop("b.xml", orders_file(order_xml("100-000-002", shipping="1.00"), order_xml("100-000-001")))
    run_once(install)
    first, second = journal(install)
    assert second["state"] == "duplicate"
    assert second["outputs"] == []
    assert second["note"] == "all 2 records were delivered before"
    assert [s["key"] for s in second["skipped"]] == ["100-000-002", "100-000-001"]
    assert all(f"(input {first['id']})" in s["reason"] for s in second["skipped"])
    assert len(install.outputs()) == 1


# -- quarantine ------------------------------------------------------------------------------------------------


def test_malformed_xml_is_quarantined_with_its_line_and_other_files_are_processed(install: Install) -> None:
    lines = SAMPLE_ORDERS.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[26].strip() == "</delivery_address>"
    lines[26] = lines[26].replace("</delivery_address>", "</delivery>")  # line 27 of the file
    broken = "".join(lines).encode("utf-8")
    install.drop("broken.xml", broken)
    install.drop("good.xml", orders_file(order_xml("777-777-777")))
    run_once(install, exit_code=1)
    bad = entry_named(install, "broken.xml")
    assert bad["state"] == "failed"
    assert bad["outputs"] == []
    assert bad["error"].startswith("broken.xml, line 27, column ")
    assert "the XML is broken" in bad["error"]
    stored, reason = quarantined(install, bad)
    assert stored.read_bytes() == broken
    text = reason.read_text(encoding="utf-8")
    assert text.startswith(bad["error"] + "\n")
    assert f"gateway retry {bad['id']}" in text
    # the good file went through; nothing of the broken one (not even its first, intact order)
    assert entry_named(install, "good.xml")["state"] == "done"
    assert delivered_order_numbers(install) == ["777-777-777"]
    assert not any(install.inbox().iterdir())


def test_unknown_payment_code_is_quarantined_and_delivered_after_mapping_fix_and_retry(install: Install) -> None:
    install.drop("orders.xml", orders_file(order_xml("500-600-700", payment="XYZ"), order_xml("500-600-701")))
    run_once(install, exit_code=1)
    (entry,) = journal(install)
    assert entry["state"] == "failed"
    error = entry["error"]
    assert "order 500-600-700" in error
    assert "field 'Zahlungskond'" in error
    assert "'XYZ' is not in the lookup table 'zahlungskond'" in error
    _, reason = quarantined(install, entry)
    assert error in reason.read_text(encoding="utf-8")
    assert install.outputs() == []

    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    text = mapping.read_text(encoding="utf-8")
    assert text.count("      BAR: BARZAHLEN\n") == 1
    mapping.write_text(text.replace("      BAR: BARZAHLEN\n", "      BAR: BARZAHLEN\n      XYZ: NEUEZAHLART\n"),
                       encoding="utf-8")
    assert install.cli("check").exit_code == 0

    result = install.cli("retry", str(entry["id"]))
    assert result.exit_code == 0, result.output
    assert f"input {entry['id']} ({FLOW}: orders.xml) will be processed by the next run" in result.stdout
    assert list((install.quarantine / FLOW).iterdir()) == []
    assert install.outputs() == []  # retry alone delivers nothing

    run_once(install)
    (after,) = journal(install)
    assert (after["id"], after["state"], after["error"], after["attempts"]) == (entry["id"], "done", None, 2)
    (out,) = install.outputs()
    rows = read_csv_rows(out)
    assert [(r["Referenznummer"], r["Position"], r["Zahlungskond"]) for r in rows] == [
        ("500-600-700", "1", "NEUEZAHLART"), ("500-600-700", "2", "NEUEZAHLART"),
        ("500-600-701", "1", "PAL"), ("500-600-701", "2", "PAL"),
    ]


@pytest.mark.parametrize("how", ["empty", "omitted"])
def test_order_without_order_number_is_quarantined(install: Install, how: str) -> None:
    order = order_xml("") if how == "empty" else order_xml(omit=("order_no",))
    install.drop("orders.xml", orders_file(order_xml("100-000-001"), order))
    run_once(install, exit_code=1)
    (entry,) = journal(install)
    assert entry["state"] == "failed"
    assert "the order number is empty" in entry["error"]
    assert entry["error"].startswith("orders.xml, line 3")
    quarantined(install, entry)
    assert install.outputs() == []


@pytest.mark.parametrize(("order", "field", "message"), [
    (order_xml("100-000-009", omit=("created",)), "Belegdatum", "expected a date, but the field is empty"),
    (order_xml("100-000-009", items=[{"product_art_no": "", "name": "x", "qty": "1", "price": "1.00", "tax": "1"}]),
     "Artikelnummer", "a value is required here, but it came out empty"),
    (order_xml("100-000-009", items=[{"product_art_no": "A", "name": "x", "qty": "1", "price": "", "tax": "1"}]),
     "Einzelpreis", "expected a number, but the field is empty"),
], ids=["created", "product_art_no", "price"])
def test_order_missing_a_required_value_is_quarantined_naming_order_and_field(
    install: Install, order: str, field: str, message: str
) -> None:
    install.drop("orders.xml", orders_file(order))
    run_once(install, exit_code=1)
    (entry,) = journal(install)
    assert entry["state"] == "failed"
    assert "order 100-000-009" in entry["error"]
    assert f"field '{field}': {message}" in entry["error"]
    quarantined(install, entry)
    assert install.outputs() == []


@pytest.mark.parametrize("name", [".x.xml", "x.xml.part", "x.xml.tmp", "x.xml~", "x.txt"])
def test_temporary_or_not_included_file_names_are_left_in_the_inbox(install: Install, name: str) -> None:
    content = orders_file(order_xml("100-000-001"))
    install.drop(name, content)
    run_once(install)
    assert [p.name for p in install.inbox().iterdir()] == [name]
    assert (install.inbox() / name).read_text(encoding="utf-8") == content
    assert journal(install) == []
    assert install.outputs() == []
    assert not install.quarantine.exists() or not any(install.quarantine.rglob("*"))


def test_temporary_file_is_taken_once_renamed_to_its_final_name(install: Install) -> None:
    part = install.drop("x.xml.part", orders_file(order_xml("100-000-001")))
    run_once(install)
    assert journal(install) == []
    part.rename(install.inbox() / "x.xml")
    run_once(install)
    (entry,) = journal(install)
    assert (entry["name"], entry["state"]) == ("x.xml", "done")
    assert delivered_order_numbers(install) == ["100-000-001"]


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE result [<!ENTITY name "Eve">]>',
    '<!DOCTYPE result SYSTEM "http://example.invalid/orders.dtd">',
    "<!DOCTYPE result>",
], ids=["internal-subset", "external-dtd", "bare"])
def test_document_with_doctype_is_quarantined(install: Install, doctype: str) -> None:
    body = orders_file(order_xml("100-000-001"))
    head, rest = body.split("\n", 1)
    install.drop("dtd.xml", f"{head}\n{doctype}\n{rest}")
    run_once(install, exit_code=1)
    (entry,) = journal(install)
    assert entry["state"] == "failed"
    assert "<!DOCTYPE" in entry["error"] and "DTD" in entry["error"]
    quarantined(install, entry)
    assert install.outputs() == []


def test_document_with_doctype_and_no_orders_is_quarantined(install: Install) -> None:
    install.drop("dtd.xml", '<?xml version="1.0"?>\n<!DOCTYPE result [<!ENTITY x "y">]>\n'
                            "<result><success>1</success><orders><paging><total>0</total></paging></orders></result>\n")
    run_once(install, exit_code=1)
    (entry,) = journal(install)
    assert entry["state"] == "failed"
    assert "DTD" in (entry["error"] or "")


# -- retry -------------------------------------------------------------------------------------------------------


def test_retry_of_duplicate_reprocesses_it_but_never_delivers_a_delivered_order_again(install: Install) -> None:
    content = orders_file(order_xml("100-000-001"), order_xml("100-000-002"))
    install.drop("a.xml", content)
    install.drop("b.xml", content)
    run_once(install)
    first, dup = journal(install)
    assert dup["state"] == "duplicate" and dup["skipped"] == []

    result = install.cli("retry", str(dup["id"]))
    assert result.exit_code == 0, result.output
    assert f"input {dup['id']} ({FLOW}: b.xml) will be processed by the next run" in result.stdout
    run_once(install)

    again = entry_named(install, "b.xml")
    assert again["attempts"] == 2  # converted again, not just looked up by content
    assert again["state"] == "duplicate"
    assert again["outputs"] == []
    assert again["note"] == "all 2 records were delivered before"
    assert [s["key"] for s in again["skipped"]] == ["100-000-001", "100-000-002"]
    assert all(f"(input {first['id']})" in s["reason"] for s in again["skipped"])
    assert len(install.outputs()) == 1
    assert delivered_order_numbers(install) == ["100-000-001", "100-000-002"]


def test_retry_of_quarantined_file_skips_orders_delivered_meanwhile(install: Install) -> None:
    install.drop("old.xml", orders_file(order_xml("100-000-001", payment="XYZ"), order_xml("100-000-002")))
    run_once(install, exit_code=1)
    # meanwhile the second order arrives again in a good file and is delivered
    install.drop("new.xml", orders_file(order_xml("100-000-002")))
    run_once(install)
    old = entry_named(install, "old.xml")
    new = entry_named(install, "new.xml")
    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    original = mapping.read_text(encoding="utf-8")
    assert "XYZ" not in original
    fixed = original.replace("      PP: VORKASSE", "      XYZ: PAL\n      PP: VORKASSE")
    assert fixed != original
    mapping.write_text(fixed, encoding="utf-8")
    assert install.cli("retry", str(old["id"])).exit_code == 0
    run_once(install)
    after = entry_named(install, "old.xml")
    assert after["state"] == "done"
    assert [s["key"] for s in after["skipped"]] == ["100-000-002"]
    assert f"(input {new['id']})" in after["skipped"][0]["reason"]
    assert sorted(delivered_order_numbers(install)) == ["100-000-001", "100-000-002"]


def test_retry_of_unknown_id_fails_with_a_message(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("100-000-001")))
    run_once(install)
    result = install.cli("retry", "99")
    assert result.exit_code != 0
    assert "input 99: no such entry in the journal" in result.stderr
    assert entry_named(install, "a.xml")["state"] == "done"


def test_retry_of_a_done_input_is_refused(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("100-000-001")))
    run_once(install)
    (entry,) = journal(install)
    result = install.cli("retry", str(entry["id"]))
    assert result.exit_code == 1
    assert f"input {entry['id']} is done; only quarantined or duplicate inputs" in result.stderr
    run_once(install)
    assert journal(install) == [entry]
    assert len(install.outputs()) == 1
