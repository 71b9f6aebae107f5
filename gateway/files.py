"""File handling every part of the gateway shares: durable renames, locks, and names made safe.

Durability is the reason this module exists. A rename or a new file is on disk only once the
folder holding it was flushed (``fsync_dir``); an output published without that could vanish
in a power cut after the journal already said "delivered". Names are the other reason: a
partner's file name is foreign input, so it is shortened, cleaned and escaped here before it
becomes part of a path or a log line.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

#: Endings producers use while still writing, and our own outputs before they are renamed.
TEMPORARY_SUFFIXES = (".part", ".tmp", ".temp", ".partial", ".crdownload", ".filepart", "~")


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new name in ``folder`` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move(src: Path, dst: Path) -> None:
    """A durable move within the installation (same file system, so a rename)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)
    fsync_dir(src.parent)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``path`` completely or not at all (a reader never sees half a reason file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name("." + path.name + ".part")
    with open(temp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


def try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock, or ``None`` when the file is gone or
    another process holds it.

    The lock dies with its process, which is what makes a crashed owner's files free again;
    the caller closes the descriptor to release it.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_temporary_name(name: str) -> bool:
    """Names producers use while still writing (and our own outputs before they are renamed)."""
    lower = name.lower()
    return name.startswith(".") or name.startswith("~$") or lower.endswith(TEMPORARY_SUFFIXES)


def shorten(name: str, limit: int) -> str:
    """``name`` cut in the middle to at most ``limit`` bytes of UTF-8, keeping a short extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    head, tail = name, ""
    if "." in name[-12:]:
        head, dot, ext = name.rpartition(".")
        tail = dot + ext
    while head and len((head + "…" + tail).encode("utf-8")) > limit:
        head = head[:-1]
    return head + "…" + tail


def work_name(name: str, limit: int = 180) -> str:
    """The partner's file name as the tail of a work file name, short enough for any file system.

    The journal keeps the full name; a name over ``limit`` bytes is shortened in the middle.
    """
    return shorten(name, limit)


def new_work_path(work_dir: Path, name: str, tag: str = "") -> Path:
    """A fresh, unique path in ``work_dir`` for an input called ``name`` (``<token>--<name>``)."""
    import secrets

    token = time.strftime("%Y%m%dT%H%M%S") + "-" + (tag or secrets.token_hex(4))
    return work_dir / f"{token}--{work_name(name)}"


def original_name(work_path: Path) -> str:
    """The name the file had in the inbox (work files are ``<token>--<name>``)."""
    _, sep, name = work_path.name.partition("--")
    return name if sep else work_path.name


def safe_stem(name: str, limit: int = 100) -> str:
    """A partner file name's stem made fit for output file names: letters, digits, spaces, ``.``, ``_``, ``-``."""
    stem = name.rpartition(".")[0] if "." in name else name
    cleaned = "".join(c if (c.isalnum() or c in " ._-") else "_" for c in stem).lstrip(". ")
    return cleaned[:limit] or "input"


def printable(name: str) -> str:
    """A name for the log: control characters escaped, so that a file name cannot forge log lines."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)
