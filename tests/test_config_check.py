"""`gateway check`: every configuration problem as FILE:LINE:COL: message in plain words, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GATEWAY_YAML, REPO, Install, order_xml, orders_file

from gateway.cli import cli
from gateway.config import GatewayFile, load_installation
from gateway.errors import ConfigError
from gateway.mapping.compiler import Mapping, load_mapping

MAPPING = "mappings/rakuten-orders.yaml"


@pytest.fixture
def gw(install: Install, monkeypatch: pytest.MonkeyPatch) -> Install:
    """The installation, with the working directory at its root so that files are shown relative to it."""
    monkeypatch.chdir(install.root)
    return install


def problems(install: Install) -> list[str]:
    """Run ``gateway check``; it must refuse (exit 2) and print the problems, then how many."""
    result = install.cli("check")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    count = len(lines) - 1
    assert lines[-1] == (f"{count} problem{'s' if count != 1 else ''}: correct "
                         f"{'them' if count != 1 else 'it'}, then run gateway check again.")
    return lines[:-1]



def _shipped() -> Mapping:
    """The shipped orders mapping, whose settings and tables messages list."""
    return load_mapping(REPO / "mappings" / "rakuten-orders.yaml", "rakuten-orders.yaml")

def at(text: str, needle: str, skip: int = 0) -> str:
    """``LINE:COL`` (1-based) of the one place where ``needle`` occurs in ``text``, ``skip`` characters into it."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    before = text[: text.index(needle) + skip]
    line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
    return f"{line}:{column}"


def write_gateway(install: Install, text: str) -> str:
    install.config.write_text(text, encoding="utf-8")
    return text


def edit_mapping(install: Install, old: str, new: str) -> str:
    """Replace ``old`` (which must occur once) in the installation's mapping; return the new text."""
    path = install.root / MAPPING
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the mapping"
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


FLOW_B = """\
  second:
    mapping: mappings/rakuten-orders.yaml
    source:
      folder: inbox/second
    outbox:
      folder: outbox/second
"""


# --- what passes ---------------------------------------------------------------------------------


def test_shipped_gateway_yaml_and_mappings_pass_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy(REPO / "gateway.yaml", root / "gateway.yaml")
    for folder in ("mappings", "templates", "schemas", "lookups", "examples"):
        shutil.copytree(REPO / folder, root / folder)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["--config", "gateway.yaml", "check"], catch_exceptions=False)
    names = list(load_installation(root / "gateway.yaml").flows)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"gateway.yaml: OK ({len(names)} flow(s): {', '.join(names)})\n", "")
    assert CliRunner().invoke(cli, ["--config", "gateway.yaml", "test"], catch_exceptions=False).exit_code == 0
    flow = load_installation(root / "gateway.yaml").flows["rakuten-orders"]
    assert flow.source_folder == root / "inbox" / "rakuten-orders"
    assert flow.outbox_folder == root / "outbox" / "rakuten-orders"
    assert (flow.settings["mandant"], flow.settings["belegart"], flow.settle_seconds) == ("123", "VVA", 2.0)


def test_test_installation_passes_check(gw: Install) -> None:
    result = gw.cli("check")
    assert (result.exit_code, result.stdout) == (0, "gateway.yaml: OK (1 flow(s): rakuten-orders)\n")


# --- gateway.yaml ----------------------------------------------------------------------------------


def test_typo_in_gateway_yaml_is_an_unknown_field_with_a_suggestion(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("    source:\n", "    sorce:\n"))
    found = problems(gw)
    assert f"gateway.yaml:{at(text, 'sorce:')}: unknown field 'sorce' (did you mean 'source'?)" in found
    # the consequence is named too, at the flow
    assert f"gateway.yaml:{at(text, 'rakuten-orders:')}: 'source' is required here (in 'rakuten-orders')" in found
    assert len(found) == 2


def test_unknown_field_without_a_close_match_lists_the_allowed_fields(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML + "colour: red\n")
    assert problems(gw) == [
        f"gateway.yaml:{at(text, 'colour')}: unknown field 'colour' "
        f"(allowed here: {', '.join(GatewayFile.model_fields)})"
    ]


