"""The mapping language: YAML that says how each output field is filled from an input record."""

from __future__ import annotations
