"""The installation: gateway.yaml parsed into typed models.

Relative paths are resolved against the folder of gateway.yaml, so an installation can
be copied or run from any working directory. Unknown keys are errors, because a typo
silently falling back to a default is how files end up in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

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


class SftpDestination(Strict):
    """A folder on a partner's SFTP server (the partner is described under ``partners``)."""

    sftp: str
    folder: str
    marker: str | None = None


class SmtpDestination(Strict):
    """E-mail, sent through the server under ``smtp`` in gateway.yaml."""

    smtp: bool

    @field_validator("smtp")
    @classmethod
    def _yes(cls, v: bool) -> bool:
        if not v:
            raise ValueError("write 'smtp: yes' to send through the mail server under 'smtp'")
        return v


def _destination_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "sftp" in value:
            return "tag:sftp"
        if "smtp" in value:
            return "tag:smtp"
    return "tag:folder"


Destination = Annotated[
    Annotated[FolderDestination, Tag("tag:folder")]
    | Annotated[SftpDestination, Tag("tag:sftp")]
    | Annotated[SmtpDestination, Tag("tag:smtp")],
    Discriminator(_destination_kind),
]


class SftpSource(Strict):
    """A folder on a partner's SFTP server that the partner drops files into."""

    sftp: str
    folder: str
    include: list[str] = Field(default_factory=lambda: ["*"])
    settle_seconds: float | None = Field(default=None, ge=0)
    archive: str | None = None  # remote folder processed files are moved to; without it they are deleted


def _source_kind(value: Any) -> str:
    return "tag:sftp" if isinstance(value, dict) and "sftp" in value else "tag:folder"


Source = Annotated[
    Annotated[FolderSource, Tag("tag:folder")] | Annotated[SftpSource, Tag("tag:sftp")],
    Discriminator(_source_kind),
]


class SftpPartner(Strict):
    """An SFTP server of a partner: where, who we are, and which host key we trust."""

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    key_file: str  # our private key, relative to gateway.yaml's folder
    known_hosts: str  # the partner's host key (``gateway sftp trust PARTNER`` writes it)
    passphrase_env: str | None = None  # the environment variable holding the key's passphrase
    rename: Literal["posix", "plain"] = "posix"  # servers without posix-rename need "plain"
    timeout: float = Field(default=15, gt=0)


def _an_address(value: str, what: str) -> str:
    """An e-mail address from gateway.yaml, refused when loading rather than at the first message."""
    from .writers.email import address_problem

    problem = address_problem(value, what)
    if problem:
        raise ValueError(problem)
    return value


