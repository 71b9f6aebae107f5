"""Where outputs go. Each kind keeps the contract of :mod:`gateway.destinations.base`.

``folder`` and ``sftp`` upload under a temporary name and rename; ``smtp`` spools and sends;
``memory`` (tests) keeps outputs in a dictionary. Kinds are registered in :mod:`gateway.kinds`.
"""

from __future__ import annotations

from .base import CallLog, Delivered, Delivery, Destination, Status

__all__ = ["CallLog", "Delivered", "Delivery", "Destination", "Status"]
