"""A destination in memory (the ``memory`` kind): the smallest complete kind, for tests and as an example.

It shows what a new kind of destination consists of, and nothing else: a config model, a
class that keeps the contract of :mod:`gateway.destinations.base`, a factory, and ``KIND``.
Deliveries are kept in a dictionary per name for the life of the process, so a test can look
at what arrived; it is not in the built-in registry (an installation could lose outputs with
it), and tests add it with ``builtin_kinds().plus(memory.KIND)``.

Faults are injected by the test: ``down`` makes every step fail as an unreachable server
would; ``fail_next`` (``"prepare"`` or ``"deliver"``) makes the next such step fail before it
does anything; ``lose_answer`` makes the next delivery arrive but fail as if the answer was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DeliveryError
from ..kinds import Kind, KindConfig, Parts
from .base import CallLog, Delivered, Delivery, Destination, Status


@dataclass
class Store:
    """What a memory destination holds: prepared and delivered outputs by key, and how often each arrived."""

    prepared: dict[str, bytes] = field(default_factory=dict)
    delivered: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # key → (name, content)
    arrivals: dict[str, int] = field(default_factory=dict)
    down: bool = False
    fail_next: str | None = None
    lose_answer: bool = False

    def files(self) -> dict[str, bytes]:
        return dict(self.delivered.values())


STORES: dict[str, Store] = {}


def store(name: str) -> Store:
    """The store of the memory destination ``name`` (made on first use)."""
    return STORES.setdefault(name, Store())


class MemoryDestinationConfig(KindConfig):
    """Outputs kept in this process's memory (tests only)."""

    kind = "memory"

    memory: str  # the store's name


class MemoryDestination(Destination):
    kind = "memory"

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.store = store(name)

    def describe(self) -> str:
        return f"memory {self.name}"

    def location(self, item: Delivery) -> str:
        return f"memory://{self.name}/{item.name}"

    def _reachable(self, step: str = "") -> None:
        if self.store.down:
            raise DeliveryError(f"{self.describe()} cannot be reached (it is down)")
        if step and self.store.fail_next == step:
            self.store.fail_next = None
            raise DeliveryError(f"{self.describe()} refused the {step}")

    def prepare(self, item: Delivery) -> None:
        self._reachable("prepare")
        self.store.prepared[item.key] = item.staged.read_bytes()

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        self._reachable("deliver")
        if item.key not in self.store.delivered:
            data = self.store.prepared.pop(item.key, None)
            if data is None:
                data = item.staged.read_bytes()
            self.store.delivered[item.key] = (item.name, data)
            self.store.arrivals[item.key] = self.store.arrivals.get(item.key, 0) + 1
            if self.store.lose_answer:
                self.store.lose_answer = False
                raise DeliveryError(f"{self.describe()} did not answer (the delivery arrived all the same)")
        return self.location(item)

    def status(self, item: Delivery, calls: CallLog) -> Status:
        self._reachable()
        if item.key in self.store.delivered:
            return Status(Delivered.YES, self.location(item))
        return Status(Delivered.NO)

    def write_marker(self, item: Delivery, suffix: str) -> None:
        self.store.delivered[item.key + suffix] = (item.name + suffix, b"")


def _build(config: MemoryDestinationConfig, parts: Parts) -> MemoryDestination:
    return MemoryDestination(config.memory)


KIND = Kind(
    name="memory",
    role="destination",
    config=MemoryDestinationConfig,
    build=_build,
    summary="outputs kept in the process's memory; for tests, not in the built-in registry",
    example="{memory: test}",
)
