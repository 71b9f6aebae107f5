"""A running service takes a corrected mapping without a restart.

The operator's everyday fix goes: an input is quarantined because of the mapping, the admin
corrects the mapping (or one of its lookup tables or templates) and presses Retry. The service
compiled the mapping when it first needed it; without this module the retried input would meet
the old mapping again and be quarantined again, and only a restart would help.

So before a flow's inputs are recovered or taken, the service asks ``MappingReloader.refresh``
whether a file the flow's mapping was made from has changed (its size, time of change or inode;
``stamp_of``). If so, the whole installation is checked again, exactly as a start would check it,
so that a mistake in the change cannot slip in:

- without problems, the flow's mapping is replaced by the new one, and the log says so;
- with problems, the mapping the flow had stays in use, the problems are logged once with their
  file and line, and nothing else changes until the files change again.

gateway.yaml itself is not taken while running (its sources, watches and schedules would have to
be built anew): when it changed as well, the mapping is not taken either, since it was checked
against another gateway.yaml, and the log asks for a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .i18n import _

if TYPE_CHECKING:
    from .config import Flow, Installation

log = logging.getLogger("gateway")

Stamp = tuple[tuple[str, int, int, int], ...]


def stamp_of(paths: Iterable[Path], since_ns: int | None = None) -> Stamp:
    """What identifies the files' versions: size, time of change and inode of each (a missing one counts too).

    With ``since_ns``, a file changed after that moment (while the mapping was being compiled from
    it) gives an empty stamp, which matches no other, so that the mapping is looked at again.
    """
    stamp = []
    for path in dict.fromkeys(paths):
        try:
            info = os.stat(path)
        except OSError:
            stamp.append((str(path), -1, -1, -1))
            continue
        if since_ns is not None and info.st_mtime_ns >= since_ns:
            return ()
        stamp.append((str(path), info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(stamp)


class MappingReloader:
    """Replaces a flow's compiled mapping after its files changed, once the new version passes its check."""

    def __init__(self, inst: Installation) -> None:
        self.inst = inst
        self._refused: dict[str, Stamp] = {}  # flow → the files' stamp whose check failed: not tried again
        self._config = stamp_of([inst.path])

    def refresh(self, flow: Flow) -> bool:
        """Take the flow's changed mapping if it passes its check; whether the flow has a mapping it can use.

        A flow whose mapping was not compiled yet (a run checks unchanged mappings by their notes
        and compiles one when its flow first has an input) is compiled now; if its files were
        broken since the service started, the flow's inputs wait (``False``) instead of being
        converted with a mapping that cannot work, and the problems are logged once.
        """
        if flow.loaded is None:
            return self._first(flow)
        mapping = flow.loaded
        current = stamp_of(mapping.sources)
        if current == flow.stamp or current == self._refused.get(flow.name):
            return True
        from .config import load_installation

        if stamp_of([self.inst.path]) != self._config:
            self._refused[flow.name] = current
            log.warning("%s", _("{flow}: its mapping changed, and so did gateway.yaml, which a running service does "
                                "not take: restart the service (gateway run) to use both; until then the flow keeps "
                                "the mapping it had").format(flow=flow.name))
            return True
        try:
            fresh = load_installation(self.inst.path, self.inst.kinds, noted=True).flows[flow.name]
            new = fresh.mapping
        except ConfigError as exc:
            self._refused[flow.name] = current
            log.error("%s", _("{flow}: the changed mapping is not taken, because of these problems (the flow keeps "
                              "the mapping it had; correct them and the service looks again):\n{problems}").format(
                                  flow=flow.name, problems="\n".join(str(p) for p in exc.problems)))
            return True
        flow.take_mapping(new, fresh.stamp)  # stamped when compiled, by load_installation or by .mapping
        self._refused.pop(flow.name, None)
        log.info("%s", _("{flow}: the changed mapping {mapping} is in use from now on").format(
            flow=flow.name, mapping=flow.config.mapping))
        return True

    def _first(self, flow: Flow) -> bool:
        path = flow.root / flow.config.mapping
        current = stamp_of([path])
        if self._refused.get(flow.name) == current:
            return False
        try:
            flow.mapping  # noqa: B018 - compiled here, where a problem can hold the flow back
        except ConfigError as exc:
            self._refused[flow.name] = current
            log.error("%s", _("{flow}: its mapping cannot be used, because of these problems; its inputs wait until "
                              "they are corrected:\n{problems}").format(
                                  flow=flow.name, problems="\n".join(str(p) for p in exc.problems)))
            return False
        self._refused.pop(flow.name, None)
        return True