def test_missing_required_key_in_gateway_yaml_is_reported_at_its_parent(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("    mapping: mappings/rakuten-orders.yaml\n", "")
                         .replace("      folder: outbox/rakuten-orders\n", "      marker: .done\n"))
    assert problems(gw) == [
        f"gateway.yaml:{at(text, 'rakuten-orders:')}: 'mapping' is required here (in 'rakuten-orders')",
        f"gateway.yaml:{at(text, 'outbox:')}: 'folder' is required here (in 'outbox')",
    ]


def test_duplicate_key_in_gateway_yaml_names_the_first_line(gw: Install) -> None:
    write_gateway(gw, GATEWAY_YAML + "settle_seconds: 5\n")
    first = GATEWAY_YAML.splitlines().index("settle_seconds: 0") + 1
    second = len(GATEWAY_YAML.splitlines()) + 1
    assert problems(gw) == [
        f"gateway.yaml:{second}:1: 'settle_seconds' is written twice (first on line {first}); keep one"
    ]


def test_yaml_syntax_error_in_gateway_yaml_names_its_line(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("      folder: outbox/rakuten-orders",
                                                  "      folder: outbox: rakuten-orders"))
    place = at(text, ": rakuten-orders")
    line = place.split(":")[0]
    assert problems(gw) == [f"gateway.yaml:{place}: line {line} has a second ': ' in it; a value that contains ': ' "
                            "must be written in quotes"]


def test_tab_indentation_is_a_yaml_syntax_error_at_its_line(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("  keep_days: 30", "\tkeep_days: 30"))
    tab = at(text, "\t")
    line = tab.split(":")[0]
    assert problems(gw) == [f"gateway.yaml:{tab}: line {line} is indented with a tab; YAML needs spaces: replace "
                            "the tab with spaces, as many as the lines around it use"]


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("settle_seconds: 0", "settle_seconds: two", "settle_seconds", "'settle_seconds' must be a number, not 'two'"),
        ("settle_seconds: 0", "settle_seconds: 1,5", "settle_seconds", "'settle_seconds' must be a number, not '1,5'"),
        ("settle_seconds: 0", "settle_seconds: -1", "settle_seconds",
         "'settle_seconds': input should be greater than or equal to 0"),
        ("      include:", "      settle_seconds: 2s\n      include:", "settle_seconds: 2s",
         "'settle_seconds' must be a number, not '2s'"),
        ("  keep_days: 30", "  keep_days: 1.5", "keep_days", "'keep_days' must be a whole number, not '1.5'"),
    ],
)
def test_bad_number_is_reported_at_its_key(gw: Install, old: str, new: str, needle: str, message: str) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace(old, new))
    assert problems(gw) == [f"gateway.yaml:{at(text, needle)}: {message}"]


def test_gateway_settings_stay_the_exact_text_written(gw: Install) -> None:
    write_gateway(gw, GATEWAY_YAML + "    settings:\n      mandant: 0123\n      belegart: NO\n")
    settings = load_installation(gw.config).flows["rakuten-orders"].settings
    assert (settings["mandant"], settings["belegart"]) == ("0123", "NO")


def test_setting_override_that_the_mapping_does_not_declare(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML + '    settings:\n      mandant: "7"\n      mandnat: "8"\n')
    assert problems(gw) == [
        f"gateway.yaml:{at(text, 'mandnat')}: the mapping mappings/rakuten-orders.yaml has no setting 'mandnat' "
        f"(settings: {', '.join(_shipped().settings)})"
    ]


def test_missing_mapping_file_is_reported(gw: Install) -> None:
    write_gateway(gw, GATEWAY_YAML.replace("mapping: mappings/rakuten-orders.yaml", "mapping: mappings/nope.yaml"))
    assert problems(gw) == ["gateway.yaml:9:5: the mapping file mappings/nope.yaml does not exist"]


