"""Readers turn an input file into a stream of records, never the whole file in memory.

Start with ``registry.py``: the contract every reader keeps (``Reader``: ``read(source,
shown_as, spec, room)``), the room it may use (``ReadRoom``), and the one list of input
formats with the module that reads each. The modules here are the readers themselves
(``xml``, ``csv``, ``json`` with JSON Lines, ``fixed``, and the ``batch`` package for
several CSV tables delivered together), and ``grouping`` for ``group_by``.
"""

from __future__ import annotations
