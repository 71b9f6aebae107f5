"""Every kind of source and destination, registered once: its name, its config model and its factory.

A kind is what a flow's ``source:``, ``outbox:`` or ``destinations:`` entry in gateway.yaml
names: ``{folder: inbox/x}``, ``{sftp: shop, folder: /out}``, ``{smtp: yes}``. The registry is
the one place that knows them. From it come:

* config validation: the union of config models a ``source:`` may be, chosen by the key that
  names the kind (``sftp``, ``smtp``, …; an entry naming none is a ``folder``);
* ``gateway check``: each kind's own checks (a partner that is not described, a mail server
  that is missing);
* construction: ``build`` turns a validated config into a working source or destination;
* the README's table of kinds (:meth:`Registry.table`, checked by a test).

Adding a kind is one module that defines its config model (a :class:`KindConfig`), its class
and a module-level ``KIND``, plus one line in :data:`BUILTIN`. The module must import heavy
libraries (paramiko, httpx, SQLAlchemy) inside functions, so that commands that do not use
the kind do not pay for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag

from .i18n import N_

if TYPE_CHECKING:
    from .clock import Clock
    from .config import Flow, GatewayFile, Installation
    from .destinations.base import Destination
    from .errors import Problem as LocatedProblem
    from .journal import Journal
    from .mapping.compiler import Mapping
    from .sources.base import Source

Role = Literal["source", "destination"]

#: What an entry naming no known kind is told (translated where it is shown, :mod:`gateway.validation`).
KIND_CHOICE = {
    "source": N_("a source names its kind with one of the keys {names}"),
    "destination": N_("a destination names its kind with one of the keys {names}"),
}

#: The modules of the built-in kinds, each with a module-level ``KIND``.
BUILTIN = (
    "gateway.sources.folder",
    "gateway.sources.sftp",
    "gateway.destinations.folder",
    "gateway.destinations.sftp",
    "gateway.destinations.email",
    "gateway.sources.sql",
    "gateway.destinations.sql",
    "gateway.sources.http",
    "gateway.destinations.http",
)


class KindConfig(BaseModel):
    """Base of every kind's config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: ClassVar[str] = ""