def test_missing_mapping_file_is_reported_at_the_line_that_names_it(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("mapping: mappings/rakuten-orders.yaml",
                                                  "mapping: mappings/nope.yaml"))
    (line,) = problems(gw)
    assert line.startswith(f"gateway.yaml:{at(text, 'mapping: mappings/nope')}: ")
    assert "mappings/nope.yaml" in line


def test_two_flows_sharing_an_inbox_are_refused(gw: Install) -> None:
    # the same folder spelled differently is still the same folder
    text = write_gateway(gw, GATEWAY_YAML + FLOW_B.replace("folder: inbox/second", "folder: ./inbox/rakuten-orders/"))
    assert problems(gw) == [
        f"gateway.yaml:{at(text, 'folder: ./inbox')}: flow 'rakuten-orders' already reads from this folder; "
        "give each flow its own"
    ]


OUTBOX_IS_INBOX = "    outbox:\n      folder: inbox/rakuten-orders"


def test_outbox_that_is_another_flows_inbox_is_refused(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML + FLOW_B.replace("folder: outbox/second", "folder: inbox/rakuten-orders"))
    folder = at(text, OUTBOX_IS_INBOX, skip=len("    outbox:\n      "))
    assert problems(gw) == [
        f"gateway.yaml:{folder}: this outbox is the inbox of flow "
        "'rakuten-orders'; outputs would be read again"
    ]


def test_bad_flow_name_is_reported_at_the_flow(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("  rakuten-orders:", "  Rakuten Orders:"))
    assert problems(gw) == [
        f"gateway.yaml:{at(text, 'Rakuten Orders')}: flow name 'Rakuten Orders' must be lower-case letters, "
        "digits, '-' or '_'"
    ]


