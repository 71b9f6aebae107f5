"""Two lists in one kind of row (``and_for_each``) and one output divided among files by a
value (``split_by``): variant × tier prices, and one text file per language."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_csv_rows
from test_mapping_features import journal, run

from gateway.errors import ConfigError
from gateway.mapping.compiler import load_mapping

# One record per article; each names its variants and its tier prices in two columns.
ARTIKEL = (
    "nr;varianten;staffeln\r\n"
    "A1;S,M;10=9.00,50=8.00\r\n"
    "A2;;5=4.00\r\n"
    "A3;XL;\r\n"
).encode("cp1252")

NESTED = """
input: { format: csv, as: a }
outputs:
  - name: staffeln
    file: "staffeln_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.nr }}-{{ v }}"
      ab: "{{ s.split('=') | first }}"
      preis: "{{ s.split('=') | last }}"
      zeile: "{{ row_number }}"
    rows:
      - for_each: a.varianten.split(',') if a.varianten else []
        as: v
        and_for_each: a.staffeln.split(',') if a.staffeln else []
        and_as: s
        when: s.split('=') | first != '50' or v == 'M'
"""


def test_and_for_each_repeats_a_row_for_each_pair_of_entries_in_order(tmp_path: Path) -> None:
    root = run(tmp_path, NESTED, "artikel.csv", ARTIKEL)
    (out,) = (root / "outbox").iterdir()
    rows = [(r["nr"], r["ab"], r["preis"], r["zeile"]) for r in read_csv_rows(out, "utf-8")]
    # S × (10, 50 left out by "when"), M × (10, 50); A2 has no variant, A3 no tier: no rows
    assert rows == [("A1-S", "10", "9.00", "1"), ("A1-M", "10", "9.00", "2"), ("A1-M", "50", "8.00", "3")]


def test_the_inner_list_sees_the_outer_entry(tmp_path: Path) -> None:
    mapping = NESTED.replace("and_for_each: a.staffeln.split(',') if a.staffeln else []",
                             "and_for_each: \"[v ~ '1', v ~ '2']\"")
    mapping = mapping.replace("when: s.split('=') | first != '50' or v == 'M'", "when: true")
    mapping = mapping.replace("""ab: "{{ s.split('=') | first }}\"""", 'ab: "{{ s }}"')
    root = run(tmp_path, mapping, "artikel.csv", ARTIKEL)
    (out,) = (root / "outbox").iterdir()
    assert [r["ab"] for r in read_csv_rows(out, "utf-8")] == ["S1", "S2", "M1", "M2", "XL1", "XL2"]


def test_an_error_in_the_inner_list_names_and_for_each_and_the_record(tmp_path: Path) -> None:
    mapping = NESTED.replace("and_for_each: a.staffeln.split(',') if a.staffeln else []",
                             "and_for_each: a.staffeln.split(',') | map('decimal', true) | list")
    root = run(tmp_path, mapping, "artikel.csv", ARTIKEL)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    error = str(entry["error"])
    assert "and_for_each" in error and "record no. 1" in error and "10=9.00" in error, error


