"""Gateway: an exchange gateway between Sage Office Line and Rakuten.

The command line (``gateway.cli``) is a thin layer; everything here is usable as a library::

    from gateway import Engine, load_installation

    inst = load_installation(Path("gateway.yaml"))
    summary = Engine(inst).run_once(inst.select([]))

Names are imported when first used, so that ``import gateway`` (and every command that does
not convert anything) does not pay for lxml, Jinja and paramiko.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Installation, load_installation
    from .engine import Engine
    from .errors import ConfigError, DeliveryError, GatewayError, InputError, MappingError, Problem, ReadError
    from .journal import Journal, open_journal
    from .summary import RunSummary

_WHERE = {
    "ConfigError": "errors",
    "DeliveryError": "errors",
    "Engine": "engine",
    "GatewayError": "errors",
    "InputError": "errors",
    "Installation": "config",
    "Journal": "journal",
    "MappingError": "errors",
    "Problem": "errors",
    "ReadError": "errors",
    "RunSummary": "summary",
    "load_installation": "config",
    "open_journal": "journal",
}

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
    "open_journal",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
