"""YAML mistakes in plain words, at the right line, in English and in German."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

from gateway import i18n
from gateway.errors import ConfigError
from gateway.mapping.compiler import load_mapping
from gateway.yamlload import parse_yaml


@pytest.fixture(params=["en", "de"])
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    i18n.set_language(request.param)
    try:
        yield str(request.param)
    finally:
        i18n.set_language("en")


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "m.yaml")
    (found,) = info.value.problems
    return str(found)


CASES = [
    # (what the admin did, the YAML, where the message points, the words in English, in German)
    ("a line indented further than its neighbour",
     "columns:\n  Zahlungskond: x\n    Menge: y\n", "m.yaml:3:5:",
     "line 3 is indented further than line 2 above ('Zahlungskond:'); line the two up",
     "Zeile 3 ist weiter eingerückt als Zeile 2 darüber ('Zahlungskond:'); richten Sie beide gleich aus"),
    ("a line indented to no level above",
     "outputs:\n  - name: a\n    columns:\n      A: x\n     B: y\n", "m.yaml:5:6:",
     "line 5 is indented by 5 spaces, which matches no line above: line it up with 'A:' (line 4)",
     "Zeile 5 ist um 5 Leerzeichen eingerückt, was zu keiner Zeile darüber passt: richten Sie sie an 'A:' (Zeile 4)"),
    ("a tab",
     "a:\n  b: 1\n\tc: 2\n", "m.yaml:3:1:",
     "line 3 is indented with a tab; YAML needs spaces", "Zeile 3 ist mit einem Tabulator eingerückt"),
    ("a quote never closed",
     "a: 1\nb: \"open\nc: d\n", "m.yaml:2:4:",
     'the quote " opened on line 2 is never closed', 'das Anführungszeichen " in Zeile 2 wird nie geschlossen'),
    ("a line without its colon",
     "a:\n  b: 1\n  c\n  d: 2\n", "m.yaml:3:3:",
     "line 3 has no ':'", "Zeile 3 hat keinen ':'"),
    ("a list entry among names",
     "a:\n  b: 1\n- c\n", "m.yaml:3:1:",
     "line 3 is a list entry ('- ') where the lines above are 'name: value' entries",
     "Zeile 3 ist ein Listeneintrag ('- ')"),
    ("a name among list entries",
     "a:\n  - x\n  b: 1\n", "m.yaml:3:3:",
     "line 3 is a 'name: value' entry among list entries", "Zeile 3 ist ein Eintrag 'Name: Wert' zwischen"),
    ("a second colon in a value",
     "label: order: number\n", "m.yaml:1:13:",
     "line 1 has a second ': ' in it; a value that contains ': ' must be written in quotes",
     "Zeile 1 enthält ein zweites ': '"),
    ("more text after a value that ends early",
     "a: {{ x }} b\n", "m.yaml:1:12:",
     "more text follows a value that ends early", "folgt weiterer Text"),
]


@pytest.mark.parametrize(("what", "text", "where", "english", "german"), CASES, ids=[c[0] for c in CASES])
def test_a_yaml_mistake_is_named_at_its_line_in_words_that_say_what_to_do(
    language: str, what: str, text: str, where: str, english: str, german: str
) -> None:
    found = problem(text)
    assert found.startswith(where), found
    assert (english if language == "en" else german) in found, found
    assert "expected <block end>" not in found and "YAML syntax" not in found


def test_a_template_without_quotes_is_named(language: str) -> None:
    found = problem("columns:\n  Preis: {{ item.price }}\n")
    assert found.startswith("m.yaml:2:")
    assert "{{" in found and ("quotes" in found if language == "en" else "Anführungszeichen" in found or
                              "quotes" in found)


def test_an_entry_moved_out_of_its_block_is_recognised_as_such(tmp_path: Path) -> None:
    lines = (REPO / "mappings" / "sol-stock.yaml").read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == "columns:")
    last = start + 1
    while lines[last + 1].startswith(" " * (len(lines[start + 1]) - len(lines[start + 1].lstrip()))):
        last += 1
    lines[last] = lines[last][2:]  # the block's last entry, two spaces too far left
    (tmp_path / "m.yaml").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_mapping(tmp_path / "m.yaml", "m.yaml", REPO)
    (found,) = info.value.problems
    assert found.line == last + 1
    assert f"it looks like an entry of 'columns' (line {start + 1}) that is indented too little" in found.message


def test_check_ends_with_what_to_do_and_a_run_says_nothing_was_processed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import cli

    (tmp_path / "gateway.yaml").write_text("state: state\nflows:\n  x: y: z\n", encoding="utf-8")
    runner = CliRunner()
    check = runner.invoke(cli, ["--config", str(tmp_path / "gateway.yaml"), "check"])
    assert check.exit_code == 2 and check.output.splitlines()[-1] == (
        "1 problem: correct it, then run gateway check again.")
    run = runner.invoke(cli, ["--config", str(tmp_path / "gateway.yaml"), "run", "--once"])
    assert run.exit_code == 2 and run.output.splitlines()[-1] == "1 problem(s); nothing was processed."


def test_the_problems_of_a_german_installation_are_in_german(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import cli

    (tmp_path / "gateway.yaml").write_text("language: de\nstate: state\nflows:\n  x:\n\tmapping: m.yaml\n",
                                           encoding="utf-8")
    try:
        check = CliRunner().invoke(cli, ["--config", str(tmp_path / "gateway.yaml"), "check"])
    finally:
        i18n.set_language("en")
    assert check.exit_code == 2
    assert "Zeile 5 ist mit einem Tabulator eingerückt" in check.output
    assert "1 Problem: beheben Sie es und rufen Sie dann gateway check erneut auf." in check.output


def test_a_mistake_in_a_mapping_two_flows_use_is_reported_once(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import cli

    (tmp_path / "m.yaml").write_text("input: { format: csv }\noutputs:\n  - name: x\n\tfile: y\n", encoding="utf-8")
    flow = "    mapping: m.yaml\n    source: {{ folder: inbox/{name} }}\n    outbox: {{ folder: outbox/{name} }}\n"
    (tmp_path / "gateway.yaml").write_text(
        "state: state\nflows:\n  a:\n" + flow.format(name="a") + "  b:\n" + flow.format(name="b"), encoding="utf-8")
    check = CliRunner().invoke(cli, ["--config", str(tmp_path / "gateway.yaml"), "check"])
    assert check.exit_code == 2
    assert check.output.count("line 4 is indented with a tab") == 1, check.output
    assert check.output.splitlines()[-1] == "1 problem: correct it, then run gateway check again."
