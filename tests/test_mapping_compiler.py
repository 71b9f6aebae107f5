"""Small mappings compiled from YAML text and run over small XML files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.errors import ConfigError, MappingError
from gateway.mapping.compiler import Mapping, load_mapping
from gateway.mapping.values import Record

HEAD = """\
input:
  format: xml
  records: /orders/order
  as: order
  label: order
key:
  value: "{{ order.no }}"
  label: order number
settings:
  mandant: "123"
  text: plain
"""


def compile_text(tmp_path: Path, body: str) -> tuple[Mapping, str]:
    """The mapping HEAD + ``body`` as file m.yaml, loaded; and its text, to find line numbers in."""
    text = HEAD + textwrap.dedent(body)
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, "m.yaml"), text


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which ``needle`` occurs (it must occur on exactly one line)."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def orders(*bodies: str) -> str:
    return "<?xml version='1.0' encoding='utf-8'?>\n<orders>" + "".join(
        f"\n<order>{b}</order>" for b in bodies) + "\n</orders>\n"


def convert(mapping: Mapping, tmp_path: Path, xml: str, settings: dict[str, str] | None = None,
            output: int = 0) -> list[list[list[str]]]:
    """The rows of one output, per record."""
    path = tmp_path / "in.xml"
    path.write_text(xml, encoding="utf-8")
    result = []
    for record in mapping.records(path, "in.xml"):
        context = mapping.context(record, {"stem": "in", "id": 1}, {**mapping.settings, **(settings or {})})
        result.append(list(mapping.outputs[output].rows_for(context)))
    return result


def convert_error(mapping: Mapping, tmp_path: Path, xml: str, settings: dict[str, str] | None = None) -> MappingError:
    with pytest.raises(MappingError) as err:
        convert(mapping, tmp_path, xml, settings)
    return err.value


# --- required, max_length ------------------------------------------------------------------------

REQUIRED = """\
outputs:
  - name: out
    file: out.csv
    format: csv
    columns:
      Name: "{{ order.name }}"
      Ref: { value: "{{ order.no }}", required: true }
"""


@pytest.mark.parametrize("no_element", ["", "<no></no>", "<no>   </no>"], ids=["absent", "empty", "blank"])
def test_required_column_that_comes_out_empty_names_the_column_and_mapping_line(
    tmp_path: Path, no_element: str
) -> None:
    mapping, text = compile_text(tmp_path, REQUIRED)
    err = convert_error(mapping, tmp_path, orders(f"<name>Max</name>{no_element}"))
    line = line_of(text, "Ref:")
    assert err.field == "Ref"
    assert err.mapping == f"m.yaml:{line}"
    assert err.message == "a value is required here, but it came out empty"
    assert str(err) == f"field 'Ref': a value is required here, but it came out empty [mapping m.yaml:{line}]"


def test_required_column_with_a_value_passes(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, REQUIRED)
    assert convert(mapping, tmp_path, orders("<no>1-2-3</no>")) == [[["", "1-2-3"]]]


def test_required_column_overridden_in_a_row_is_reported_at_the_override(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              Sku: "-"
            rows:
              - for_each: order.items.item
                columns:
                  Sku: { value: "{{ item.sku }}", required: true }
        """)
    err = convert_error(mapping, tmp_path, orders("<items><item><sku>A</sku></item><item><qty>1</qty></item></items>"))
    assert (err.field, err.mapping) == ("Sku", f"m.yaml:{line_of(text, 'item.sku')}")


MAX_LENGTH = """\
outputs:
  - name: out
    file: out.csv
    format: csv
    columns:
      Cut: { value: "{{ order.name }}", max_length: 5, too_long: cut }
      Strict: { value: "{{ order.city }}", max_length: 5 }
"""


def test_max_length_cut_shortens_and_error_allows_exactly_the_maximum(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, MAX_LENGTH)
    xml = orders("<name>Müllerstraße</name><city>Essen</city>", "<name>Ulm</name><city>Ulm</city>")
    assert convert(mapping, tmp_path, xml) == [[["Mülle", "Essen"]], [["Ulm", "Ulm"]]]


def test_max_length_error_names_length_column_value_and_mapping_line(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, MAX_LENGTH)
    err = convert_error(mapping, tmp_path, orders("<name>x</name><city>Berlin</city>"))
    line = line_of(text, "Strict:")
    assert (err.field, err.value, err.mapping) == ("Strict", "Berlin", f"m.yaml:{line}")
    assert err.message == "the value is 6 characters long, at most 5 are allowed"
    assert str(err) == ("field 'Strict': the value is 6 characters long, at most 5 are allowed "
                        f"(the value was 'Berlin') [mapping m.yaml:{line}]")


