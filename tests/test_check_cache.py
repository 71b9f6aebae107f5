"""A run checks every mapping before anything moves, through the notes of earlier checks when nothing changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, Install, order_xml, orders_file

from gateway.config import load_installation
from gateway.errors import ConfigError
from gateway.mapping import check_cache

SHIPPED = ("gateway.yaml", "mappings", "templates", "lookups", "schemas", "sql")


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the shipped installation."""
    root = tmp_path / "inst"
    root.mkdir()
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    return root


def _run(root: Path) -> None:
    """Load as `gateway run` does and start the engine's run (which writes the new notes)."""
    from gateway.engine import Engine

    inst = load_installation(root / "gateway.yaml", noted=True)
    engine = Engine(inst)
    try:
        engine.run_once(inst.select([]), wait_for_settle=False)
    finally:
        engine.close()


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The mappings compiled from now on, by name."""
    import gateway.mapping.compiler as compiler

    compiled: list[str] = []
    real = compiler.load_mapping

    def counting(path: Path, shown_as: str, root: Path | None = None) -> object:
        compiled.append(path.name)
        return real(path, shown_as, root)

    monkeypatch.setattr(compiler, "load_mapping", counting)
    return compiled


def test_a_second_run_with_nothing_waiting_checks_every_mapping_by_its_note(
        shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(shipped)
    compiled = _compiles(monkeypatch)
    inst = load_installation(shipped / "gateway.yaml", noted=True)
    mappings = {flow.config.mapping for flow in inst.flows.values()}
    assert len(mappings) >= 12  # a note per mapping file, however many flows share it
    assert len(list((shipped / "state" / "cache" / "mappings").glob("*.json"))) == len(mappings)
    assert compiled == []
    assert all(flow.loaded is None for flow in inst.flows.values())
    assert inst.flows["sol-catalog"].settings["lager"] == "HL,AL"  # the settings come from the note
    setting = inst.flows["sol-catalog"].effective_settings()["kategorie_trenner"]
    assert setting.origin == "mapping" and "mappings/sol-catalog.yaml:" in setting.where
    assert inst.flows["rakuten-orders"].mapping.spec.input.format == "xml"  # compiled when asked for
    assert compiled == ["rakuten-orders.yaml"]


def test_a_mapping_broken_after_its_note_is_refused_before_anything_moves(install: Install) -> None:
    assert install.cli("run", "--once").exit_code == 0  # notes the mapping
    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("{{ order.order_no }}", "{{ order.order_no }",
                                                                   1), encoding="utf-8")
    dropped = install.drop("a.xml", orders_file(order_xml("1-2-3")))
    result = install.cli("run", "--once")
    assert result.exit_code == 2 and "template syntax" in result.stderr, result.stderr
    assert dropped.exists() and install.outputs() == []


@pytest.mark.parametrize("change", ["template", "base"])
def test_a_changed_file_that_the_check_read_makes_the_mapping_checked_again(
        shipped: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    _run(shipped)
    target, flow = {
        "template": (shipped / "templates" / "sol-catalog-kategorien.xml.j2", "sol-catalog.yaml"),
        "base": (shipped / "mappings" / "sol-catalog.yaml", "sol-catalog-db.yaml"),
    }[change]
    uses = [p.name for p in (shipped / "mappings").glob("*.yaml")
            if target.name in p.read_text(encoding="utf-8")]
    target.write_bytes(target.read_bytes() + b"\n")
    compiled = _compiles(monkeypatch)
    load_installation(shipped / "gateway.yaml", noted=True)
    assert compiled, change
    if flow is not None:
        assert flow in compiled
    assert set(compiled) <= {*uses, "sol-catalog.yaml", "sol-catalog-db.yaml"}


LOOKUP_MAPPING = """\
input: { format: csv, as: r }
lookups:
  land: { file: lookups/land.csv, key: code, value: name }
outputs:
  - { name: o, file: "o_{{ input.id }}.csv", format: csv, columns: { land: "{{ r.land | lookup('land') }}" } }
"""


def test_a_changed_lookup_file_is_read_again_and_a_broken_one_refused(install: Install) -> None:
    (install.root / "lookups").mkdir()
    table = install.root / "lookups" / "land.csv"
    table.write_text("code;name\r\nDE;Deutschland\r\n", encoding="utf-8")
    (install.root / "mappings" / "rakuten-orders.yaml").write_text(LOOKUP_MAPPING, encoding="utf-8")
    assert install.cli("run", "--once").exit_code == 0
    table.write_text("code;name\r\nDE;Deutschland\r\nDE;Germany\r\n", encoding="utf-8")
    result = install.cli("run", "--once")
    assert result.exit_code == 2 and "'DE' is in the table twice" in result.stderr, result.stderr
    table.write_text("code;name\r\nDE;Deutschland\r\nAT;Österreich\r\n", encoding="utf-8")
    install.drop("a.xml", "land\r\nAT\r\n")  # the flow takes *.xml; the mapping reads it as CSV
    assert install.cli("run", "--once").exit_code == 0
    assert "Österreich" in install.outputs()[0].read_text(encoding="utf-8")


XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:include schemaLocation="{include}"/>
  {element}
</xs:schema>
"""


