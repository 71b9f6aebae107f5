"""Records from a *batch*: several CSV tables exported together, as a ZIP archive or a folder.

A Sage Office Line catalog export is not one file but a set of tables (artikel.csv,
varianten.csv, lager.csv, preise.csv, ...), delivered as ``katalog_*.zip`` or as a folder
that is complete when ``export.done`` appears in it. A mapping sees one record per row of
the *primary* table (the articles), and reaches the rows of the other tables that belong
to it as fields: ``a.varianten``, ``a.lager``, and further on ``v.lager`` for a variant or
``component.lager`` for a component of a bill of materials.

The modules, in the order a batch passes through them:

- ``archive``: the batch's members, checked before anything is read (names, counts,
  sizes, ZIP bombs, links and special files in folders); unpacking with the bytes
  counted; a folder's hash; passing a member on as an output file;
- ``plan``: the tables, relations and grouping the mapping asks for, checked once;
- ``store``: the related tables in a throw-away SQLite database, and ``BatchRecord``,
  whose relations are looked up there when a template first touches them;
- ``records``: the reader itself, ``read`` (the contract of ``readers/registry.py``).
"""

from __future__ import annotations

from .archive import BatchLimits, GiB, KiB, MiB, batch_files, copy_batch_file, hash_batch
from .plan import Relation, TableSpec
from .records import read, read_batch_records
from .store import BatchDatabase, BatchRecord

__all__ = [
    "BatchDatabase",
    "BatchLimits",
    "BatchRecord",
    "GiB",
    "KiB",
    "MiB",
    "Relation",
    "TableSpec",
    "batch_files",
    "copy_batch_file",
    "hash_batch",
    "read",
    "read_batch_records",
]
