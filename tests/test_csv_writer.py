"""The CSV writer: exact quoting, and spreadsheet formulas written so that nobody's spreadsheet runs them."""

from __future__ import annotations

import io

import pytest

from gateway.writers.csv import CsvWriter


def written(values: list[str], **options: bool) -> str:
    out = io.BytesIO()
    writer = CsvWriter(out, [f"c{i}" for i in range(len(values))], header=False, line_end="\n", **options)
    writer.write(values, "order 1")
    return out.getvalue().decode("utf-8")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://example.org/x","Rechnung")', '"\'=HYPERLINK(""http://example.org/x"",""Rechnung"")"'),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("=1+1", "'=1+1"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-", "'-"),
    ],
)
def test_cells_that_start_like_a_formula_are_written_with_a_quote_in_front(value: str, cell: str) -> None:
    assert written([value]) == cell + "\n"


@pytest.mark.parametrize("value", ["-12,90", "-1.234,50", "-12.90", "+5", "-1,234.50", "-1.5e3", "+49 30 123456",
                                   "+43 (0)1 234567", "12", "Tor 2; bitte klingeln", "a=b", "", "Müller"])
def test_numbers_phone_numbers_and_plain_text_are_left_alone(value: str) -> None:
    assert written([value, "x"]) == written([value, "x"], neutralise_formulas=False)


def test_formulas_keep_writes_values_as_they_are() -> None:
    assert written(["=1+1", "@x"], neutralise_formulas=False) == "=1+1;@x\n"


def test_the_header_is_written_as_the_mapping_names_it() -> None:
    out = io.BytesIO()
    CsvWriter(out, ["-Rabatt", "=Summe"], line_end="\n")
    assert out.getvalue() == b"-Rabatt;=Summe\n"
