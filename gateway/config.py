"""The installation: gateway.yaml parsed into typed models.

Relative paths are resolved against the folder of gateway.yaml, so an installation can
be copied or run from any working directory. Unknown keys are errors, because a typo
silently falling back to a default is how files end up in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import ConfigError, Problem
from .mapping.compiler import Mapping, load_mapping
from .validation import validate
from .yamlload import YamlDocument, load_yaml

FLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderSource(Strict):
    """A local drop folder that a producer writes into."""

    folder: str
    include: list[str] = Field(default_factory=lambda: ["*"])
    settle_seconds: float | None = Field(default=None, ge=0)
    marker: str | None = None  # e.g. ".ok": file X is taken at once when X.ok exists
    batch_marker: str | None = None  # e.g. "export.done": a folder is one input once this file is in it


class FolderDestination(Strict):
    """A local outbox folder that an importer reads from."""

    folder: str
    marker: str | None = None  # e.g. ".done": written after each output

    @field_validator("marker")
    @classmethod
    def _marker_is_suffix(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith(".") or "/" in v or len(v) < 2):
            raise ValueError("a marker is a file name ending such as '.done' or '.ok'")
        return v


class Archive(Strict):
    folder: str = "archive"
    keep_days: int = Field(default=30, ge=0)


class FlowConfig(Strict):
    mapping: str
    enabled: bool = True
    source: FolderSource
    outbox: FolderDestination
    settings: dict[str, str] = Field(default_factory=dict)


class GatewayFile(Strict):
    state: str = "state"
    quarantine: str = "quarantine"
    archive: Archive = Archive()
    settle_seconds: float = Field(default=2.0, ge=0)
    flows: dict[str, Any] = Field(default_factory=dict)  # each flow is validated on its own


@dataclass(frozen=True)
class Flow:
    """A flow ready to run: its config with paths resolved and its mapping loaded."""

    name: str
    config: FlowConfig
    mapping: Mapping
    source_folder: Path
    outbox_folder: Path
    settle_seconds: float

    @property
    def settings(self) -> dict[str, str]:
        return {**self.mapping.settings, **self.config.settings}


@dataclass(frozen=True)
class Installation:
    """Everything gateway.yaml describes, with absolute paths."""

    path: Path
    root: Path
    state_dir: Path
    quarantine_dir: Path
    archive_dir: Path
    keep_days: int
    flows: dict[str, Flow]

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "journal.sqlite"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    def select(self, names: tuple[str, ...] | list[str]) -> list[Flow]:
        """The enabled flows, or the named ones (named flows run even when disabled)."""
        if not names:
            return [f for f in self.flows.values() if f.config.enabled]
        unknown = [n for n in names if n not in self.flows]
        if unknown:
            known = ", ".join(self.flows) or "none"
            raise ConfigError(
                [Problem(_shown(self.path), 1, 1, f"no flow named '{n}' (flows: {known})") for n in unknown]
            )
        return [self.flows[n] for n in names]


def load_installation(path: Path) -> Installation:
    """Load gateway.yaml and every mapping it names; raise ``ConfigError`` with all problems.

    Each flow is validated on its own, so that one mistake does not hide the others:
    the admin gets the whole list in one ``gateway check``.
    """
    path = path.resolve()
    root = path.parent
    doc = load_yaml(path, _shown(path))
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "gateway.yaml must be a group of 'name: value' lines")])
    problems: list[Problem] = []
    conf: GatewayFile | None = None
    try:
        conf = validate(GatewayFile, doc)
    except ConfigError as exc:
        problems.extend(exc.problems)
    raw_flows = doc.data.get("flows")
    default_settle = conf.settle_seconds if conf else 2.0
    configs: dict[str, FlowConfig] = {}
    for name in raw_flows if isinstance(raw_flows, dict) else {}:
        if not FLOW_NAME.match(name):
            problems.append(doc.problem(("flows", name),
                                        f"flow name '{name}' must be lower-case letters, digits, '-' or '_'"))
            continue
        try:
            configs[name] = validate(FlowConfig, doc, base=("flows", name))
        except ConfigError as exc:
            problems.extend(exc.problems)
    flows: dict[str, Flow] = {}
    for name, fc in configs.items():
        mapping_path = root / fc.mapping
        if not mapping_path.is_file():
            problems.append(doc.problem(("flows", name, "mapping"), f"the mapping file {fc.mapping} does not exist"))
            continue
        try:
            mapping = load_mapping(mapping_path, _shown(mapping_path), root)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for key in fc.settings:
            if key not in mapping.settings:
                known = ", ".join(mapping.settings) or "none"
                problems.append(doc.problem(("flows", name, "settings", key),
                                            f"the mapping {fc.mapping} has no setting '{key}' (settings: {known})"))
        flows[name] = Flow(
            name=name,
            config=fc,
            mapping=mapping,
            source_folder=(root / fc.source.folder).resolve(),
            outbox_folder=(root / fc.outbox.folder).resolve(),
            settle_seconds=fc.source.settle_seconds if fc.source.settle_seconds is not None else default_settle,
        )
    _check_folders(doc, root, configs, problems)
    if problems or conf is None:
        raise ConfigError(problems)
    return Installation(
        path=path,
        root=root,
        state_dir=(root / conf.state).resolve(),
        quarantine_dir=(root / conf.quarantine).resolve(),
        archive_dir=(root / conf.archive.folder).resolve(),
        keep_days=conf.archive.keep_days,
        flows=flows,
    )


def _check_folders(doc: YamlDocument, root: Path, configs: dict[str, FlowConfig], problems: list[Problem]) -> None:
    """Two flows sharing an inbox would steal each other's files; an outbox that is an inbox loops."""
    inboxes: dict[Path, str] = {}
    for name, fc in configs.items():
        folder = (root / fc.source.folder).resolve()
        other = inboxes.get(folder)
        if other:
            problems.append(doc.problem(("flows", name, "source", "folder"),
                                        f"flow '{other}' already reads from this folder; give each flow its own"))
        inboxes[folder] = name
    for name, fc in configs.items():
        reader = inboxes.get((root / fc.outbox.folder).resolve())
        if reader:
            problems.append(doc.problem(("flows", name, "outbox", "folder"),
                                        f"this outbox is the inbox of flow '{reader}'; outputs would be read again"))


def _shown(path: Path) -> str:
    """Paths in messages relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
