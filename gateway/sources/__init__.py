"""Where inputs come from. A source lists what is ready and claims it into the work folder."""

from __future__ import annotations

from .local import Candidate, FolderSource, is_temporary_name

__all__ = ["Candidate", "FolderSource", "is_temporary_name"]
