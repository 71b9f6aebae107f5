"""The installation: gateway.yaml parsed into typed models.

Relative paths are resolved against the folder of gateway.yaml, so an installation can
be copied or run from any working directory. Unknown keys are errors, because a typo
silently falling back to a default is how files end up in the wrong place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ConfigError, Problem
from .i18n import _
from .isolation import Limits
from .kinds import CheckContext, KindConfig, Registry, builtin_kinds
from .sql.database import DatabaseConfig
from .validation import validate
from .webservices.config import ServiceConfig
from .yamlload import YamlDocument, load_yaml

if TYPE_CHECKING:
    from .mapping.check_cache import MappingFacts
    from .mapping.compiler import Mapping

FLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class LimitsConfig(Strict):
    """What converting one input may use; each conversion runs in a process of its own (0: no limit)."""

    memory_mb: int = Field(default=2048, ge=0)  # memory on top of what the gateway itself uses
    cpu_seconds: int = Field(default=3600, ge=0)
    wall_seconds: float = Field(default=7200, ge=0)
    open_files: int = Field(default=1024, ge=0)


class Archive(Strict):
    folder: str = "archive"
    keep_days: int = Field(default=30, ge=0)


USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PASSWORD_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")


class ConsoleUser(Strict):
    """Someone who may log in to the console. ``gateway console passwd NAME`` writes the hash, never a password."""

    role: Literal["viewer", "operator"] = "viewer"  # viewers look; operators also retry and write notes
    password_hash: str | None = None  # without one, the user cannot log in yet

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, v: str | None) -> str | None:
        if v is not None and not PASSWORD_HASH.match(v):
            raise ValueError(_("not a password hash written by 'gateway console passwd' (scrypt$…); a password "
                               "itself never goes into gateway.yaml"))
        return v


class ConsoleTls(Strict):
    certificate: str  # PEM files, relative to gateway.yaml's folder
    key: str


class ConsoleConfig(Strict):
    """The operator's web page (``gateway console``): where it listens and who may log in."""

    listen: str = "127.0.0.1"  # loopback: only this machine; anything else needs users (and should have tls)
    port: int = Field(default=8780, ge=1, le=65535)
    users: dict[str, ConsoleUser] = Field(default_factory=dict)
    tls: ConsoleTls | None = None
    session_minutes: float = Field(default=480, gt=0)  # a login lasts this long without use
    upload_mb: float = Field(default=20, gt=0)  # largest file "Try a mapping" takes
    login_attempts: int = Field(default=5, ge=1)  # failed logins per address or user within 15 minutes

    @field_validator("users")
    @classmethod
    def _user_names(cls, v: dict[str, ConsoleUser]) -> dict[str, ConsoleUser]:
        for name in v:
            if not USER_NAME.match(name):
                raise ValueError(_("user name '{name}' may hold only letters, digits and . _ @ -").format(name=name))
        return v


class FlowConfig(Strict):
    """A flow's entry in gateway.yaml. ``source``, ``outbox`` and ``destinations`` are typed by the
    registered kinds (:meth:`gateway.kinds.Registry.flow_model`)."""

    mapping: str
    enabled: bool = True
    source: KindConfig
    outbox: KindConfig
    destinations: dict[str, KindConfig] = Field(default_factory=dict)  # more places outputs can go ('to:')
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
    # An input that meets an unexpected error (a bug) this many times is quarantined instead of retried forever.
    max_attempts: int = Field(default=3, ge=1)
    limits: LimitsConfig = LimitsConfig()
    watch: Literal["auto", "native", "polling"] = "auto"  # polling for network shares
    rescan_seconds: float = Field(default=60.0, gt=0)
    partners: dict[str, SftpPartner] = Field(default_factory=dict)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)  # web services (Rakuten France, Rakuten.de)
    databases: dict[str, DatabaseConfig] = Field(default_factory=dict)  # the SOL database (docs/sol-database.md)
    smtp: SmtpServer | None = None
    alerts: AlertsConfig | None = None
    language: Literal["en", "de"] = "en"  # of every message an admin reads
    # Values several flows share (Mandant, price list, warehouses): set once here, used by every flow whose
    # mapping has a setting of that name, unless the flow sets its own.
    settings: dict[str, str] = Field(default_factory=dict)
    console: ConsoleConfig = ConsoleConfig()
    flows: dict[str, Any] = Field(default_factory=dict)  # each flow is validated on its own