def billion_laughs(levels: int) -> str:
    """``levels`` lines, each an anchored list of nine aliases of the line before: 9 ** levels values."""
    lines = ["lol0: &lol0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [4, 9])
def test_aliases_beyond_the_budget_are_refused_at_the_alias(gw: Install, levels: int) -> None:
    # Nine such lines took `gateway check` to 5 GB and a MemoryError traceback.
    text = write_gateway(gw, GATEWAY_YAML + billion_laughs(levels))
    found = problems(gw)
    assert len(found) == 1
    place, message = found[0].rsplit(": ", 1)[0], found[0]
    line = int(place.split(":")[1])
    assert place.startswith("gateway.yaml:") and text.splitlines()[line - 1].startswith("lol")
    assert "aliases (*name) are used more than 100 times in this file" in message
    assert "write the values out instead" in message


def test_a_few_aliases_are_fine(gw: Install) -> None:
    write_gateway(gw, GATEWAY_YAML.replace("flows:", "x-common: &outbox { folder: outbox/rakuten-orders }\nflows:")
                  .replace("    outbox:\n      folder: outbox/rakuten-orders", "    outbox: *outbox"))
    (found,) = problems(gw)  # the alias stands for its value; only the unknown key is a problem
    assert "unknown field 'x-common'" in found


def test_an_alias_inside_the_value_it_names_is_refused_at_its_place(gw: Install) -> None:
    # `x: &a [1, *a]` was a RecursionError traceback.
    text = edit_mapping(gw, "\ninput:", "\nx: &a [1, *a]\ninput:")
    assert problems(gw) == [
        f"{MAPPING}:{at(text, '*a')}: the alias *a is used inside the value its anchor &a names, so that value "
        "would contain itself without end; write the value out instead"
    ]


def test_yaml_nested_too_deeply_is_a_problem_not_a_traceback(gw: Install) -> None:
    write_gateway(gw, GATEWAY_YAML + "deep: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems(gw) == ["gateway.yaml:1:1: the YAML is nested too deeply to be read (hundreds of levels of "
                            "lists or groups inside each other)"]


# --- mapping files -----------------------------------------------------------------------------------


def test_typo_in_a_mapping_is_an_unknown_field_with_a_suggestion(gw: Install) -> None:
    text = edit_mapping(gw, '    delimiter: ";"', '    delimter: ";"')
    assert problems(gw) == [f"{MAPPING}:{at(text, 'delimter')}: unknown field 'delimter' (did you mean 'delimiter'?)"]


def test_typo_in_a_row_of_a_mapping_is_an_unknown_field_with_a_suggestion(gw: Install) -> None:
    text = edit_mapping(gw, "- for_each: order.items.item", "- for_eachh: order.items.item")
    assert problems(gw) == [f"{MAPPING}:{at(text, 'for_eachh')}: unknown field 'for_eachh' (did you mean 'for_each'?)"]


def test_missing_required_key_in_a_mapping_is_reported_at_its_parent(gw: Install) -> None:
    text = edit_mapping(gw, "  records: /result/orders/order", "  # records: /result/orders/order")
    assert problems(gw) == [f"{MAPPING}:{at(text, 'input:')}: 'records' is required here (in 'input')"]


def test_duplicate_key_in_a_mapping_names_the_first_line(gw: Install) -> None:
    text = edit_mapping(gw, "      CC: KREDITKARTE\n", "      CC: KREDITKARTE\n      CC: CREDIT\n")
    assert problems(gw) == [
        f"{MAPPING}:{at(text, 'CC: CREDIT')}: 'CC' is written twice (first on line {at(text, 'CC: KREDIT')[:-2]}); "
        "keep one"
    ]


def test_yaml_syntax_error_in_a_mapping_names_its_line(gw: Install) -> None:
    text = edit_mapping(gw, "  label: order number", "  label: order: number")
    place = at(text, ": number")
    assert problems(gw) == [f"{MAPPING}:{place}: line {place.split(':')[0]} has a second ': ' in it; a value that "
                            "contains ': ' must be written in quotes"]


def test_yaml_11_traps_in_lookup_tables_stay_the_exact_text(gw: Install) -> None:
    edit_mapping(gw, "lookups:\n", (
        "lookups:\n"
        "  codes:\n"
        "    values:\n"
        "      NO: NO\n"
        "      0777: 0777\n"
        "      12:30: 12:30\n"
        "      2024-03-05: 2024-03-05\n"
        "      on: off\n"
        "      1.10: 1.10\n"
        "      0x1F: 0x1F\n"
        "      1e3: 1e3\n"
    ))
    verbatim = ["NO", "0777", "12:30", "2024-03-05", "on", "1.10", "0x1F", "1e3"]
    mapping = load_installation(gw.config).flows["rakuten-orders"].mapping
    assert dict(mapping.spec.lookups["codes"].values) == {v: ("off" if v == "on" else v) for v in verbatim}
    lookup = mapping.env.from_string("{{ code | lookup('codes') }}")
    assert [lookup.render(code=v) for v in verbatim] == ["NO", "0777", "12:30", "2024-03-05", "off", "1.10", "0x1F",
                                                         "1e3"]


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        # a column value (the admin's line of the value)
        ('Bezeichnung1: "{{ item.name }}"', 'Bezeichnung1: "{{ item.name }"', 'Bezeichnung1: "{{ item.name }"',
         "template syntax: unexpected '}'"),
        ('Bezeichnung1: "{{ item.name }}"', 'Bezeichnung1: "{% if item.name %}x"', "Bezeichnung1: \"{% if",
         "template syntax: Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' "
         "or 'endif'. The innermost block that needs to be closed is 'if'."),
        # the same inside { value: … }: the place of 'value'
        ("{ value: \"{{ item.qty | number(0) }}\"", "{ value: \"{{ item.qty | number(0 }}\"",
         'value: "{{ item.qty | number(0 }}', "template syntax: unexpected '}', expected ')'"),
        # an expression
        ("- when: order.coupon ", "- when: order.coupon and ", "when: order.coupon and",
         "template syntax: unexpected 'end of print statement'"),
    ],
)
def test_template_syntax_error_is_reported_at_the_line_of_the_value(
    gw: Install, old: str, new: str, needle: str, message: str
) -> None:
    text = edit_mapping(gw, old, new)
    assert problems(gw) == [f"{MAPPING}:{at(text, needle)}: {message}"]


