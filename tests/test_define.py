"""Named values computed once per record (``define``): usable in skip rules, columns, rows and
per-record file names; checked by ``gateway check``; an error only where a value is used."""

from __future__ import annotations

from pathlib import Path

from conftest import read_csv_rows
from test_mapping_features import journal, run
from test_nested_rows_and_split_files import check_problems

ARTIKEL = (
    "nr;preise;lager\r\n"
    "A1;12,90|11,50;HL=3|AL=4\r\n"
    "A2;;HL=1\r\n"
    "A3;5,00;\r\n"
).encode("cp1252")

MAPPING = """
input: { format: csv, as: a }
define:
  preise: a.preise.split('|') if a.preise else []
  grundpreis: preise[0] | decimal(true)
  bestand: >-
    a.lager.split('|') | map('trim') | select | map('replace', 'HL=', '') | map('replace', 'AL=', '')
    | map('int') | sum
skip:
  - when: not preise
    reason: "article {{ a.nr }} has no price"
outputs:
  - name: x
    file: "x_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.nr }}"
      preis: "{{ grundpreis | number(2, '.') }}"
      bestand: "{{ bestand }}"
      staffel: ""
    rows:
      - {}
      - for_each: preise[1:]
        as: p
        when: p | decimal(true) < grundpreis
        columns: { staffel: "{{ p }}" }
"""


def test_defined_values_are_used_in_skip_rules_columns_and_rows(tmp_path: Path) -> None:
    root = run(tmp_path, MAPPING, "artikel.csv", ARTIKEL)
    (out,) = (root / "outbox").iterdir()
    rows = [(r["nr"], r["preis"], r["bestand"], r["staffel"]) for r in read_csv_rows(out, "utf-8")]
    assert rows == [("A1", "12.90", "7", ""), ("A1", "12.90", "7", "11,50"), ("A3", "5.00", "0", "")]
    (entry,) = journal(root)
    assert entry["skipped"] == [{"key": "record no. 2", "reason": "article A2 has no price"}]


def test_a_value_that_cannot_be_computed_is_no_error_for_a_skipped_record(tmp_path: Path) -> None:
    # A2 has no price: "grundpreis" fails for it (preise[0] of an empty list), but A2 is skipped.
    root = run(tmp_path, MAPPING, "artikel.csv", ARTIKEL)
    (entry,) = journal(root)
    assert entry["state"] == "done"


def test_a_value_that_cannot_be_computed_stops_the_input_where_it_is_used(tmp_path: Path) -> None:
    data = "nr;preise;lager\r\nA1;zwölf;HL=1\r\n".encode("cp1252")
    root = run(tmp_path, MAPPING, "artikel.csv", data)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    error = str(entry["error"])
    assert "f.yaml:5) could not be computed for this record" in error, error
    assert "zwölf" in error and "record no. 1" in error and "field 'preis'" in error, error


def test_a_defined_value_may_use_the_ones_before_it_but_not_after(tmp_path: Path) -> None:
    preise = "  preise: a.preise.split('|') if a.preise else []\n"
    grundpreis = "  grundpreis: preise[0] | decimal(true)\n"
    text = MAPPING.replace(preise + grundpreis, grundpreis + preise)
    problems = check_problems(tmp_path, text)
    assert len(problems) == 1 and "mappings/m.yaml:4:" in problems[0] and "unknown name 'preise'" in problems[0]


def test_the_key_cannot_use_a_defined_value(tmp_path: Path) -> None:
    text = MAPPING.replace("define:", 'key: { value: "{{ grundpreis }}" }\ndefine:')
    problems = check_problems(tmp_path, text)
    assert len(problems) == 1 and "unknown name 'grundpreis'" in problems[0], problems


def test_a_defined_name_must_not_hide_another_name(tmp_path: Path) -> None:
    for name in ("a", "settings", "input", "record", "row_number"):
        problems = check_problems(tmp_path, MAPPING.replace("  bestand: >-", f"  {name}: >-"))
        assert any(f"'{name}' is already a name here" in p for p in problems), (name, problems)
    problems = check_problems(tmp_path, MAPPING.replace("as: p\n", "as: preise\n"))
    assert any("'as: preise' would hide the name 'preise'" in p for p in problems), problems


def test_a_defined_name_must_be_a_plain_name(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, MAPPING.replace("  bestand: >-", "  2bestand: >-"))
    assert len(problems) == 1 and "'2bestand' cannot be a name" in problems[0], problems


def test_unknown_names_in_a_definition_are_found_by_check(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, MAPPING.replace("grundpreis: preise[0]", "grundpreis: priese[0]"))
    assert len(problems) == 1 and "mappings/m.yaml:5:" in problems[0] and "unknown name 'priese'" in problems[0]


def test_a_defined_filter_result_can_be_used_twice_and_is_false_when_empty(tmp_path: Path) -> None:
    mapping = MAPPING.replace("  preise: a.preise.split('|') if a.preise else []",
                              "  preise: a.preise.split('|') | select")  # no "| list": a one-time sequence
    mapping = mapping.replace('staffel: ""', 'staffel: "{{ preise | length }}/{{ preise | length }}"')
    root = run(tmp_path, mapping, "artikel.csv", ARTIKEL)
    (entry,) = journal(root)
    assert entry["skipped"] == [{"key": "record no. 2", "reason": "article A2 has no price"}]
    (out,) = (root / "outbox").iterdir()
    first, *_ = read_csv_rows(out, "utf-8")
    assert first["staffel"] == "2/2"


def test_a_defined_name_must_not_be_a_word_templates_already_use(tmp_path: Path) -> None:
    for name in ("range", "namespace", "none", "true", "loop"):
        problems = check_problems(tmp_path, MAPPING.replace("  bestand: >-", f"  {name}: >-"))
        assert any(f"'{name}' is already a name here" in p for p in problems), (name, problems)


def test_a_file_outputs_as_must_not_hide_a_defined_name(tmp_path: Path) -> None:
    text = MAPPING.replace("input: { format: csv, as: a }", "input: { format: batch, records: t, as: a, tables: "
                           "{ t: { file: t.csv } } }")
    text += ("  - { name: pdf, format: file, folder: /, for_each: preise, as: preise, source: '{{ preise }}', "
             "file: '{{ preise }}_{{ input.id }}.pdf' }\n")
    problems = check_problems(tmp_path, text)
    assert any("'as: preise' would hide the name 'preise'" in p for p in problems), problems


def test_valid_on_refuses_a_column_the_rows_do_not_have(tmp_path: Path) -> None:
    data = "nr;von;bis\r\nA1;01.01.2020;31.12.2020\r\n".encode("cp1252")
    mapping = """
input: { format: csv, as: a }
define:
  gueltig: "[a] | valid_on('2026-11-27', 'von', 'bsi')"
outputs:
  - { name: x, file: "x_{{ input.id }}.csv", format: csv, columns: { n: "{{ gueltig | length }}" } }
"""
    root = run(tmp_path, mapping, "a.csv", data)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "valid_on: the rows have no column 'bsi' (they have: nr, von, bis)" in str(entry["error"]), entry["error"]