@dataclass(frozen=True)
class Setting:
    """A setting's value and where it was written: ``flow`` (the flow in gateway.yaml), ``installation``
    (``settings:`` at the top of gateway.yaml) or ``mapping`` (the mapping's default)."""

    value: str
    origin: Literal["flow", "installation", "mapping"]
    where: str  # FILE:LINE

    def describe(self) -> str:
        if self.origin == "flow":
            return _("the flow in gateway.yaml ({where})").format(where=self.where)
        if self.origin == "installation":
            return _("settings of gateway.yaml ({where})").format(where=self.where)
        return _("the mapping's default ({where})").format(where=self.where)


@dataclass(frozen=True)
class Flow:
    """A flow ready to run: its config with paths resolved, and its mapping.

    The mapping is compiled when first used unless the installation was loaded with all its
    mappings (``gateway check``): commands that move nothing (status, journal) do not pay for
    compiling twelve mappings, and a run compiles only those of flows that have an input (it
    checks the others through the notes of ``mapping.check_cache``). ``facts`` holds what the
    installation's checks need of the mapping (its settings and where its outputs go), from the
    compiled mapping or from its note.
    """

    name: str
    config: FlowConfig
    source_folder: Path | None  # the source's folder on this machine, or None (a partner's server, a service)
    settle_seconds: float
    root: Path = Path()
    folders: dict[str, Path | None] = field(default_factory=dict)  # each destination's local folder, or None
    loaded: Mapping | None = field(default=None, repr=False, compare=False)
    shared: dict[str, Setting] = field(default_factory=dict)  # the installation's settings, with where they are
    own: dict[str, Setting] = field(default_factory=dict)  # the flow's own settings in gateway.yaml
    facts: MappingFacts | None = field(default=None, repr=False, compare=False)
    # the versions of the files the compiled mapping was made from (``reload``): a running service
    # compares them to take a mapping the admin corrected
    stamp: tuple[tuple[str, int, int, int], ...] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.loaded is not None and self.stamp is None:
            from .reload import stamp_of

            object.__setattr__(self, "stamp", stamp_of(self.loaded.sources))

    @property
    def mapping(self) -> Mapping:
        """The flow's compiled mapping (``ConfigError`` with every problem when it cannot be compiled)."""
        if self.loaded is None:
            from .mapping.compiler import load_mapping
            from .reload import stamp_of

            path = self.root / self.config.mapping
            started = time.time_ns()
            loaded = load_mapping(path, _shown(path), self.root)
            object.__setattr__(self, "stamp", stamp_of(loaded.sources, since_ns=started))
            object.__setattr__(self, "loaded", loaded)
        assert self.loaded is not None  # noqa: S101 - set just above
        return self.loaded

    def take_mapping(self, mapping: Mapping, stamp: tuple[tuple[str, int, int, int], ...] | None) -> None:
        """Use ``mapping`` from now on (a running service, after the mapping's files changed and passed their check)."""
        from .mapping.check_cache import MappingFacts

        object.__setattr__(self, "loaded", mapping)
        object.__setattr__(self, "stamp", stamp)
        object.__setattr__(self, "facts", MappingFacts.of(mapping))

    @property
    def mapping_facts(self) -> MappingFacts:
        """What the checks need of the mapping: noted when the installation was loaded, else from the mapping."""
        if self.facts is None:
            from .mapping.check_cache import MappingFacts

            object.__setattr__(self, "facts", MappingFacts.of(self.mapping))
        assert self.facts is not None  # noqa: S101 - set just above
        return self.facts

    @property
    def outbox_folder(self) -> Path | None:
        """The local outbox, or None when the outbox is remote (SFTP, e-mail, a service)."""
        return self.folders.get("outbox")

    def folder_of(self, destination: str) -> Path | None:
        """The local folder of a destination (``outbox`` or a named one), or None when it is remote."""
        return self.folders.get(destination)

    def destination_config(self, destination: str) -> KindConfig | None:
        return self.config.outbox if destination == "outbox" else self.config.destinations.get(destination)

    @property
    def settings(self) -> dict[str, str]:
        """The values the mapping sees: the flow's own, else the installation's, else the mapping's default."""
        return {name: s.value for name, s in self.effective_settings().items()}

    def effective_settings(self) -> dict[str, Setting]:
        """Each setting of the mapping with its value and where that value comes from."""
        found: dict[str, Setting] = {}
        for name, (default, where) in self.mapping_facts.settings.items():
            found[name] = self.own.get(name) or self.shared.get(name) or Setting(default, "mapping", where)
        return found


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
    services: dict[str, ServiceConfig] = field(default_factory=dict)  # web services, by name
    databases: dict[str, DatabaseConfig] = field(default_factory=dict)
    smtp: SmtpServer | None = None
    alerts: AlertsConfig | None = None
    record_seconds: float = 30.0
    max_attempts: int = 3
    limits: Limits = field(default_factory=Limits)
    watch: Literal["auto", "native", "polling"] = "auto"
    rescan_seconds: float = 60.0
    settle_seconds: float = 2.0
    kinds: Registry = field(default_factory=builtin_kinds)
    warnings: list[Problem] = field(default_factory=list)  # allowed, but worth a second look (``gateway check``)
    language: Literal["en", "de"] = "en"
    settings: dict[str, Setting] = field(default_factory=dict)  # the installation's shared settings
    console: ConsoleConfig = field(default_factory=ConsoleConfig)  # with the TLS files' paths absolute
    # notes of mappings checked while loading (mapping.check_cache): written when a run starts, so that a
    # refused configuration or command leaves nothing behind
    new_notes: list[tuple[Any, Path, list[Path], MappingFacts]] = field(default_factory=list, repr=False)

    def write_notes(self) -> None:
        """Note the mappings checked while loading (see ``load_installation(noted=True)``)."""
        for notes, mapping_path, sources, facts in self.new_notes:
            notes.store(mapping_path, sources, facts)
        self.new_notes.clear()

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
            known = ", ".join(self.flows) or _("none")
            raise ConfigError(
                [Problem(_shown(self.path), 1, 1,
                         _("no flow named '{name}' (flows: {flows})").format(name=n, flows=known)) for n in unknown]
            )
        return [self.flows[n] for n in names]