def test_template_syntax_error_in_a_block_value_is_reported_at_its_line(gw: Install) -> None:
    text = edit_mapping(gw, '          Bezeichnung1: "{{ item.name }}"\n',
                        "          Bezeichnung1: |-\n"
                        "            {{ item.name\n"
                        "               ) | upper }}\n")
    (line,) = problems(gw)
    # the line of the mistake inside the block; the column where the block's text starts
    assert line == f"{MAPPING}:{at(text, ') | upper')[:-3]}:13: template syntax: unexpected ')'"


def test_unknown_name_in_a_template_lists_the_known_names(gw: Install) -> None:
    text = edit_mapping(gw, 'Bezeichnung2: "{{ order.coupon.comment }}"', 'Bezeichnung2: "{{ ordr.order_no }}"')
    place = at(text, 'Bezeichnung2: "{{ ordr')
    assert problems(gw) == [
        f"{MAPPING}:{place}: unknown name 'ordr' "
        "(known here: input, order, record, row_number, settings)"
    ]


def test_unknown_name_in_a_for_each_row_knows_the_item(gw: Install) -> None:
    text = edit_mapping(gw, 'Bezeichnung1: "{{ item.name }}"', 'Bezeichnung1: "{{ itme.name }}"')
    place = at(text, 'Bezeichnung1: "{{ itme')
    assert problems(gw) == [
        f"{MAPPING}:{place}: unknown name 'itme' "
        "(known here: input, item, order, record, row_number, settings)"
    ]


def test_unknown_name_in_the_file_name(gw: Install) -> None:
    text = edit_mapping(gw, '"auftraege_{{ input.stem }}_', '"auftraege_{{ order.order_no }}_')
    place = at(text, 'file: "auftraege')
    assert problems(gw) == [f"{MAPPING}:{place}: unknown name 'order' (known here: input, settings)"]


def test_unknown_setting_lists_the_settings(gw: Install) -> None:
    text = edit_mapping(gw, "{{ settings.versand_artikel }}", "{{ settings.mandnat }}")
    place = at(text, 'Artikelnummer: "{{ settings.mandnat')
    assert problems(gw) == [
        f"{MAPPING}:{place}: unknown setting 'mandnat' "
        f"(settings: {', '.join(_shipped().settings)})"
    ]


def test_unknown_lookup_table_lists_the_tables(gw: Install) -> None:
    text = edit_mapping(gw, "item.tax | lookup('steuersatz')", "item.tax | lookup('steuersaetze')")
    place = at(text, 'Steuersatz: "{{ item.tax')
    assert problems(gw) == [
        f"{MAPPING}:{place}: unknown lookup table 'steuersaetze' "
        f"(tables: {', '.join(_shipped().spec.lookups)})"
    ]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("{{ item.name }}", "{{ item.name | nummer }}", 'Bezeichnung1: "{{ item.name |'),
        ("- when: order.coupon ", "- when: order.coupon | nummer ", "when: order.coupon |"),
    ],
    ids=["column", "when"],
)
def test_unknown_filter_lists_the_filters(gw: Install, old: str, new: str, needle: str) -> None:
    text = edit_mapping(gw, old, new)
    (line,) = problems(gw)
    assert line.startswith(f"{MAPPING}:{at(text, needle)}: unknown filter 'nummer' (filters: ")
    assert "number" in line and "lookup" in line


def test_row_override_of_a_column_the_output_does_not_have(gw: Install) -> None:
    text = edit_mapping(gw, "          Bezeichnung1: Versandkosten", "          Bezeichnung: Versandkosten")
    assert problems(gw) == [
        f"{MAPPING}:{at(text, 'Bezeichnung: Versandkosten')}: 'Bezeichnung' is not one of this output's columns "
        "(add it to 'columns' first)"
    ]


# --- all problems at once ------------------------------------------------------------------------------


