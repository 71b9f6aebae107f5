"""JSON Schemas of gateway.yaml and of a mapping, for editors that check YAML while it is typed.

VS Code with the YAML extension (and other editors speaking the YAML language server) reads a
schema named in the first line of a file::

    # yaml-language-server: $schema=schemas/editor/gateway.schema.json

and then completes keys, shows each key's description and marks unknown keys and wrong values
while the admin types, before ``gateway check`` is ever run. The schemas are generated from the
same pydantic models that validate the files, so they cannot drift from what the gateway
accepts; a test compares the shipped files with what this module generates. After a change to
the models: ``python -m gateway.editor_schema`` writes them anew.

An editor's schema is a help, not the rule: ``gateway check`` stays the judge (it also knows
what a schema cannot say, such as a setting the mapping does not have).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import create_model

from .config import FlowConfig, GatewayFile
from .kinds import Registry, builtin_kinds

FOLDER = Path("schemas") / "editor"
GATEWAY_SCHEMA = "gateway.schema.json"
MAPPING_SCHEMA = "mapping.schema.json"


def gateway_schema(kinds: Registry | None = None) -> dict[str, Any]:
    """The schema of gateway.yaml: the installation, and each flow typed by the registered kinds."""
    kinds = kinds or builtin_kinds()
    flow = kinds.flow_model(FlowConfig)
    whole = create_model("GatewayYaml", __base__=GatewayFile, flows=(dict[str, flow], {}))  # type: ignore[valid-type]
    schema = whole.model_json_schema(mode="validation")
    schema["title"] = "gateway.yaml"
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


def mapping_schema() -> dict[str, Any]:
    """The schema of a mapping file (mappings/*.yaml)."""
    from .mapping.model import MappingSpec

    strict = MappingSpec.model_json_schema(mode="validation", by_alias=True)
    definitions = strict.pop("$defs", {})
    strict["properties"]["based_on"] = {"type": "string", "description": "the mapping this one changes"}
    # A mapping ``based_on`` another one holds only what it changes: nothing is required in it.
    schema = {"title": "Gateway mapping", "$schema": "http://json-schema.org/draft-07/schema#",
              "$defs": {name: _optional(d) for name, d in definitions.items()} | {
                  f"strict_{name}": _strict_refs(d) for name, d in definitions.items()},
              "if": {"required": ["based_on"]}, "then": _optional(strict), "else": _strict_refs(strict)}
    return schema


def _optional(node: Any) -> Any:
    """``node`` with nothing required, anywhere in it."""
    if isinstance(node, list):
        return [_optional(n) for n in node]
    if isinstance(node, dict):
        return {k: _optional(v) for k, v in node.items() if k != "required"}
    return node


def _strict_refs(node: Any) -> Any:
    """``node`` pointing at the strict definitions (the plain ones are the relaxed copies)."""
    if isinstance(node, list):
        return [_strict_refs(n) for n in node]
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/$defs/strict_") if k == "$ref" and isinstance(v, str) else
                    _strict_refs(v)) for k, v in node.items()}
    return node


_WORDS = ["yes", "no", "true", "false", "on", "off", "Yes", "No", "True", "False"]


def yaml_friendly(node: Any) -> Any:
    """The schema as the gateway reads YAML: every value is text first, so ``mandant: 123`` is the text
    "123" and ``smtp: yes`` is yes (an editor's YAML 1.2 parser sees a number and the word "yes")."""
    if isinstance(node, list):
        return [yaml_friendly(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: yaml_friendly(v) for k, v in node.items()}
    kind = node.get("type")
    if kind == "boolean":
        node.pop("type")
        node["anyOf"] = [{"type": "boolean"}, {"enum": _WORDS}]
    elif kind == "string" and not any(k in node for k in ("enum", "const", "pattern", "format")):
        node["type"] = ["string", "number", "boolean"]
    elif kind in ("integer", "number"):
        node["type"] = [kind, "string"]
    return node


def rendered() -> dict[str, str]:
    """File name → the schema's text, as shipped."""
    return {name: json.dumps(yaml_friendly(schema), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
            for name, schema in ((GATEWAY_SCHEMA, gateway_schema()), (MAPPING_SCHEMA, mapping_schema()))}


def write(root: Path) -> list[Path]:
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    for path in write(Path(__file__).resolve().parents[1]):
        print(path)
