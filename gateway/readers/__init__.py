"""Readers turn an input file into a stream of records, never the whole file in memory."""

from __future__ import annotations