class SmtpServer(Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    password_env: str | None = None  # the environment variable holding the password, never the password
    sender: str  # From: of every message, e.g. "Shop <shop@example.org>"
    domain: str = "gateway.invalid"  # right-hand side of Message-IDs

    @field_validator("sender")
    @classmethod
    def _sender_is_an_address(cls, v: str) -> str:
        return _an_address(v, "sender")


class AlertsConfig(Strict):
    email: str  # who is told about quarantined inputs and partners that stay unreachable
    after_minutes: float = Field(default=30, gt=0)  # how long a source or destination may fail before an alert

    @field_validator("email")
    @classmethod
    def _alert_address(cls, v: str) -> str:
        return _an_address(v, "alert address")


class ScheduleConfig(Strict):
    every_minutes: float | None = Field(default=None, gt=0)
    at: list[str] = Field(default_factory=list)  # local times of day, "06:00"

    @model_validator(mode="after")
    def _a_real_schedule(self) -> ScheduleConfig:
        from .schedule import Schedule

        # raises ValueError in plain words: "25:00" is not a time of day, or neither value given
        Schedule(self.every_minutes, self.at or None)
        return self


class Archive(Strict):
    folder: str = "archive"
    keep_days: int = Field(default=30, ge=0)


class FlowConfig(Strict):
    mapping: str
    enabled: bool = True
    source: Source
    outbox: Destination
    destinations: dict[str, Destination] = Field(default_factory=dict)  # more places outputs can go ('to:')
    settings: dict[str, str] = Field(default_factory=dict)
    schedule: ScheduleConfig | None = None  # without one, the flow runs whenever input arrives
    # A file with the same content as one delivered before is recorded as a duplicate. Stock and
    # price updates repeat their content legitimately (5 → 3 → 5): switch it off for such flows.
    same_content_is_duplicate: bool = True


class GatewayFile(Strict):
    state: str = "state"
    quarantine: str = "quarantine"
    archive: Archive = Archive()
    settle_seconds: float = Field(default=2.0, ge=0)
    record_seconds: float = Field(default=30.0, ge=0)  # time limit for converting one record (0: none)
    watch: Literal["auto", "native", "polling"] = "auto"  # polling for network shares
    rescan_seconds: float = Field(default=60.0, gt=0)
    partners: dict[str, SftpPartner] = Field(default_factory=dict)
    smtp: SmtpServer | None = None
    alerts: AlertsConfig | None = None
    flows: dict[str, Any] = Field(default_factory=dict)  # each flow is validated on its own


@dataclass(frozen=True)
class Flow:
    """A flow ready to run: its config with paths resolved and its mapping loaded."""

    name: str
    config: FlowConfig
    mapping: Mapping
    source_folder: Path | None  # a local inbox, or None for a partner's SFTP folder
    outbox_folder: Path | None  # a local outbox, or None when the outbox is SFTP or e-mail
    settle_seconds: float

    def folder_of(self, destination: str) -> Path | None:
        """The local folder of a destination (``outbox`` or a named one), or None when it is remote."""
        spec = self.config.outbox if destination == "outbox" else self.config.destinations.get(destination)
        return self.root / spec.folder if isinstance(spec, FolderDestination) else None

    root: Path = Path()

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
    partners: dict[str, SftpPartner] = field(default_factory=dict)  # with key and known_hosts paths absolute
    smtp: SmtpServer | None = None
    alerts: AlertsConfig | None = None
    record_seconds: float = 30.0
    watch: Literal["auto", "native", "polling"] = "auto"
    rescan_seconds: float = 60.0

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
        _check_endpoints(doc, name, fc, conf, problems)
        destinations = {"outbox", *fc.destinations}
        for i, out in enumerate(mapping.spec.outputs):
            if out.to not in destinations:
                problems.append(mapping.doc.problem(
                    ("outputs", i, "to"),
                    f"flow '{name}' has no destination '{out.to}' (destinations: {', '.join(sorted(destinations))})"))
        flows[name] = Flow(
            name=name,
            config=fc,
            mapping=mapping,
            source_folder=(root / fc.source.folder).resolve() if isinstance(fc.source, FolderSource) else None,
            outbox_folder=(root / fc.outbox.folder).resolve() if isinstance(fc.outbox, FolderDestination) else None,
            settle_seconds=fc.source.settle_seconds if fc.source.settle_seconds is not None else default_settle,
            root=root,
        )
    _check_folders(doc, root, configs, problems)
    if conf is not None and conf.alerts is not None and conf.smtp is None:
        problems.append(doc.problem(("alerts",), "alerts are sent by e-mail: describe the mail server under 'smtp'"))
    if conf is not None:
        for pname, partner in conf.partners.items():
            if not (root / partner.key_file).is_file():
                problems.append(doc.problem(("partners", pname, "key_file"),
                                            f"the key file {partner.key_file} does not exist"))
    if problems or conf is None:
        raise ConfigError(problems)
    partners = {
        n: p.model_copy(update={"key_file": str((root / p.key_file).resolve()),
                                "known_hosts": str((root / p.known_hosts).resolve())})
        for n, p in conf.partners.items()
    }
    return Installation(
        path=path,
        root=root,
        state_dir=(root / conf.state).resolve(),
        quarantine_dir=(root / conf.quarantine).resolve(),
        archive_dir=(root / conf.archive.folder).resolve(),
        keep_days=conf.archive.keep_days,
        flows=flows,
        partners=partners,
        smtp=conf.smtp,
        alerts=conf.alerts,
        record_seconds=conf.record_seconds,
        watch=conf.watch,
        rescan_seconds=conf.rescan_seconds,
    )


def _check_endpoints(doc: YamlDocument, name: str, fc: FlowConfig, conf: GatewayFile | None,
                     problems: list[Problem]) -> None:
    """SFTP partners and the SMTP server a flow names must be described in gateway.yaml."""
    partners = conf.partners if conf else {}
    places: list[tuple[tuple[str | int, ...], Any]] = [(("source",), fc.source), (("outbox",), fc.outbox)]
    places += [(("destinations", d), spec) for d, spec in fc.destinations.items()]
    for loc, spec in places:
        if isinstance(spec, (SftpSource, SftpDestination)) and spec.sftp not in partners:
            known = ", ".join(partners) or "none yet"
            problems.append(doc.problem(("flows", name, *loc, "sftp"),
                                        f"no partner named '{spec.sftp}' under 'partners' (partners: {known})"))
        if isinstance(spec, SmtpDestination) and (conf is None or conf.smtp is None):
            problems.append(doc.problem(("flows", name, *loc, "smtp"),
                                        "e-mail needs the mail server described under 'smtp' in gateway.yaml"))


def _check_folders(doc: YamlDocument, root: Path, configs: dict[str, FlowConfig], problems: list[Problem]) -> None:
    """Two flows sharing an inbox would steal each other's files; an outbox that is an inbox loops."""
    inboxes: dict[Path, str] = {}
    for name, fc in configs.items():
        if not isinstance(fc.source, FolderSource):
            continue
        folder = (root / fc.source.folder).resolve()
        other = inboxes.get(folder)
        if other:
            problems.append(doc.problem(("flows", name, "source", "folder"),
                                        f"flow '{other}' already reads from this folder; give each flow its own"))
        inboxes[folder] = name
    for name, fc in configs.items():
        if not isinstance(fc.outbox, FolderDestination):
            continue
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