# --- lookups -------------------------------------------------------------------------------------

LOOKUPS = """\
lookups:
  pay:
    values:
      PP: VORKASSE
      CC: KREDITKARTE
  ship:
    values:
      DHL: D1
    default: STANDARD
  land:
    values:
      DE: D
    keep_unknown: true
outputs:
  - name: out
    file: out.csv
    format: csv
    columns:
      Pay: "{{ order.pay | lookup('pay') }}"
      Ship: "{{ order.ship | lookup('ship') }}"
      Land: "{{ order.land | lookup('land') }}"
"""


def test_lookup_translates_known_values_after_trimming(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, LOOKUPS)
    xml = orders("<pay> CC </pay><ship>DHL</ship><land>DE</land>")
    assert convert(mapping, tmp_path, xml) == [[["KREDITKARTE", "D1", "D"]]]


def test_lookup_default_is_used_for_unknown_and_missing_values(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, LOOKUPS)
    xml = orders("<pay>PP</pay><ship>UPS</ship><land>DE</land>", "<pay>PP</pay><land>DE</land>")
    assert [rows[0][1] for rows in convert(mapping, tmp_path, xml)] == ["STANDARD", "STANDARD"]


def test_lookup_keep_unknown_passes_the_value_through(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, LOOKUPS)
    xml = orders("<pay>PP</pay><land> SE </land>", "<pay>PP</pay>")
    assert [rows[0][2] for rows in convert(mapping, tmp_path, xml)] == ["SE", ""]


def test_lookup_of_an_unknown_value_lists_the_known_values_and_says_how_to_fix_it(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, LOOKUPS)
    err = convert_error(mapping, tmp_path, orders("<pay>PAL</pay><land>DE</land>"))
    assert err.field == "Pay"
    assert err.mapping == f"m.yaml:{line_of(text, 'Pay:')}"
    assert err.message == (
        "'PAL' is not in the lookup table 'pay' (known: PP, CC); "
        "add it under lookups → pay → values in the mapping, or give the table a default"
    )


def test_lookup_without_default_refuses_a_missing_value(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, LOOKUPS)
    err = convert_error(mapping, tmp_path, orders("<land>DE</land>"))
    assert err.field == "Pay"
    assert err.message.startswith("'' is not in the lookup table 'pay' (known: PP, CC); ")


# --- when, for_each, row_number ------------------------------------------------------------------

ROWS = """\
outputs:
  - name: out
    file: out.csv
    format: csv
    columns:
      Pos: "{{ row_number }}"
      Kind: head
      Ref: "{{ order.no }}"
    rows:
      - {}
      - for_each: order.items.item
        as: item
        columns:
          Kind: "item {{ item.sku }}"
      - when: order.shipping and order.shipping | decimal != 0
        columns:
          Kind: "shipping {{ order.shipping | number }}"
      - for_each: order.items.item
        when: item.gift == 'yes'
        columns:
          Kind: "gift wrap {{ item.sku }}"
"""


def test_row_number_counts_across_row_kinds_and_restarts_per_record(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, ROWS)
    xml = orders(
        "<no>1</no><items><item><sku>A</sku></item><item><sku>B</sku><gift>yes</gift></item></items>"
        "<shipping>4.90</shipping>",
        "<no>2</no><items><item><sku>C</sku></item></items>",
    )
    assert convert(mapping, tmp_path, xml) == [
        [["1", "head", "1"], ["2", "item A", "1"], ["3", "item B", "1"], ["4", "shipping 4,90", "1"],
         ["5", "gift wrap B", "1"]],
        [["1", "head", "2"], ["2", "item C", "2"]],
    ]


def test_for_each_over_a_single_element_loops_once(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, ROWS)
    rows = convert(mapping, tmp_path, orders("<no>1</no><items><item><sku>ONLY</sku></item></items>"))
    assert rows == [[["1", "head", "1"], ["2", "item ONLY", "1"]]]


@pytest.mark.parametrize("items", ["", "<items><other>x</other></items>"], ids=["no-items", "no-item"])
def test_for_each_over_a_missing_element_loops_zero_times(tmp_path: Path, items: str) -> None:
    mapping, _ = compile_text(tmp_path, ROWS)
    assert convert(mapping, tmp_path, orders(f"<no>1</no>{items}")) == [[["1", "head", "1"]]]