def load_installation(path: Path, kinds: Registry | None = None, *, mappings: bool = True,
                      noted: bool = False) -> Installation:
    """Load gateway.yaml and every mapping it names; raise ``ConfigError`` with all problems.

    Each flow is validated on its own, so that one mistake does not hide the others:
    the admin gets the whole list in one ``gateway check``. ``kinds`` are the kinds of
    sources and destinations a flow may name (the built-in ones by default). With
    ``mappings=False`` the mappings are compiled only when a flow first needs one (for
    commands that move nothing: a broken mapping must stop a run before anything moves).
    With ``noted`` (a run), a mapping whose files are unchanged since it last passed its check
    is validated by its note (``mapping.check_cache``) and compiled only when its flow has an
    input; the others are checked (and compiled) now, and noted.
    """
    kinds = kinds or builtin_kinds()
    flow_model = cast(type[FlowConfig], kinds.flow_model(FlowConfig))
    path = path.resolve()
    root = path.parent
    doc = load_yaml(path, _shown(path))
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), _("gateway.yaml must be a group of 'name: value' lines"))])
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
            problems.append(doc.problem(("flows", name), _(
                "flow name '{name}' must be lower-case letters, digits, '-' or '_'").format(name=name)))
            continue
        try:
            configs[name] = validate(flow_model, doc, base=("flows", name))
        except ConfigError as exc:
            problems.extend(exc.problems)
    shared = {k: Setting(v, "installation", f"{doc.path}:{doc.where(('settings', k))[0]}")
              for k, v in (conf.settings if conf else {}).items()}
    notes = None
    if mappings and noted and conf is not None:
        from .mapping.check_cache import CheckCache

        notes = CheckCache((root / conf.state).resolve(), root)
    gateway_yaml = path.read_bytes() if mappings else b""
    noted_now: list[tuple[Any, Path, list[Path], MappingFacts]] = []  # written when the run starts
    to_note: set[Path] = set()
    by_file: dict[Path, tuple[MappingFacts, list[Mapping]]] = {}  # per mapping file: its facts and compiled mapping
    flows: dict[str, Flow] = {}
    for name, fc in configs.items():
        mapping_path = root / fc.mapping
        if not mapping_path.is_file():
            problems.append(doc.problem(("flows", name, "mapping"),
                                        _("the mapping file {file} does not exist").format(file=fc.mapping)))
            continue
        mapping: Mapping | None = None
        facts: MappingFacts | None = None
        if mappings:
            # flows that share a mapping file share its check, its compiled mapping and its note (whose checks
            # then hold every flow's)
            known = by_file.get(mapping_path.resolve())
            if known is not None:
                facts, compiled = known
                fresh = False
            else:
                facts = notes.lookup(mapping_path) if notes is not None else None
                fresh = facts is None
                compiled = []
                if facts is None:
                    from .mapping.check_cache import MappingFacts
                    from .mapping.compiler import load_mapping

                    try:
                        compiled.append(load_mapping(mapping_path, _shown(mapping_path), root))
                    except ConfigError as exc:
                        problems.extend(exc.problems)
                        continue
                    facts = MappingFacts.of(compiled[0])
                by_file[mapping_path.resolve()] = (facts, compiled)
            _check_mapping(doc, name, fc, facts, problems)

            def compile_now(path: Path = mapping_path, done: list[Mapping] = compiled) -> Mapping:
                if not done:
                    from .mapping.compiler import load_mapping

                    done.append(load_mapping(path, _shown(path), root))
                return done[0]

            checked = _check_endpoints_with_mapping(name, fc, compile_now, facts, CheckContext(conf, root), kinds,
                                                    gateway_yaml, problems)
            mapping = compiled[0] if compiled else None
            if (notes is not None and (fresh or checked) and mapping is not None
                    and mapping_path.resolve() not in to_note):
                to_note.add(mapping_path.resolve())
                noted_now.append((notes, mapping_path, mapping.sources, facts))
        _check_endpoints(doc, name, fc, CheckContext(conf, root), kinds, problems)
        settle = getattr(fc.source, "settle_seconds", None)
        flows[name] = Flow(
            name=name,
            config=fc,
            source_folder=kinds.local_folder("source", fc.source, root),
            settle_seconds=settle if settle is not None else default_settle,
            root=root,
            folders={d: kinds.local_folder("destination", spec, root)
                     for d, spec in {"outbox": fc.outbox, **fc.destinations}.items()},
            loaded=mapping,
            facts=facts,
            shared=shared,
            own={k: Setting(v, "flow", f"{doc.path}:{doc.where(('flows', name, 'settings', k))[0]}")
                 for k, v in fc.settings.items()},
        )
    _check_folders(doc, root, configs, kinds, problems)
    if mappings and conf is not None:
        _check_shared_settings(doc, conf, flows, problems)
    if conf is not None and conf.alerts is not None and conf.smtp is None:
        problems.append(doc.problem(("alerts",), _("alerts are sent by e-mail: describe the mail server under 'smtp'")))
    if conf is not None:
        for pname, partner in conf.partners.items():
            if not (root / partner.key_file).is_file():
                problems.append(doc.problem(("partners", pname, "key_file"),
                                            _("the key file {file} does not exist").format(file=partner.key_file)))
        for sname, service in conf.services.items():
            if service.ca_file and not (root / service.ca_file).is_file():
                problems.append(doc.problem(("services", sname, "ca_file"),
                                            _("the CA bundle {file} does not exist").format(file=service.ca_file)))
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
        services=dict(conf.services),
        databases=dict(conf.databases),
        smtp=conf.smtp,
        alerts=conf.alerts,
        record_seconds=conf.record_seconds,
        max_attempts=conf.max_attempts,
        limits=Limits(**conf.limits.model_dump()),
        watch=conf.watch,
        rescan_seconds=conf.rescan_seconds,
        settle_seconds=conf.settle_seconds,
        kinds=kinds,
        warnings=_warnings(doc, conf),
        language=conf.language,
        settings=shared,
        console=conf.console if conf.console.tls is None else conf.console.model_copy(update={"tls": ConsoleTls(
            certificate=str((root / conf.console.tls.certificate).resolve()),
            key=str((root / conf.console.tls.key).resolve()))}),
        new_notes=noted_now,
    )