@dataclass
class Parts:
    """What a factory may use to build a source or destination."""

    installation: Installation
    flow: Flow
    place: str  # "source", "outbox" or the name of a destination
    clock: Clock
    journal: Journal | None = None
    shared: dict[str, Any] = field(default_factory=dict)  # connections shared by a flow's parts (per partner)

    def share(self, key: str, make: Callable[[], Any]) -> Any:
        """One object per ``key`` for the whole engine (one SFTP connection per partner)."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


@dataclass(frozen=True)
class CheckContext:
    """What a kind's check may look at: the whole gateway.yaml and the installation's folder."""

    gateway: GatewayFile | None
    root: Path


Problem = tuple[tuple[str | int, ...], str]  # (where, below the entry; message)


@dataclass(frozen=True)
class Kind:
    """One kind of source or destination."""

    name: str  # also the key in gateway.yaml that names the kind (except for the default kind)
    role: Role
    config: type[KindConfig]
    build: Callable[[Any, Parts], Any]  # (config, parts) -> Source | Destination
    summary: str  # one line for the README's table
    example: str  # a gateway.yaml entry, for the README's table
    check: Callable[[Any, CheckContext], list[Problem]] | None = None
    local_folder: Callable[[Any, Path], Path | None] | None = None  # the folder on this machine, if any
    # The environment variables a config needs (a web service's URL and token, a database URL): a flow
    # whose variables are not set does not run, and ``gateway status`` names them.
    needs: Callable[[Any, Installation], list[str]] | None = None
    # A source that calls a web service is polled this often (minutes) when its flow has no schedule.
    poll_minutes: float | None = None
    default: bool = False  # the kind of an entry that names none (``folder``)
    # Checks of the config together with the flow's mapping (a database's queries against the columns the
    # mapping uses): (config, flow name, mapping, context) -> problems located in either file.
    check_mapping: Callable[[Any, str, Mapping, CheckContext], list[LocatedProblem]] | None = None


def kind_tag(name: str) -> str:
    return f"tag:{name}"


class Registry:
    """The kinds known to one installation: the built-in ones, plus any a test or plug-in adds."""

    def __init__(self, kinds: list[Kind] | None = None) -> None:
        self._kinds: dict[tuple[Role, str], Kind] = {}
        self._models: dict[str, type[BaseModel]] = {}
        for kind in kinds or []:
            self.add(kind)

    @classmethod
    def builtin(cls) -> Registry:
        registry = cls()
        for module in BUILTIN:
            registry.add(importlib.import_module(module).KIND)
        return registry

    def add(self, kind: Kind) -> Registry:
        key = (kind.role, kind.name)
        if key in self._kinds:
            raise ValueError(f"a {kind.role} kind '{kind.name}' is registered already")
        if kind.default and any(k.default for k in self.kinds(kind.role)):
            raise ValueError(f"there is a default {kind.role} kind already")
        self._kinds[key] = kind
        self._models.clear()
        return self

    def plus(self, *kinds: Kind) -> Registry:
        """A copy with more kinds (tests add the memory destination this way)."""
        return Registry([*self._kinds.values(), *kinds])

    def kinds(self, role: Role) -> list[Kind]:
        return [k for (r, _), k in self._kinds.items() if r == role]

    def get(self, role: Role, name: str) -> Kind:
        return self._kinds[(role, name)]

    def kind_of(self, role: Role, value: Any) -> Kind | None:
        """The kind a gateway.yaml entry names: the first kind whose name is one of its keys, else the default.

        An entry with a key that neither names a kind nor belongs to the default kind (``memory:``
        where no memory kind is registered) is no kind: ``None``, and the message lists the kinds.
        One with only the default's other keys (``marker:`` without ``folder:``) is the default kind,
        so that the message says what it lacks.
        """
        default = None
        for kind in self.kinds(role):
            if kind.default:
                default = kind
            elif isinstance(value, dict) and kind.name in value:
                return kind
        if isinstance(value, dict) and default is not None:
            fields = {f.alias or n for n, f in default.config.model_fields.items()}
            if default.name not in value and not set(map(str, value)) <= fields:
                return None
        return default

    def of_config(self, role: Role, config: KindConfig) -> Kind:
        return self.get(role, type(config).kind)

    def union(self, role: Role) -> Any:
        """The pydantic type of a ``source:`` (or destination) entry: one of the kinds' models."""
        members = tuple(Annotated[k.config, Tag(kind_tag(k.name))] for k in self.kinds(role))
        if not members:
            raise ValueError(f"no {role} kinds are registered")

        def discriminate(value: Any) -> str | None:
            kind = self.kind_of(role, value)
            return kind_tag(kind.name) if kind else None

        names = ", ".join(f"'{k.name}'" for k in self.kinds(role))
        choice: Any = Union[members]  # noqa: UP007 - built at run time from the registered kinds
        return Annotated[choice, Discriminator(
            discriminate, custom_error_type="unknown_kind",
            custom_error_message=KIND_CHOICE[role], custom_error_context={"role": role, "names": names},
        )]

    def flow_model(self, base: type[BaseModel]) -> type[BaseModel]:
        """``base`` (the flow's settings) with ``source``, ``outbox`` and ``destinations`` typed by these kinds."""
        name = base.__name__
        if name not in self._models:
            from pydantic import Field, create_model

            sources, destinations = self.union("source"), self.union("destination")
            self._models[name] = create_model(
                name,
                __base__=base,
                source=(sources, ...),
                outbox=(destinations, ...),
                destinations=(dict[str, destinations], Field(default_factory=dict)),  # type: ignore[valid-type]
            )
        return self._models[name]

    def build_source(self, config: KindConfig, parts: Parts) -> Source:
        source: Source = self.of_config("source", config).build(config, parts)
        return source

    def build_destination(self, config: KindConfig, parts: Parts) -> Destination:
        destination: Destination = self.of_config("destination", config).build(config, parts)
        return destination

    def check(self, role: Role, config: KindConfig, ctx: CheckContext) -> list[Problem]:
        kind = self.of_config(role, config)
        return kind.check(config, ctx) if kind.check else []

    def check_mapping(self, role: Role, config: KindConfig, flow: str, mapping: Mapping,
                      ctx: CheckContext) -> list[LocatedProblem]:
        kind = self.of_config(role, config)
        return kind.check_mapping(config, flow, mapping, ctx) if kind.check_mapping else []

    def local_folder(self, role: Role, config: KindConfig, root: Path) -> Path | None:
        kind = self.of_config(role, config)
        return kind.local_folder(config, root) if kind.local_folder else None

    def poll_minutes(self, flow: Flow) -> float | None:
        """How often the flow's source is polled when the flow has no schedule of its own (web services)."""
        return self.of_config("source", flow.config.source).poll_minutes

    def missing_env(self, flow: Flow, installation: Installation) -> list[str]:
        """The environment variables ``flow``'s source and destinations need that are not set (or empty)."""
        import os

        places: list[tuple[Role, KindConfig]] = [("source", flow.config.source), ("destination", flow.config.outbox)]
        places += [("destination", spec) for spec in flow.config.destinations.values()]
        missing: list[str] = []
        for role, config in places:
            kind = self.of_config(role, config)
            for name in kind.needs(config, installation) if kind.needs else []:
                if not os.environ.get(name) and name not in missing:
                    missing.append(name)
        return missing

    def table(self) -> str:
        """The README's table of kinds, in Markdown."""
        lines = ["| kind | used as | in gateway.yaml | what it is |", "|---|---|---|---|"]
        roles: tuple[Role, ...] = ("source", "destination")
        for role in roles:
            for kind in self.kinds(role):
                lines.append(f"| `{kind.name}` | {role} | `{kind.example}` | {kind.summary} |")
        return "\n".join(lines)


_BUILTIN: Registry | None = None


def builtin_kinds() -> Registry:
    """The registry of the built-in kinds (made once per process)."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = Registry.builtin()
    return _BUILTIN
