"""Writers turn rendered rows into bytes in the output's format and encoding."""

from __future__ import annotations