def write_mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mappings" / "m.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check_problems(tmp_path: Path, text: str) -> list[str]:
    try:
        load_mapping(write_mapping(tmp_path, text), "mappings/m.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_check_knows_the_names_of_both_loops_and_refuses_unknown_ones(tmp_path: Path) -> None:
    assert check_problems(tmp_path, NESTED) == []
    problems = check_problems(tmp_path, NESTED.replace('preis: "{{ s.split', 'preis: "{{ t.split'))
    assert len(problems) == 1 and "unknown name 't'" in problems[0], problems
    assert problems[0].startswith("mappings/m.yaml:10:")  # the column "preis"


def test_and_for_each_without_for_each_is_refused_with_the_line(tmp_path: Path) -> None:
    text = NESTED.replace("      - for_each: a.varianten.split(',') if a.varianten else []\n        as: v\n"
                          "        and_for_each:", "      - and_for_each:")
    problems = check_problems(tmp_path, text)
    assert len(problems) == 1 and "give 'for_each' first" in problems[0], problems
    assert problems[0].startswith("mappings/m.yaml:13:"), problems  # the row


TEXTE = (
    "nr;sprache;name\r\n"
    "A1;en;Mug\r\n"
    "A1;fr;Tasse\r\n"
    "A2;EN;Pan\r\n"
    "A2;;ohne Sprache\r\n"
    "A3;it;Padella\r\n"
).encode("cp1252")

SPLIT = """
input: { format: csv, as: t }
outputs:
  - name: texte
    file: "texte_{{ split }}_{{ input.id }}.csv"
    split_by: "{{ t.sprache | lower }}"
    format: csv
    columns: { nr: "{{ t.nr }}", name: "{{ t.name }}" }
    rows:
      - when: t.sprache
"""


def test_split_by_writes_one_file_per_value_with_the_value_in_its_name(tmp_path: Path) -> None:
    root = run(tmp_path, SPLIT, "texte.csv", TEXTE)
    files = {p.name: [(r["nr"], r["name"]) for r in read_csv_rows(p, "utf-8")] for p in (root / "outbox").iterdir()}
    assert files == {
        "texte_en_1.csv": [("A1", "Mug"), ("A2", "Pan")],
        "texte_fr_1.csv": [("A1", "Tasse")],
        "texte_it_1.csv": [("A3", "Padella")],
    }
    (entry,) = journal(root)
    assert entry["state"] == "done" and len(entry["outputs"]) == 3  # type: ignore[arg-type]


def test_split_by_works_for_json_outputs_too(tmp_path: Path) -> None:
    mapping = SPLIT.replace("    format: csv", "    format: json").replace(".csv\"", ".json\"")
    root = run(tmp_path, mapping, "texte.csv", TEXTE)
    assert sorted(p.name for p in (root / "outbox").iterdir()) == ["texte_en_1.json", "texte_fr_1.json",
                                                                   "texte_it_1.json"]


def test_a_row_whose_split_value_is_empty_quarantines_the_input_and_says_what_to_do(tmp_path: Path) -> None:
    root = run(tmp_path, SPLIT.replace("      - when: t.sprache\n", "      - {}\n"), "texte.csv", TEXTE)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    error = str(entry["error"])
    assert "split_by" in error and "came out empty" in error and "record no. 4" in error, error
    assert not (root / "outbox").exists() or not list((root / "outbox").iterdir())


def test_a_split_value_that_is_no_file_name_is_refused(tmp_path: Path) -> None:
    data = "nr;sprache;name\r\nA1;../x;Mug\r\n".encode("cp1252")
    root = run(tmp_path, SPLIT, "texte.csv", data)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "plain name without folders" in str(entry["error"]), entry["error"]
    assert not (root / "outbox").exists() or not list((root / "outbox").iterdir())
    assert not (root / "x_1.csv").exists()


def test_more_files_than_allowed_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.writers.rows

    monkeypatch.setattr(gateway.writers.rows, "MAX_SPLIT_FILES", 2)
    root = run(tmp_path, SPLIT, "texte.csv", TEXTE)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "more than 2 files" in str(entry["error"]) and "it" in str(entry["error"]), entry["error"]


def test_split_by_needs_split_in_the_file_name(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, SPLIT.replace("texte_{{ split }}_", "texte_"))
    assert len(problems) == 1 and "must contain {{ split }}" in problems[0], problems
    assert problems[0].startswith("mappings/m.yaml:5:")


def test_split_by_does_not_go_with_per_record(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, SPLIT.replace("format: csv\n", "format: csv\n    per: record\n"))
    assert len(problems) == 1 and "does not go with 'per: record'" in problems[0], problems


def test_split_by_is_checked_for_unknown_names(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, SPLIT.replace("t.sprache | lower", "x.sprache"))
    assert len(problems) == 1 and "unknown name 'x'" in problems[0], problems


def test_split_by_may_only_use_names_every_kind_of_row_has(tmp_path: Path) -> None:
    second_kind = "      - for_each: '[1]'\n        as: x\n"
    text = SPLIT.replace("      - when: t.sprache\n", "      - when: t.sprache\n" + second_kind)
    text = text.replace("t.sprache | lower", "x")
    problems = check_problems(tmp_path, text)
    assert len(problems) == 1 and "unknown name 'x'" in problems[0] and ":6:" in problems[0], problems


def test_an_error_in_split_by_names_the_split_by_line(tmp_path: Path) -> None:
    root = run(tmp_path, SPLIT.replace("t.sprache | lower", "t.sprache | decimal"), "texte.csv", TEXTE)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "split_by" in str(entry["error"]) and "m.yaml:6" in str(entry["error"]).replace("f.yaml", "m.yaml"), (
        entry["error"])


@pytest.mark.parametrize("name", ["row_number", "a", "settings", "input", "v"])
def test_a_loop_name_that_would_hide_another_name_is_refused(tmp_path: Path, name: str) -> None:
    problems = check_problems(tmp_path, NESTED.replace("and_as: s", f"and_as: {name}"))
    assert any(f"'and_as: {name}' would hide the name '{name}'" in p for p in problems), problems
    assert any(p.startswith("mappings/m.yaml:17:") for p in problems), problems


def test_an_as_that_would_hide_the_record_is_refused(tmp_path: Path) -> None:
    problems = check_problems(tmp_path, NESTED.replace("as: v\n", "as: a\n"))
    assert any("'as: a' would hide the name 'a'" in p for p in problems), problems


def test_a_column_name_the_output_encoding_cannot_hold_is_a_check_problem(tmp_path: Path) -> None:
    text = SPLIT.replace("    format: csv\n", "    format: csv\n    encoding: ascii\n").replace(", name:", ", größe:")
    problems = check_problems(tmp_path, text)
    assert len(problems) == 1 and "'größe' cannot be written in ascii (the character 'ö')" in problems[0], problems


def test_split_values_that_differ_only_in_case_are_refused_as_one_file_name(tmp_path: Path) -> None:
    root = run(tmp_path, SPLIT.replace("t.sprache | lower", "t.sprache"), "texte.csv", TEXTE)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "texte_EN_1.csv" in str(entry["error"]) and "texte_en_1.csv" in str(entry["error"]), entry["error"]
    assert not (root / "outbox").exists() or not list((root / "outbox").iterdir())
    assert not [p for p in (root / "state").rglob("*") if p.is_file() and "texte" in p.name]  # nothing left staged
