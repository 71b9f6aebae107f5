"""The names the rest of the gateway imports for mappings, in one place.

Compile time and run time are separate modules: :mod:`.compile_mapping` loads and checks a
mapping file, :mod:`.compile_python` and :mod:`.compile_rows` write its Python, and
:mod:`.runtime` holds what runs for every record. This module only gathers their public
names under the one import path (``gateway.mapping.compiler``) that commands, readers,
writers and tests use.
"""

from __future__ import annotations

from .compile_mapping import compile_mapping, load_mapping
from .runtime import (
    MAX_NAME_BYTES,
    SEP,
    Block,
    CompiledColumn,
    CompiledEmail,
    CompiledFiles,
    CompiledOutput,
    CompiledRow,
    CompiledTemplate,
    DefinitionFailed,
    Mapping,
    PassedOn,
    as_mapping_error,
)

_as_mapping_error = as_mapping_error  # the name writers/template.py has always imported

__all__ = [
    "MAX_NAME_BYTES",
    "SEP",
    "Block",
    "CompiledColumn",
    "CompiledEmail",
    "CompiledFiles",
    "CompiledOutput",
    "CompiledRow",
    "CompiledTemplate",
    "DefinitionFailed",
    "Mapping",
    "PassedOn",
    "as_mapping_error",
    "compile_mapping",
    "load_mapping",
]