EMPTY_ELEMENT = (
    "an empty element (<items/>, <items></items>) is read as the text '', and a field of it "
    "(order.items.item) is then an UndefinedError -> MappingError \"the mapping uses something that does not "
    "exist: 'str object' has no attribute 'item'\"; a missing element loops zero times, an empty one should too"
)


@pytest.mark.parametrize("items", ["<items></items>", "<items/>", "<items>\n  </items>"])
def test_for_each_over_an_empty_element_loops_zero_times(tmp_path: Path, items: str) -> None:
    mapping, _ = compile_text(tmp_path, ROWS)
    assert convert(mapping, tmp_path, orders(f"<no>1</no>{items}")) == [[["1", "head", "1"]]]


def test_fields_of_an_empty_element_render_empty(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              Ref: "{{ order.no }}"
              Company: "{{ order.delivery_address.company }}"
        """)
    assert convert(mapping, tmp_path, orders("<no>1</no><delivery_address/>")) == [[["1", ""]]]


@pytest.mark.parametrize("shipping", ["", "<shipping></shipping>", "<shipping>0.00</shipping>"])
def test_when_false_skips_the_row_without_using_a_row_number(tmp_path: Path, shipping: str) -> None:
    mapping, _ = compile_text(tmp_path, ROWS)
    xml = orders(f"<no>1</no>{shipping}<items><item><sku>A</sku><gift>yes</gift></item></items>")
    assert convert(mapping, tmp_path, xml) == [[["1", "head", "1"], ["2", "item A", "1"], ["3", "gift wrap A", "1"]]]


def test_for_each_over_text_is_an_error_at_the_row(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, ROWS)
    err = convert_error(mapping, tmp_path, orders("<no>1</no><items><item>just text</item></items>"))
    # order.items.item is the text "just text", not a list of entries
    assert err.field == "for_each"
    assert err.mapping == f"m.yaml:{text.splitlines().index('      - for_each: order.items.item') + 1}"
    assert err.message == "expected a list of entries to repeat over, got the text 'just text'"


def test_when_that_cannot_be_computed_is_an_error_at_the_row(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, ROWS)
    err = convert_error(mapping, tmp_path, orders("<no>1</no><shipping>4,90</shipping>"))
    assert err.field == "when"
    assert err.mapping == f"m.yaml:{line_of(text, 'when: order.shipping')}"
    assert (err.message, err.value) == ("expected a number like 1234.50", "4,90")


# --- the unit separator, record fields, the sandbox ------------------------------------------------

SEPARATOR = """\
outputs:
  - name: out
    file: out.csv
    format: csv
    columns:
      A: "{{ order.no }}"
      B: "{{ settings.text }}"
      C: "x\\x1fy"
      D: "{{ order.name }}"
"""


def test_values_containing_the_unit_separator_stay_in_their_columns(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, SEPARATOR)
    rows = convert(mapping, tmp_path, orders("<no>1</no><name>Max</name>"), settings={"text": "a\x1fb\x1fc"})
    assert rows == [[["1", "a\x1fb\x1fc", "x\x1fy", "Max"]]]


def test_unit_separator_in_row_columns_and_record_columns_stays_in_place(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              Pos: "{{ row_number }}"
              Head: "{{ settings.text }}|{{ order.no }}"
              Sku: ""
              Tail: "{{ order.no }}"
            rows:
              - for_each: order.items.item
                columns:
                  Sku: "{{ item.sku }}\\x1f{{ settings.text }}"
        """)
    xml = orders("<no>1</no><items><item><sku>A</sku></item><item><sku>B</sku></item></items>")
    assert convert(mapping, tmp_path, xml, settings={"text": "a\x1fb"}) == [[
        ["1", "a\x1fb|1", "A\x1fa\x1fb", "1"],
        ["2", "a\x1fb|1", "B\x1fa\x1fb", "1"],
    ]]


def test_literal_unit_separator_in_a_mapping_value_stays_in_its_column(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, SEPARATOR)
    assert convert(mapping, tmp_path, orders("<no>1</no>")) == [[["1", "plain", "x\x1fy", ""]]]