def test_a_schema_and_the_schemas_it_includes_are_files_the_check_reads(install: Install) -> None:
    from gateway.mapping.compiler import load_mapping

    schemas = install.root / "schemas"
    schemas.mkdir()
    (schemas / "main.xsd").write_text(XSD.format(include="parts/teil.xsd", element=""), encoding="utf-8")
    (schemas / "parts").mkdir()
    (schemas / "parts" / "teil.xsd").write_text(XSD.format(
        include="../gemeinsam.xsd", element='<xs:element name="x" type="xs:string"/>'), encoding="utf-8")
    (schemas / "gemeinsam.xsd").write_text('<?xml version="1.0"?>\n<xs:schema '
                                          'xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n', encoding="utf-8")
    (install.root / "templates").mkdir()
    (install.root / "templates" / "x.xml.j2").write_text("<x>{% for r in records %}{{ r.a }}{% endfor %}</x>\n",
                                                        encoding="utf-8")
    mapping = install.root / "mappings" / "x.yaml"
    mapping.write_text('input: { format: csv }\noutputs:\n  - { name: x, file: "x_{{ input.id }}.xml", '
                       "format: template, template: templates/x.xml.j2, schema: schemas/main.xsd }\n",
                       encoding="utf-8")
    sources = {p.resolve() for p in load_mapping(mapping, "x.yaml", install.root).sources}
    assert {(schemas / n).resolve() for n in ("main.xsd", "parts/teil.xsd", "gemeinsam.xsd")} <= sources
    assert (install.root / "templates" / "x.xml.j2").resolve() in sources


def test_a_new_gateway_version_checks_every_mapping_again(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(shipped)
    compiled = _compiles(monkeypatch)
    monkeypatch.setattr(check_cache, "code_stamp", lambda: "another version")
    inst = load_installation(shipped / "gateway.yaml", noted=True)
    files = {flow.config.mapping for flow in inst.flows.values()}
    assert len(files) < len(inst.flows)  # some flows share a mapping file
    assert sorted(compiled) == sorted(Path(f).name for f in files)  # each file compiled once


def test_flows_that_share_a_mapping_share_its_note_with_both_database_checks(
        shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = shipped / "gateway.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("  sol-stock-db:\n", (
        "  sol-catalog-db-2:\n"
        "    mapping: mappings/sol-catalog-db.yaml\n"
        "    source: { sql: sol, name: katalog2 }\n"
        "    outbox: { folder: outbox/sol-catalog-db-2 }\n\n"
        "  sol-stock-db:\n"), 1), encoding="utf-8")
    compiled = _compiles(monkeypatch)
    _run(shipped)
    assert compiled.count("sol-catalog-db.yaml") == 1
    for _ in range(2):  # neither flow's check pushes the other's out of the note
        compiled.clear()
        inst = load_installation(config, noted=True)
        assert compiled == []
        assert inst.flows["sol-catalog-db"].facts is inst.flows["sol-catalog-db-2"].facts


def test_a_note_that_cannot_be_read_or_names_another_file_is_ignored(
        shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(shipped)
    notes = sorted((shipped / "state" / "cache" / "mappings").glob("*.json"))
    notes[0].write_text("{not json", encoding="utf-8")
    other = json.loads(notes[1].read_text(encoding="utf-8"))
    other["mapping"] = "/elsewhere/m.yaml"
    notes[1].write_text(json.dumps(other), encoding="utf-8")
    compiled = _compiles(monkeypatch)
    load_installation(shipped / "gateway.yaml", noted=True)
    assert len(compiled) == 2


def test_a_refused_configuration_writes_no_note(install: Install) -> None:
    result = install.cli("run", "--once", "no-such-flow")
    assert result.exit_code == 2
    assert not (install.root / "state").exists()


def test_a_database_flows_check_is_noted_for_its_gateway_yaml(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(shipped)
    compiled = _compiles(monkeypatch)
    load_installation(shipped / "gateway.yaml", noted=True)
    assert compiled == []  # the queries of the three database flows were checked against their mappings once
    config = shipped / "gateway.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    load_installation(shipped / "gateway.yaml", noted=True)
    assert sorted(compiled) == ["sol-catalog-db.yaml", "sol-prices-db.yaml", "sol-stock-db.yaml"]


def test_check_and_a_noted_run_find_the_same_problems(shipped: Path) -> None:
    config = shipped / "gateway.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "    settings: { dhl_rahmenvertrag: \"0\" }", "    settings: { dhl_rahmenvertrag: \"0\", nix: \"1\" }"),
        encoding="utf-8")
    with pytest.raises(ConfigError) as checked:
        load_installation(config)
    with pytest.raises(ConfigError) as noted:
        load_installation(config, noted=True)
    assert [str(p) for p in noted.value.problems] == [str(p) for p in checked.value.problems]
    assert "has no setting 'nix'" in str(checked.value)
