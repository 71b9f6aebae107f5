"""The JSON Schemas editors use to check gateway.yaml and mappings while they are typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.editor_schema import FOLDER, GATEWAY_SCHEMA, MAPPING_SCHEMA, rendered

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = sorted((REPO / "mappings").glob("*.yaml"))


def _schema(name: str) -> dict[str, Any]:
    return json.loads((REPO / FOLDER / name).read_text(encoding="utf-8"))


def _as_an_editor_reads(path: Path) -> Any:
    """Every scalar as text, as the gateway reads it (an editor's YAML 1.2 would see a few numbers and words)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # noqa: S506 - text only


def _errors(schema: dict[str, Any], data: Any) -> list[str]:
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(data)]


def test_the_shipped_schemas_are_what_the_models_give() -> None:
    for name, text in rendered().items():
        assert (REPO / FOLDER / name).read_text(encoding="utf-8") == text, (
            f"{FOLDER / name} is out of date: run 'python -m gateway.editor_schema'")


@pytest.mark.parametrize("path", [REPO / "gateway.yaml", *MAPPINGS], ids=lambda p: p.name)
def test_every_shipped_file_names_its_schema_and_passes_it(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    name = GATEWAY_SCHEMA if path.name == "gateway.yaml" else MAPPING_SCHEMA
    assert first.startswith("# yaml-language-server: $schema=") and first.endswith(name)
    assert (path.parent / first.split("=", 1)[1]).resolve() == (REPO / FOLDER / name).resolve()
    assert _errors(_schema(name), _as_an_editor_reads(path)) == []


def test_a_misspelt_key_is_marked_while_typing() -> None:
    data = _as_an_editor_reads(REPO / "gateway.yaml")
    data["flows"]["sol-stock"]["sourse"] = data["flows"]["sol-stock"].pop("source")
    assert any("'sourse' was unexpected" in e for e in _errors(_schema(GATEWAY_SCHEMA), data))
    mapping = _as_an_editor_reads(REPO / "mappings" / "sol-stock.yaml")
    mapping["outputs"][0]["colums"] = {}
    assert _errors(_schema(MAPPING_SCHEMA), mapping)


def test_a_mapping_based_on_another_needs_only_what_it_changes() -> None:
    assert _errors(_schema(MAPPING_SCHEMA), {"based_on": "sol-stock.yaml", "settings": {"lager": "HL"}}) == []
    assert _errors(_schema(MAPPING_SCHEMA), {"settings": {"lager": "HL"}})  # a whole mapping needs input, outputs