def test_several_template_problems_in_a_mapping_are_all_reported(gw: Install) -> None:
    edit_mapping(gw, 'Bezeichnung2: "{{ order.coupon.comment }}"', 'Bezeichnung2: "{{ ordr.order_no }}"')
    edit_mapping(gw, "{{ settings.versand_artikel }}", "{{ settings.mandnat }}")
    edit_mapping(gw, 'Bezeichnung1: "{{ item.name }}"', 'Bezeichnung1: "{{ item.name }"')
    text = edit_mapping(gw, "item.tax | lookup('steuersatz')", "item.tax | lookup('steuersaetze')")
    found = problems(gw)
    places = [at(text, needle) for needle in ('Bezeichnung1: "{{ item.name }"', 'Steuersatz: "{{ item.tax',
                                              'Artikelnummer: "{{ settings.mandnat', 'Bezeichnung2: "{{ ordr')]
    assert [p.split(": ", 1)[0] for p in found] == [f"{MAPPING}:{place}" for place in places]
    assert [p.split(": ", 1)[1].split(" (")[0] for p in found] == [
        "template syntax: unexpected '}'",
        "unknown lookup table 'steuersaetze'",
        "unknown setting 'mandnat'",
        "unknown name 'ordr'",
    ]


def test_several_problems_in_gateway_yaml_are_all_reported(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("settle_seconds: 0", "settle_seconds: soon")
                         .replace("  keep_days: 30", "  keep_days: -1")
                         .replace("    outbox:", "    outbx:"))
    found = problems(gw)
    assert f"gateway.yaml:{at(text, 'settle_seconds')}: 'settle_seconds' must be a number, not 'soon'" in found
    assert f"gateway.yaml:{at(text, 'keep_days')}: 'keep_days': input should be greater than or equal to 0" in found
    assert f"gateway.yaml:{at(text, 'outbx')}: unknown field 'outbx' (did you mean 'outbox'?)" in found


def test_problems_of_several_flows_and_their_mappings_are_all_reported(gw: Install) -> None:
    shutil.copy(gw.root / MAPPING, gw.root / "mappings" / "second.yaml")
    mapping = edit_mapping(gw, '    delimiter: ";"', '    delimter: ";"')
    text = write_gateway(gw, GATEWAY_YAML + FLOW_B.replace("rakuten-orders.yaml", "second.yaml")
                         + '    settings:\n      mandnat: "8"\n')
    found = problems(gw)
    assert [p.split(": ", 1)[0] for p in found] == [
        f"{MAPPING}:{at(mapping, 'delimter')}",
        f"gateway.yaml:{at(text, 'mandnat')}",
    ]


SHARED_SECOND_INBOX = "folder: inbox/rakuten-orders\n    outbox:\n      folder: outbox/second"


def test_folder_problems_are_reported_together_with_other_problems(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML + '    settings:\n      mandnat: "8"\n'
                         + FLOW_B.replace("folder: inbox/second", "folder: inbox/rakuten-orders"))
    assert [p.split(": ", 1)[0] for p in problems(gw)] == [
        f"gateway.yaml:{at(text, 'mandnat')}",
        f"gateway.yaml:{at(text, SHARED_SECOND_INBOX)}",
    ]


def test_mapping_problems_are_reported_together_with_gateway_yaml_problems(gw: Install) -> None:
    mapping = edit_mapping(gw, '    delimiter: ";"', '    delimter: ";"')
    text = write_gateway(gw, GATEWAY_YAML.replace("settle_seconds: 0", "settle_seconds: soon"))
    assert [p.split(": ", 1)[0] for p in problems(gw)] == [
        f"gateway.yaml:{at(text, 'settle_seconds')}",
        f"{MAPPING}:{at(mapping, 'delimter')}",
    ]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('Position: "{{ row_number }}"', 'Position: "{{ row_number + ordr.x }}"', "Position:"),
        ('Referenznummer: { value: "{{ order.order_no }}"', 'Referenznummer: { value: "{{ order.order_no }"',
         'value: "{{ order.order_no }"'),
    ],
    ids=["unknown-name", "syntax"],
)
def test_a_mistake_in_a_shared_column_is_reported_once(gw: Install, old: str, new: str, needle: str) -> None:
    text = edit_mapping(gw, old, new)
    found = problems(gw)
    assert len(found) == 1, found
    assert found[0].startswith(f"{MAPPING}:{at(text, needle)}: ")


