"""The Rakuten web services: one HTTP layer for Rakuten France and the Rakuten.de merchant API.

The pieces, each in a module named after what it does:

* :mod:`.config` — the ``services:`` section of gateway.yaml (which API, which environment variables);
* :mod:`.client` — one paced, bounded, TLS-verified httpx client per service, and the error tree;
* :mod:`.answers` — XML answers parsed as foreign input, error answers read;
* :mod:`.rakuten_fr`, :mod:`.rakuten_de` — the calls of each API with their parameters and answers;
* :mod:`.calls` — what a destination does with each row of an output (accept a unit, confirm a
  shipment, send a stock value, upload an offer file), and how a lost answer is resolved.

The ``http`` kinds (:mod:`gateway.sources.http`, :mod:`gateway.destinations.http`) use them; a
service's client is shared by every part of the engine that calls it, so that its pace holds for
all of them together. Nothing here is imported until a flow with an ``http`` part runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..i18n import _

if TYPE_CHECKING:
    from ..kinds import CheckContext, Parts, Problem
    from .client import ServiceClient
    from .rakuten_de import RakutenDe
    from .rakuten_fr import RakutenFrance

#: How often a service that keeps answering is written down as "last reached" (seconds).
HEALTH_EVERY = 30.0


def place_of(service: str) -> str:
    """The service's name in the journal's health table and in ``gateway status``."""
    return f"web service {service}"


def client_for(parts: Parts, service: str) -> ServiceClient:
    """The engine's one client for ``service`` (made on first use, shared by sources and destinations)."""

    def make() -> ServiceClient:
        from .client import ServiceClient

        config = parts.installation.services[service]
        return ServiceClient(service, config, clock=parts.clock, root=parts.installation.root,
                             health=_health_recorder(parts, service))

    client: ServiceClient = parts.share(f"http:{service}", make)
    return client


def api_for(client: ServiceClient) -> RakutenFrance | RakutenDe:
    from .rakuten_de import RakutenDe
    from .rakuten_fr import RakutenFrance

    return RakutenFrance(client) if client.config.api == "rakuten-fr" else RakutenDe(client)


def _health_recorder(parts: Parts, service: str) -> Callable[[bool, str | None], None]:
    """Writes the service's health into the journal: every change at once, "still works" now and then.

    Parallel calls report from several threads; the journal is written by one at a time.
    """
    journal = parts.journal
    clock = parts.clock
    place = place_of(service)
    lock = threading.Lock()
    state: dict[str, float | bool | None] = {"ok": None, "at": -HEALTH_EVERY}

    def record(ok: bool, words: str | None) -> None:
        if journal is None:
            return
        with lock:
            now = clock.monotonic()
            if ok:
                if state["ok"] is True and now - float(state["at"] or 0) < HEALTH_EVERY:
                    return
                journal.place_ok(place, "")
            else:
                journal.place_failed(place, "", words or "failed")
            state["ok"], state["at"] = ok, now

    return record


def variables_of(service: str, installation: object) -> list[str]:
    """The environment variables the flow's ``http:`` service needs (``Kind.needs`` of both http kinds)."""
    config = getattr(installation, "services", {}).get(service)
    return config.variables() if config is not None else []


def check_service(service: str, ctx: CheckContext, apis: tuple[str, ...], call: str) -> list[Problem]:
    """A flow's ``http:`` must name a service under ``services`` whose API has ``call``."""
    services = ctx.gateway.services if ctx.gateway else {}
    if service not in services:
        known = ", ".join(services) or _("none yet")
        return [(("http",), _("no web service named '{service}' under 'services' (services: {known})").format(
            service=service, known=known))]
    api = services[service].api
    if api not in apis:
        return [(("call",), _("'{call}' is a call of {apis}, and the service '{service}' is {api}").format(
            call=call, apis=_(" or ").join(apis), service=service, api=api))]
    return []