def test_record_fields_named_like_dict_methods_or_record_internals_are_the_fields(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              Subscript: "{{ order['keys'] }}"
              Keys: "{{ order.keys }}"
              Values: "{{ order.values }}"
              Line: "{{ order.line }}"
              Plain: "{{ order.to_plain }}"
              Nested: "{{ order.items.item.sku }}"
        """)
    xml = orders("<keys>K</keys><values>V</values><line>L</line><to_plain>P</to_plain>"
                 "<items><item><sku>S</sku></item></items>",
                 "<other>x</other>")
    assert convert(mapping, tmp_path, xml) == [
        [["K", "K", "V", "L", "P", "S"]],
        [["", "", "", "", "", ""]],
    ]


def test_missing_nested_fields_render_empty(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              City: "{{ order.client.address.city }}"
              Upper: "{{ order.client.city | upper }}"
              Either: "{{ order.company or 'private' }}"
        """)
    assert convert(mapping, tmp_path, orders("<no>1</no>")) == [[["", "", "private"]]]


@pytest.mark.parametrize(
    ("template", "refused"),
    [
        ("{{ [].append(1) }}", "access to attribute 'append' of 'list' object is unsafe."),
        ("{{ order.items.item.append(1) }}", "access to attribute 'append' of 'list' object is unsafe."),
    ],
)
def test_sandbox_refuses_python_internals_with_a_mapping_error(tmp_path: Path, template: str, refused: str) -> None:
    mapping, text = compile_text(tmp_path, f"""\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              A: "{{{{ order.no }}}}"
              Evil: "{template}"
        """)
    err = convert_error(mapping, tmp_path, orders("<no>1</no><items><item>a</item><item>b</item></items>"))
    assert err.field == "Evil"
    assert err.mapping == f"m.yaml:{line_of(text, 'Evil:')}"
    assert err.message == f"the mapping tried something that is not allowed: {refused}"


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__ }}", "{{ order.no.__class__.__mro__[1].__subclasses__() }}", "{{ order.no.format.__globals__ }}",
     "{{ order._fields }}"],
)
def test_names_starting_with_underscore_are_refused_when_the_mapping_is_loaded(tmp_path: Path, template: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_text(tmp_path, f"""\
            outputs:
              - name: out
                file: out.csv
                format: csv
                columns:
                  Evil: "{template}"
            """)
    assert all("names starting with '_' are not allowed in templates" in str(p) for p in caught.value.problems)


def test_record_internals_are_not_reachable_from_a_template(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, """\
        outputs:
          - name: out
            file: out.csv
            format: csv
            columns:
              Item: "{{ order['__class__'] }}"
        """)
    assert convert(mapping, tmp_path, orders("<no>1</no>")) == [[[""]]]


# --- file names and keys -------------------------------------------------------------------------

FILES = """\
outputs:
  - name: out
    file: "{{ input.stem }}_{{ settings.text }}.csv"
    format: csv
    columns:
      A: "{{ order.no }}"
"""


def test_output_file_name_is_rendered_from_input_and_settings(tmp_path: Path) -> None:
    mapping, _ = compile_text(tmp_path, FILES)
    context = mapping.context(Record({}), {"stem": "orders"}, mapping.settings)
    assert mapping.outputs[0].file_name(context) == "orders_plain.csv"


@pytest.mark.parametrize("stem", ["../up", "sub/dir", "sub\\dir", ".hidden", "a:b", "tab\there"])
def test_output_file_name_must_be_a_plain_name_inside_the_outbox(tmp_path: Path, stem: str) -> None:
    mapping, text = compile_text(tmp_path, FILES)
    context = mapping.context(Record({}), {"stem": stem}, mapping.settings)
    with pytest.raises(MappingError) as err:
        mapping.outputs[0].file_name(context)
    assert err.value.message == "the output file name must be a plain name without folders, not starting with '.'"
    assert (err.value.field, err.value.value) == ("file", f"{stem}_plain.csv")
    assert err.value.mapping == f"m.yaml:{line_of(text, 'file:')}"


def test_key_is_the_trimmed_key_value_and_an_empty_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    mapping, text = compile_text(tmp_path, FILES)
    assert mapping.key_of(mapping.context(Record({"no": " 1-2-3 "}), {}, {})) == "1-2-3"
    with pytest.raises(MappingError) as err:
        mapping.key_of(mapping.context(Record({}), {}, {}))
    assert err.value.message == "the order number is empty"
    assert err.value.mapping == f"m.yaml:{line_of(text, 'value: ')}"