def test_misspelt_row_number_is_told_that_row_number_exists(gw: Install) -> None:
    edit_mapping(gw, 'Position: "{{ row_number }}"', 'Position: "{{ row_nuber }}"')
    (line,) = problems(gw)
    assert "unknown name 'row_nuber'" in line
    assert "row_number" in line.split("row_nuber", 1)[1]


# --- messages that use the program's words instead of the admin's ----------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("required: true }", "requird: true }", "unknown field 'requird' (did you mean 'required'?)"),
        ("required: true }", "too_long: cutt }", "'too_long' must be one of 'cut' or 'error', not 'cutt'"),
        ('      Rabattbetrag: ""', "      Rabattbetrag:", "'Rabattbetrag'"),
    ],
    ids=["option-typo", "bad-option", "empty-column"],
)
def test_a_bad_column_is_explained_without_internal_type_names(gw: Install, old: str, new: str, expected: str) -> None:
    path = gw.root / MAPPING
    text = path.read_text(encoding="utf-8")
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    found = problems(gw)
    assert [line for line in found if "'str'" in line or "'Column'" in line] == []
    assert len(found) == 1 and expected in found[0]


def test_missing_key_in_a_list_entry_does_not_name_it_by_index(gw: Install) -> None:
    text = edit_mapping(gw, "    format: csv\n", "")
    (line,) = problems(gw)
    assert line.startswith(f"{MAPPING}:{at(text, 'name: auftrag')}: 'format' is required here")
    assert "'0'" not in line


def test_empty_outputs_is_explained_in_plain_words(gw: Install) -> None:
    path = gw.root / MAPPING
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("outputs:")] + "outputs: []\n", encoding="utf-8")
    (line,) = problems(gw)
    assert "after validation" not in line and "List should" not in line


# --- refusing means nothing moves ----------------------------------------------------------------------


def test_config_error_means_nothing_is_processed(gw: Install) -> None:
    edit_mapping(gw, 'Bezeichnung1: "{{ item.name }}"', 'Bezeichnung1: "{{ itme.name }}"')
    dropped = gw.drop("a.xml", orders_file(order_xml("1-2-3")))
    result = gw.cli("run", "--once")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "1 problem(s); nothing was processed."
    assert dropped.exists()
    assert gw.outputs() == []
    assert not gw.quarantine.exists()
    assert not (gw.root / "state").exists()


def test_unknown_flow_for_run_once_exits_2_and_processes_nothing(gw: Install) -> None:
    dropped = gw.drop("a.xml", orders_file(order_xml("1-2-3")))
    result = gw.cli("run", "--once", "rakuten-order")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["gateway.yaml:1:1: no flow named 'rakuten-order' (flows: rakuten-orders)"]
    assert dropped.exists()
    assert gw.outputs() == []
    assert not (gw.root / "state").exists()


def test_load_installation_raises_config_error_with_every_problem(gw: Install) -> None:
    text = write_gateway(gw, GATEWAY_YAML.replace("settle_seconds: 0", "settle_seconds: x")
                         .replace("  keep_days: 30", "  keep_days: y"))
    with pytest.raises(ConfigError) as err:
        load_installation(gw.config)
    assert [str(p) for p in err.value.problems] == [
        f"gateway.yaml:{at(text, 'keep_days')}: 'keep_days' must be a whole number, not 'y'",
        f"gateway.yaml:{at(text, 'settle_seconds')}: 'settle_seconds' must be a number, not 'x'",
    ]
    assert (err.value.problems[0].file, err.value.problems[0].line) == ("gateway.yaml", 5)