def _check_shared_settings(doc: YamlDocument, conf: GatewayFile, flows: dict[str, Flow],
                           problems: list[Problem]) -> None:
    """An installation setting that no flow's mapping has is a typo, not a quiet no-op."""
    known = {name for flow in flows.values() for name in flow.mapping_facts.settings}
    for name in conf.settings:
        if name not in known:
            problems.append(doc.problem(("settings", name), _(
                "no flow's mapping has a setting '{name}' (settings: {settings})").format(
                    name=name, settings=", ".join(sorted(known)) or _("none"))))


def disagreements(flows: list[Flow]) -> list[str]:
    """Settings that several flows share but that have different values, each with where the values come from.

    A price list changed for the catalog but not for the price updates is how a shop ends up with two
    prices; ``gateway check`` warns, and the admin decides whether that is meant.
    """
    values: dict[str, dict[str, Setting]] = {}
    for flow in flows:
        for name, setting in flow.effective_settings().items():
            values.setdefault(name, {})[flow.name] = setting
    found = []
    for name, per_flow in sorted(values.items()):
        if len(per_flow) > 1 and len({s.value for s in per_flow.values()}) > 1:
            parts = "; ".join(_("{flow} '{value}' from {origin}").format(flow=flow, value=s.value, origin=s.describe())
                              for flow, s in per_flow.items())
            found.append(_("warning: the flows disagree on the setting '{name}': {values}. If they should agree, set "
                           "it once under 'settings:' at the top of gateway.yaml and remove it from the flows").format(
                               name=name, values=parts))
    return found


