"""The installation: gateway.yaml parsed into typed models.

Relative paths are resolved against the folder of gateway.yaml, so an installation can
be copied or run from any working directory. Unknown keys are errors, because a typo
silently falling back to a default is how files end up in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
    flows: dict[str, FlowConfig] = Field(default_factory=dict)


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
                [Problem(str(self.path), 1, 1, f"no flow named '{n}' (flows: {known})") for n in unknown]
            )
        return [self.flows[n] for n in names]


def load_installation(path: Path) -> Installation:
    """Load gateway.yaml and every mapping it names; raise ``ConfigError`` with all problems."""
    path = path.resolve()
    root = path.parent
    doc = load_yaml(path, _shown(path))
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "gateway.yaml must be a group of 'name: value' lines")])
    conf = validate(GatewayFile, doc)
    problems: list[Problem] = []
    flows: dict[str, Flow] = {}
    for name, fc in conf.flows.items():
        if not FLOW_NAME.match(name):
            problems.append(doc.problem(("flows", name),
                                        f"flow name '{name}' must be lower-case letters, digits, '-' or '_'"))
            continue
        mapping_path = root / fc.mapping
        try:
            mapping = load_mapping(mapping_path, _shown(mapping_path))
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
            settle_seconds=fc.source.settle_seconds if fc.source.settle_seconds is not None else conf.settle_seconds,
        )
    if problems:
        raise ConfigError(problems)
    _check_folders(doc, flows, problems)
    if problems:
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


def _check_folders(doc: YamlDocument, flows: dict[str, Flow], problems: list[Problem]) -> None:
    """Two flows sharing an inbox would steal each other's files; an outbox that is an inbox loops."""
    inboxes: dict[Path, str] = {}
    for flow in flows.values():
        other = inboxes.get(flow.source_folder)
        if other:
            problems.append(doc.problem(("flows", flow.name, "source", "folder"),
                                        f"flow '{other}' already reads from this folder; give each flow its own"))
        inboxes[flow.source_folder] = flow.name
    for flow in flows.values():
        reader = inboxes.get(flow.outbox_folder)
        if reader:
            problems.append(doc.problem(("flows", flow.name, "outbox", "folder"),
                                        f"this outbox is the inbox of flow '{reader}'; outputs would be read again"))


def _shown(path: Path) -> str:
    """Paths in messages relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
