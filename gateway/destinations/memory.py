"""A destination in memory, for unit tests of the engine."""

from __future__ import annotations

from pathlib import Path

from ..errors import DeliveryError
from .base import Destination


class MemoryDestination(Destination):
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.fail_next: str | None = None  # "upload" or "publish": the next such call fails once

    def describe(self) -> str:
        return f"memory {self.name}"

    def _maybe_fail(self, step: str) -> None:
        if self.fail_next == step:
            self.fail_next = None
            raise DeliveryError(f"{self.name} refused the {step}")

    def upload(self, staged: Path, name: str) -> None:
        self._maybe_fail("upload")
        self.uploads[name] = staged.read_bytes()

    def has_upload(self, name: str) -> bool:
        return name in self.uploads

    def publish(self, name: str) -> str:
        self._maybe_fail("publish")
        if name in self.files:
            raise DeliveryError(f"{name} already exists")
        self.files[name] = self.uploads.pop(name)
        return self.location(name)

    def location(self, name: str) -> str:
        return f"memory://{self.name}/{name}"

    def write_marker(self, name: str, suffix: str) -> None:
        self.files[name + suffix] = b""
