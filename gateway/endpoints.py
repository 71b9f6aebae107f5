"""The flows' sources and destinations, built from the registry of kinds and kept between passes.

Built on first use, not when the engine starts: a ``run --once rakuten-orders`` never
connects to the SFTP partner of another flow. Kept afterwards: an SFTP source remembers what
its scans saw (that is how a remote file settles), and connections are reused.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .clock import Clock
from .config import Flow, Installation
from .destinations.base import Destination
from .errors import DeliveryError, GatewayError
from .i18n import _
from .journal import Journal
from .kinds import Parts, Registry
from .sources.base import Source


class Endpoints:
    def __init__(self, inst: Installation, kinds: Registry, clock: Clock, journal: Journal) -> None:
        self.inst = inst
        self.kinds = kinds
        self.clock = clock
        self.journal = journal
        self._sources: dict[str, Source] = {}
        self._destinations: dict[tuple[str, str], Destination] = {}
        self._shared: dict[str, Any] = {}  # connections shared by several parts (one per SFTP partner)

    def _parts(self, flow: Flow, place: str) -> Parts:
        return Parts(self.inst, flow, place, self.clock, self.journal, self._shared)

    def source(self, flow: Flow) -> Source:
        if flow.name not in self._sources:
            self._sources[flow.name] = self.kinds.build_source(flow.config.source, self._parts(flow, "source"))
        return self._sources[flow.name]

    def destination(self, flow: Flow, name: str) -> Destination:
        key = (flow.name, name)
        if key not in self._destinations:
            spec = flow.destination_config(name)
            if spec is None:
                raise DeliveryError(_("flow {flow} has no destination '{name}'").format(flow=flow.name, name=name))
            self._destinations[key] = self.kinds.build_destination(spec, self._parts(flow, name))
        return self._destinations[key]

    def marker_of(self, flow: Flow, name: str) -> str | None:
        """The marker file ending the flow wants after each output at ``name`` (``.done``), if any."""
        marker = getattr(flow.destination_config(name), "marker", None)
        return str(marker) if marker else None

    def set_source(self, flow: str, source: Source) -> None:
        self._sources[flow] = source

    def set_destination(self, flow: str, name: str, destination: Destination) -> None:
        """Replace a destination (tests use a ``MemoryDestination``)."""
        self._destinations[(flow, name)] = destination

    def close(self) -> None:
        parts: list[Any] = [*self._destinations.values(), *self._sources.values(), *self._shared.values()]
        for part in parts:
            with contextlib.suppress(GatewayError, OSError):
                part.close()
        self._destinations.clear()
        self._sources.clear()
        self._shared.clear()
