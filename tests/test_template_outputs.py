"""Outputs written by template files: escaping, streaming, validation against an XSD, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Install, order_xml, orders_file

TEMPLATE = """\
<?xml version="1.0" encoding="utf-8"?>
<Auftraege quelle="{{ input.name }}">
{%- for order in records %}
  <Auftrag nummer="{{ order.order_no }}">
    <Kunde>{{ order.client.company or order.client.last_name }}</Kunde>
    <Betrag>{{ order.total }}</Betrag>
  </Auftrag>
{%- endfor %}
</Auftraege>
"""

SCHEMA = """\
<?xml version="1.0" encoding="utf-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Auftraege">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Auftrag" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Kunde" type="xs:string"/>
              <xs:element name="Betrag" type="xs:decimal"/>
            </xs:sequence>
            <xs:attribute name="nummer" type="xs:string" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="quelle" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

OUTPUT = """
  - name: auftrag_xml
    file: "auftraege_{{ input.stem }}_{{ input.id }}.xml"
    format: template
    template: templates/auftraege.xml.j2
    schema: schemas/auftraege.xsd
"""


@pytest.fixture
def gw(install: Install) -> Install:
    (install.root / "templates").mkdir()
    (install.root / "templates" / "auftraege.xml.j2").write_text(TEMPLATE, encoding="utf-8")
    (install.root / "schemas").mkdir()
    (install.root / "schemas" / "auftraege.xsd").write_text(SCHEMA, encoding="utf-8")
    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8") + OUTPUT, encoding="utf-8")
    return install


def _xml_outputs(gw: Install) -> list[Path]:
    return sorted(gw.outbox().glob("*.xml"))


def _journal(gw: Install) -> list[dict[str, object]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def test_template_output_is_written_beside_the_csv_with_values_escaped(gw: Install) -> None:
    gw.drop("a.xml", orders_file(order_xml("1-1-1", client={"company": "Gabler & Co. <KG>"}),
                                 order_xml("2-2-2")).replace("<total>0</total>", "<total>12.50</total>"))
    result = gw.cli("run", "--once")
    assert result.exit_code == 0, result.output
    (xml,) = _xml_outputs(gw)
    text = xml.read_text(encoding="utf-8")
    assert '<Auftrag nummer="1-1-1">' in text and '<Auftrag nummer="2-2-2">' in text
    assert "<Kunde>Gabler &amp; Co. &lt;KG&gt;</Kunde>" in text
    assert len(gw.outputs()) == 1  # the CSV as well
    (entry,) = _journal(gw)
    assert len(entry["outputs"]) == 2  # type: ignore[arg-type]


def test_control_characters_are_dropped_from_xml_but_kept_in_text_templates(tmp_path: Path) -> None:
    from gateway.mapping.templating import make_environment

    (tmp_path / "a.xml.j2").write_text("<k>{{ value }}</k>", encoding="utf-8")
    (tmp_path / "a.txt.j2").write_text("{{ value }}", encoding="utf-8")
    env = make_environment({}, tmp_path)
    # libxml2 refuses &#1; in partner XML, but a CSV or JSON input can carry such characters
    assert env.get_template("a.xml.j2").render(value="A\x01B & C\x1f") == "<k>AB &amp; C</k>"
    assert env.get_template("a.txt.j2").render(value="A\x01B & C") == "A\x01B & C"


def test_output_that_breaks_the_schema_quarantines_the_input_and_names_the_element(gw: Install) -> None:
    gw.drop("a.xml", orders_file(order_xml("4-4-4")).replace("<total>0</total>", "<total>viel</total>"))
    result = gw.cli("run", "--once")
    assert result.exit_code == 1
    (entry,) = _journal(gw)
    assert entry["state"] == "failed"
    error = str(entry["error"])
    assert "does not match the schema auftraege.xsd" in error and "auftrag_xml" in error
    assert "/Auftraege/Auftrag/Betrag" in error and "viel" in error
    assert gw.outputs() == [] and _xml_outputs(gw) == []  # nothing released, not even the valid CSV


def test_orders_delivered_before_are_left_out_of_the_template_too(gw: Install) -> None:
    gw.drop("a.xml", orders_file(order_xml("5-5-5")).replace("<total>0</total>", "<total>1</total>"))
    assert gw.cli("run", "--once").exit_code == 0
    both = orders_file(order_xml("5-5-5"), order_xml("6-6-6"))
    gw.drop("b.xml", both.replace("<total>0</total>", "<total>1</total>"))
    assert gw.cli("run", "--once").exit_code == 0
    second = [p for p in _xml_outputs(gw) if "_b_" in p.name]
    (xml,) = second
    text = xml.read_text(encoding="utf-8")
    assert "6-6-6" in text and "5-5-5" not in text


def test_an_unknown_name_in_a_template_file_is_a_config_problem(gw: Install) -> None:
    path = gw.root / "templates" / "auftraege.xml.j2"
    path.write_text(TEMPLATE.replace("records", "recrods"), encoding="utf-8")
    result = gw.cli("check")
    assert result.exit_code == 2
    assert "templates/auftraege.xml.j2 uses the unknown name 'recrods'" in result.output


def test_a_missing_template_or_schema_is_a_config_problem(gw: Install) -> None:
    (gw.root / "templates" / "auftraege.xml.j2").unlink()
    (gw.root / "schemas" / "auftraege.xsd").write_text("<not a schema", encoding="utf-8")
    result = gw.cli("check")
    assert result.exit_code == 2
    assert "the template templates/auftraege.xml.j2 does not exist" in result.output
    assert "the schema schemas/auftraege.xsd cannot be used" in result.output


def test_a_failure_inside_the_template_names_its_line_and_the_order(gw: Install) -> None:
    path = gw.root / "templates" / "auftraege.xml.j2"
    path.write_text(TEMPLATE.replace("{{ order.total }}", "{{ order.total | decimal }}"), encoding="utf-8")
    gw.drop("a.xml", orders_file(order_xml("7-7-7")).replace("<total>0</total>", "<total>x</total>"))
    assert gw.cli("run", "--once").exit_code == 1
    (entry,) = _journal(gw)
    error = str(entry["error"])
    assert "order 7-7-7" in error and "auftraege.xml.j2:6" in error and "expected a number" in error


def test_a_template_cannot_escape_the_sandbox(gw: Install) -> None:
    path = gw.root / "templates" / "auftraege.xml.j2"
    path.write_text(TEMPLATE.replace("{{ order.total }}", "{{ order.__class__.__mro__ }}")
                    .replace("{{ input.name }}", "{{ input.name.__class__.__subclasses__() }}"), encoding="utf-8")
    gw.drop("a.xml", orders_file(order_xml("8-8-8")))
    assert gw.cli("run", "--once").exit_code == 1
    (entry,) = _journal(gw)
    assert entry["state"] == "failed" and "not allowed" in str(entry["error"])
    assert _xml_outputs(gw) == []
