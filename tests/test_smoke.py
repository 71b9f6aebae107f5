from __future__ import annotations

from conftest import SAMPLE_ORDERS, Install, order_xml, orders_file, read_csv_rows


def test_sample_orders_become_one_sol_import_file(install: Install) -> None:
    install.drop("orders_de.xml", SAMPLE_ORDERS.read_bytes())
    result = install.cli("run", "--once")
    assert result.exit_code == 0, result.output
    (out,) = install.outputs()
    rows = read_csv_rows(out)
    assert [r["Referenznummer"] for r in rows] == ["123-456-789"] * 5 + ["987-654-321"] * 2
    assert rows[4]["Artikelnummer"] == "GUTSCHEIN" and rows[4]["Einzelpreis"] == "-11,40"


def test_built_orders_fixture_is_readable(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("1-2-3")))
    assert install.cli("run", "--once").exit_code == 0
    (out,) = install.outputs()
    assert read_csv_rows(out)[0]["Referenznummer"] == "1-2-3"