def _warnings(doc: YamlDocument, conf: GatewayFile) -> list[Problem]:
    """What is allowed but probably not meant."""
    found: list[Problem] = []
    if conf.smtp is not None and conf.smtp.security == "none" and conf.smtp.user is not None:
        found.append(doc.problem(("smtp", "security"),
                                 _("warning: security: none with a login sends the password in the clear; use "
                                   "starttls or ssl unless the mail server is on this machine")))
    if not is_loopback(conf.console.listen):
        if not conf.console.users:
            found.append(doc.problem(("console", "listen"),
                                     _("warning: the console listens beyond this machine but has no users; it will "
                                       "not start until there are some (gateway console passwd NAME)")))
        elif conf.console.tls is None:
            found.append(doc.problem(("console", "listen"),
                                     _("warning: the console listens beyond this machine without tls; passwords and "
                                       "session cookies would cross the network in the clear")))
    return found


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a host name or IP) is this machine only."""
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_mapping(doc: YamlDocument, name: str, fc: FlowConfig, facts: MappingFacts, problems: list[Problem]) -> None:
    """The flow's settings and destinations against what its mapping has and names."""
    for key in fc.settings:
        if key not in facts.settings:
            known = ", ".join(facts.settings) or _("none")
            problems.append(doc.problem(("flows", name, "settings", key), _(
                "the mapping {file} has no setting '{name}' (settings: {settings})").format(
                    file=fc.mapping, name=key, settings=known)))
    destinations = {"outbox", *fc.destinations}
    for i, (to, *_place) in enumerate(facts.outputs):
        if to not in destinations:
            problems.append(facts.output_problem(
                i, _("flow '{flow}' has no destination '{name}' (destinations: {destinations})").format(
                    flow=name, name=to, destinations=", ".join(sorted(destinations)))))


