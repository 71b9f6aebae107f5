"""``gateway test``: golden examples pass, and a change in the mapping shows as a readable diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO, Install


@pytest.fixture
def gw(install: Install) -> Install:
    shutil.copytree(REPO / "examples" / "rakuten-orders", install.root / "examples" / "rakuten-orders")
    return install


def _mapping(gw: Install) -> Path:
    return gw.root / "mappings" / "rakuten-orders.yaml"


def test_shipped_examples_pass(gw: Install) -> None:
    result = gw.cli("test")
    assert result.exit_code == 0, result.output
    assert "PASS  rakuten-orders/sample" in result.output
    assert "PASS  rakuten-orders/unknown-payment" in result.output
    assert result.output.rstrip().endswith("4 passed, 0 failed")


def test_a_changed_mapping_fails_with_a_diff_naming_the_lines(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    _mapping(gw).write_text(text.replace("PAL: PAL ", "PAL: PAYPAL "), encoding="utf-8")
    result = gw.cli("test", "rakuten-orders")
    assert result.exit_code == 1
    assert "FAIL  rakuten-orders/sample" in result.output
    assert "auftraege_orders_de_1.csv differs:" in result.output
    assert "--- expected/auftraege_orders_de_1.csv" in result.output
    removed = [ln for ln in result.output.splitlines() if ln.strip().startswith("-123;VVA;123-456-789")]
    added = [ln for ln in result.output.splitlines() if ln.strip().startswith("+123;VVA;123-456-789")]
    assert removed and added and all(";PAYPAL;" in ln for ln in added)
    assert result.output.rstrip().endswith("3 passed, 1 failed")  # only sample has a PayPal order


def test_missing_and_unexpected_outputs_are_named(gw: Install) -> None:
    expected = gw.root / "examples" / "rakuten-orders" / "sample" / "expected"
    (expected / "auftraege_orders_de_1.csv").rename(expected / "other.csv")
    result = gw.cli("test")
    assert result.exit_code == 1
    assert "an output auftraege_orders_de_1.csv was produced that expected/ does not have" in result.output
    assert "the expected output other.csv was not produced" in result.output


def test_an_expected_error_that_does_not_happen_fails(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    _mapping(gw).write_text(text.replace("# no default: an order", "default: SONST\n    # an order"),
                            encoding="utf-8")
    result = gw.cli("test")
    assert result.exit_code == 1
    assert "FAIL  rakuten-orders/unknown-payment" in result.output
    assert "was expected to fail, but it converted" in result.output


def test_a_flow_without_examples_is_reported_not_failed(install: Install) -> None:
    result = install.cli("test")
    assert result.exit_code == 0
    assert "none  rakuten-orders: no examples in" in result.output


def test_line_end_differences_are_explained(gw: Install) -> None:
    expected = gw.root / "examples" / "rakuten-orders" / "sample" / "expected" / "auftraege_orders_de_1.csv"
    expected.write_bytes(expected.read_bytes().replace(b"\r\n", b"\n"))
    result = gw.cli("test")
    assert result.exit_code == 1
    assert "the text is the same but the bytes differ (line ends or encoding)" in result.output


def test_preview_save_writes_the_exact_bytes_a_golden_example_needs(gw: Install) -> None:
    case = gw.root / "examples" / "rakuten-orders" / "sample"
    shutil.rmtree(case / "expected")
    source = case / "input" / "orders_de.xml"
    result = gw.cli("preview", "rakuten-orders", str(source), "--save", str(case / "expected"))
    assert result.exit_code == 0, result.output
    assert (case / "expected" / "auftraege_orders_de_1.csv").read_bytes() == (
        REPO / "examples" / "rakuten-orders" / "sample" / "expected" / "auftraege_orders_de_1.csv"
    ).read_bytes()
    assert gw.cli("test").exit_code == 0


def test_check_warns_about_a_field_the_example_input_never_has(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    _mapping(gw).write_text(text.replace("order.client.city }}", "order.client.citty }}"), encoding="utf-8")
    result = gw.cli("check")
    assert result.exit_code == 0  # a warning: the field might just be absent from every example
    lines = [ln for ln in result.output.splitlines() if "warning" in ln]
    assert len(lines) == 1
    assert "rakuten-orders.yaml:" in lines[0]
    expected = "warning: the field 'citty' does not occur in the example sample/orders_de.xml (did you mean 'city'?)"
    assert expected in lines[0]


def test_check_is_silent_when_every_field_occurs_in_the_example(gw: Install) -> None:
    result = gw.cli("check")
    assert result.exit_code == 0 and "warning" not in result.output


def test_check_warns_about_a_field_of_the_second_loop_entry(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    row = "      - for_each: order.items.item   # one row per ordered article\n        as: item\n"
    assert row in text
    _mapping(gw).write_text(text.replace(row, row + "        and_for_each: \"[order.client]\"\n        and_as: kunde\n"
                                         "        when: kunde.citty or true\n"), encoding="utf-8")
    result = gw.cli("check")
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if "warning" in ln]
    assert len(lines) == 1 and "the field 'citty' does not occur" in lines[0], lines


# -- after an intended change -------------------------------------------------------------------------


def test_an_expected_output_not_produced_says_which_records_were_skipped_and_why(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    _mapping(gw).write_text(text.replace("  - when: order.status not in ('pending', 'editable')",
                                         "  - when: true\n    reason: \"every order is left out for this test\"\n"
                                         "  - when: order.status not in ('pending', 'editable')", 1),
                            encoding="utf-8")
    result = gw.cli("test", "rakuten-orders")
    assert result.exit_code == 1
    assert ("the expected output auftraege_orders_de_1.csv was not produced; 2 of 2 records were skipped"
            in result.output)
    assert "123-456-789: every order is left out for this test" in result.output


def test_refresh_shows_the_difference_and_writes_only_when_confirmed(gw: Install) -> None:
    text = _mapping(gw).read_text(encoding="utf-8")
    _mapping(gw).write_text(text.replace("PAL: PAL ", "PAL: PAYPAL "), encoding="utf-8")
    expected = gw.root / "examples" / "rakuten-orders" / "sample" / "expected" / "auftraege_orders_de_1.csv"
    before = expected.read_bytes()

    declined = gw.cli("test", "--refresh", "rakuten-orders", input="n\n")
    assert declined.exit_code == 1 and "nothing written" in declined.output
    assert "CHANGES  rakuten-orders/sample" in declined.output and "+123;VVA;123-456-789" in declined.output
    assert "same  rakuten-orders/variants" in declined.output
    assert "skip  rakuten-orders/unknown-payment: this example expects an error" in declined.output
    assert expected.read_bytes() == before

    accepted = gw.cli("test", "--refresh", "rakuten-orders", input="y\n")
    assert accepted.exit_code == 0 and "written  rakuten-orders/sample" in accepted.output
    assert b";PAYPAL;" in expected.read_bytes()
    assert gw.cli("test", "rakuten-orders").exit_code == 0
    assert "nothing to refresh" in gw.cli("test", "--refresh", "rakuten-orders").output


def test_refresh_removes_an_expected_file_that_is_no_longer_produced(gw: Install) -> None:
    expected = gw.root / "examples" / "rakuten-orders" / "sample" / "expected"
    (expected / "stale.csv").write_text("an output the mapping no longer writes")
    result = gw.cli("test", "--refresh", "--yes", "rakuten-orders")
    assert result.exit_code == 0
    assert "stale.csv is no longer produced and would be removed" in result.output
    assert not (expected / "stale.csv").exists()
