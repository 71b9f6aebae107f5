"""Where outputs go. Every destination publishes in two steps, upload then publish.

``upload`` puts the complete output under a temporary name that importers ignore;
``publish`` renames it to its final name in one atomic step. The engine records in the
journal between the two, which is what lets it tell after a crash whether an output
was already published, even when an importer has taken it away since.
"""

from __future__ import annotations

from .base import Destination
from .local import FolderDestination
from .memory import MemoryDestination

__all__ = ["Destination", "FolderDestination", "MemoryDestination"]
