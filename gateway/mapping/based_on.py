"""A mapping that is another mapping with a few parts changed (``based_on``).

The SOL database variants of the catalog, stock and price flows make exactly the outputs of
their export-file mappings; only where the tables come from differs (a query instead of a
file in the export). Copying 400 lines of outputs would let the two drift apart, so a
mapping may name the one it is based on and write only what differs::

    based_on: sol-catalog.yaml        # relative to this mapping's folder
    input:
      tables:
        artikel:
          query: SELECT … FROM KHKArtikel …   # added to the base's artikel table

The rule is one sentence: groups (``name: value`` blocks) are merged key by key, to any
depth; anything else given here (a text, a list such as ``outputs`` or ``skip``) replaces the
base's whole. Every part keeps the file and line it was written at, so a problem in a part
that comes from the base points into the base file. A base may not itself be based on
another mapping: one step stays easy to follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..i18n import _
from ..yamlload import Loc, YamlDocument, load_yaml


def merge_based_on(doc: YamlDocument, path: Path, root: Path) -> YamlDocument:
    """``doc`` merged onto the mapping its ``based_on`` names; ``ConfigError`` when that cannot be."""
    name = doc.data.get("based_on")
    loc: Loc = ("based_on",)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError([doc.problem(loc, _("'based_on' names the mapping file this one is based on, "
                                              "such as sol-catalog.yaml"))])
    base_path = (path.resolve().parent / name).resolve()
    if not base_path.is_relative_to(root.resolve()):
        raise ConfigError([doc.problem(loc, _("the mapping {file} is outside the installation folder; "
                                              "keep mappings inside it (e.g. mappings/)").format(file=name))])
    if base_path == path.resolve():
        raise ConfigError([doc.problem(loc, _("a mapping cannot be based on itself"))])
    if not base_path.is_file():
        raise ConfigError([doc.problem(loc, _("the mapping {file} does not exist").format(file=name))])
    shown = _beside(doc.path, name)
    base = load_yaml(base_path, shown)
    if not isinstance(base.data, dict):
        raise ConfigError([base.problem((), _("a mapping must be a group of 'name: value' lines"))])
    if "based_on" in base.data:
        raise ConfigError([doc.problem(loc, _("{file} is itself based on another mapping; base this one on "
                                              "a mapping that stands on its own").format(file=name))])
    merged = YamlDocument(path=doc.path, data=None, lines=doc.lines)
    for at, mark in base.marks.items():
        merged.marks[at] = mark
        merged.origins[at] = base.path
    own = {k: v for k, v in doc.data.items() if k != "based_on"}
    for at, mark in doc.marks.items():
        if at[:1] == ("based_on",):
            continue
        merged.marks[at] = mark
        merged.origins.pop(at, None)
    _forget_replaced(merged, own, ())
    merged.data = _merge(base.data, own)
    return merged


def _merge(base: Any, own: Any) -> Any:
    if isinstance(base, dict) and isinstance(own, dict):
        result = dict(base)
        for key, value in own.items():
            result[key] = _merge(base[key], value) if key in base else value
        return result
    return own


def _forget_replaced(doc: YamlDocument, own: Any, loc: Loc) -> None:
    """Marks of base parts below a value this mapping replaces whole (a list) would point at lines that no
    longer hold anything: the replacing value's own marks are the only ones kept there."""
    if isinstance(own, dict):
        for key, value in own.items():
            _forget_replaced(doc, value, (*loc, key))
        return
    stale = [at for at in doc.marks if len(at) > len(loc) and at[:len(loc)] == loc and at in doc.origins]
    for at in stale:
        del doc.marks[at]
        del doc.origins[at]


def _beside(shown: str, name: str) -> str:
    """The base's name as messages show it: beside the shown name of this mapping."""
    folder = shown.rpartition("/")[0]
    return f"{folder}/{name}" if folder else name
