"""Named points where a test can make the process die as if the power went out.

The guarantees are about crashes at *any* point; a test cannot hit a window of a few
microseconds by timing a kill. ``GATEWAY_CRASH_AT=point[:n]`` makes the process kill
itself with SIGKILL the n-th time it passes ``point`` (first time by default). Unset,
this costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get("GATEWAY_CRASH_AT")
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    return name, int(nth or 1)


def crashpoint(name: str) -> None:
    target = _target()
    if target is None or target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
