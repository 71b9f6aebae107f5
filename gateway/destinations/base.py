"""The interface every destination implements (local folder, SFTP, e-mail, memory)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path


def temp_name(name: str) -> str:
    """The name an output has while it is not complete: hidden and ``.part``, ignored by importers."""
    return f".{name}.part"


class Destination(ABC):
    """A place outputs are published to.

    The steps must be idempotent: after a crash the engine repeats the step the
    journal does not show as finished.
    """

    @abstractmethod
    def describe(self) -> str:
        """Where this is, in words for the journal and messages."""

    @abstractmethod
    def upload(self, staged: Path, name: str) -> None:
        """Put the complete staged file under the temporary name of ``name``, replacing any old one."""

    @abstractmethod
    def has_upload(self, name: str) -> bool:
        """Whether the temporary file of ``name`` is there (uploaded, not yet published)."""

    @abstractmethod
    def publish(self, name: str) -> str:
        """Rename the temporary file to ``name``; return the delivered path or URL."""

    @abstractmethod
    def location(self, name: str) -> str:
        """The path or URL ``name`` has once published."""

    @abstractmethod
    def write_marker(self, name: str, suffix: str) -> None:
        """Write the empty marker file ``name + suffix`` that tells an importer ``name`` is complete."""

    def close(self) -> None:  # noqa: B027 - most destinations hold nothing open
        """Release connections."""
