"""Gateway: a file-based exchange gateway between Sage Office Line and Rakuten.

The command line (``gateway.cli``) is a thin layer; everything here is usable as a library::

    from gateway import Engine, load_installation

    inst = load_installation(Path("gateway.yaml"))
    summary = Engine(inst).run_once(inst.select([]))
"""

from __future__ import annotations

from .config import Installation, load_installation
from .engine import Engine, RunSummary
from .errors import ConfigError, DeliveryError, GatewayError, InputError, MappingError, Problem, ReadError
from .journal import Journal

__all__ = [
    "ConfigError",
    "DeliveryError",
    "Engine",
    "GatewayError",
    "InputError",
    "Installation",
    "Journal",
    "MappingError",
    "Problem",
    "ReadError",
    "RunSummary",
    "load_installation",
]
