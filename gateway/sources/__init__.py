"""Where inputs come from. Each kind keeps the contract of :mod:`gateway.sources.base`.

``folder`` claims files from a local drop folder by renaming them into the work folder;
``sftp`` downloads from a partner's server and archives there once the journal is done.
Kinds are registered in :mod:`gateway.kinds`.
"""

from __future__ import annotations

from .base import Candidate, Source

__all__ = ["Candidate", "Source"]