def _places(fc: FlowConfig) -> list[tuple[tuple[str | int, ...], str, KindConfig]]:
    """Every source and destination a flow names: (where in the flow's entry, role, config)."""
    places: list[tuple[tuple[str | int, ...], str, KindConfig]] = [(("source",), "source", fc.source),
                                                                   (("outbox",), "destination", fc.outbox)]
    places += [(("destinations", d), "destination", spec) for d, spec in fc.destinations.items()]
    return places


def _check_endpoints(doc: YamlDocument, name: str, fc: FlowConfig, ctx: CheckContext, kinds: Registry,
                     problems: list[Problem]) -> None:
    """Each kind's own checks: SFTP partners and the mail server a flow names must be described."""
    for loc, role, spec in _places(fc):
        for where, message in kinds.check(cast(Any, role), spec, ctx):
            problems.append(doc.problem(("flows", name, *loc, *where), message))


def _check_endpoints_with_mapping(name: str, fc: FlowConfig, mapping: Callable[[], Mapping], facts: MappingFacts,
                                  ctx: CheckContext, kinds: Registry, gateway_yaml: bytes,
                                  problems: list[Problem]) -> bool:
    """Kinds that read or write what the mapping describes (a database's queries) check the two together.

    Their findings are noted with the mapping's facts, for this gateway.yaml; ``mapping`` compiles
    the mapping when a check has no note. True when a check was made (the note is to be renewed).
    """
    from .mapping.check_cache import check_key

    made = False
    for loc, role, spec in _places(fc):
        kind = kinds.of_config(cast(Any, role), spec)
        if kind.check_mapping is None:
            continue
        key = check_key(gateway_yaml, name, role, loc, kind.name)
        found = facts.checks.get(key)
        if found is None:
            found = [[p.file, p.line, p.column, p.message]
                     for p in kinds.check_mapping(cast(Any, role), spec, name, mapping(), ctx)]
            facts.checks[key] = found
            made = True
        problems.extend(Problem(str(f), int(line), int(col), str(message)) for f, line, col, message in found)
    return made


def _check_folders(doc: YamlDocument, root: Path, configs: dict[str, FlowConfig], kinds: Registry,
                   problems: list[Problem]) -> None:
    """Two flows sharing an inbox would steal each other's files; an outbox that is an inbox loops."""
    inboxes: dict[Path, str] = {}
    for name, fc in configs.items():
        folder = kinds.local_folder("source", fc.source, root)
        if folder is None:
            continue
        other = inboxes.get(folder)
        if other:
            problems.append(doc.problem(("flows", name, "source", "folder"), _(
                "flow '{flow}' already reads from this folder; give each flow its own").format(flow=other)))
        inboxes[folder] = name
    for name, fc in configs.items():
        folder = kinds.local_folder("destination", fc.outbox, root)
        reader = inboxes.get(folder) if folder is not None else None
        if reader:
            problems.append(doc.problem(("flows", name, "outbox", "folder"), _(
                "this outbox is the inbox of flow '{flow}'; outputs would be read again").format(flow=reader)))


def shown_path(path: Path) -> str:
    """How messages show a file of the installation (relative to the working directory when shorter)."""
    return _shown(path)


def _shown(path: Path) -> str:
    """Paths in messages relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
