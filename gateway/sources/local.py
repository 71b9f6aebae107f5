"""A local drop folder.

A file is taken only when it is complete: not named like a temporary file, and either
untouched for the settle time or announced by the producer's marker file. Claiming is
a rename into the work folder on the same file system, which is atomic: of two
gateway processes, exactly one gets the file, the other gets ``FileNotFoundError``.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..destinations.local import fsync_dir

CLAIM_SUFFIX = ".gw-claim"  # a file being taken from an inbox on another file system
log = logging.getLogger("gateway")

TEMPORARY_SUFFIXES = (".part", ".tmp", ".temp", ".partial", ".crdownload", ".filepart", "~")


def is_temporary_name(name: str) -> bool:
    """Names producers use while still writing (and our own outputs before they are renamed)."""
    lower = name.lower()
    return name.startswith(".") or name.startswith("~$") or lower.endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class Candidate:
    path: Path
    size: int
    changed: float  # ctime: when this machine last saw the file change
    marked: bool

    @property
    def name(self) -> str:
        return self.path.name


class FolderSource:
    def __init__(
        self, folder: Path, include: list[str], settle_seconds: float, marker: str | None,
        batch_marker: str | None = None,
    ) -> None:
        self.folder = folder
        self.include = include
        self.settle_seconds = settle_seconds
        self.marker = marker
        self.batch_marker = batch_marker  # a folder is one input (a batch) once this file is in it

    def describe(self) -> str:
        return f"folder {self.folder}"

    def _wanted(self, name: str) -> bool:
        if is_temporary_name(name):
            return False
        if self.marker and name.endswith(self.marker):
            return False
        # Case does not matter: partners on Windows send ORDERS.XML as readily as orders.xml.
        lower = name.lower()
        return any(fnmatch.fnmatchcase(lower, pattern.lower()) for pattern in self.include)

    def scan(self) -> list[Candidate]:
        """Every file that looks like an input, complete or not, oldest first."""
        found: list[Candidate] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        names = {e.name for e in entries}
        for entry in entries:
            if not self._wanted(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    batch = self._batch(Path(entry.path))
                    if batch is not None:
                        found.append(batch)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            marked = bool(self.marker) and (entry.name + str(self.marker)) in names
            # ctime, set by this machine's clock at every write and rename, not mtime: a producer or
            # a copying tool may set mtime to any time, also to one in the future
            found.append(Candidate(Path(entry.path), st.st_size, st.st_ctime, marked))
        found.sort(key=lambda c: (c.changed, c.name))
        return found

    def _batch(self, folder: Path) -> Candidate | None:
        """A folder counts once the producer's marker file is in it; until then it is still being written."""
        if self.batch_marker is None or not (folder / self.batch_marker).is_file():
            return None
        st = folder.stat()
        return Candidate(folder, 0, st.st_ctime, marked=True)

    def settle_remaining(self, candidate: Candidate) -> float:
        """Seconds until ``candidate`` counts as complete if nothing changes (0 when it does)."""
        if candidate.marked:
            return 0.0
        return max(0.0, self.settle_seconds - (time.time() - candidate.changed))

    def is_settled(self, candidate: Candidate, at: float | None = None) -> bool:
        return candidate.marked or (at if at is not None else time.time()) - candidate.changed >= self.settle_seconds

    def claim(self, candidate: Candidate, work_dir: Path) -> Path | None:
        """Move the file into ``work_dir``; ``None`` when another process was faster or it changed."""
        try:
            st = candidate.path.stat()
        except FileNotFoundError:
            return None
        if not candidate.marked and (st.st_size != candidate.size or st.st_ctime != candidate.changed):
            return None  # written to since it was seen: not complete after all
        work_dir.mkdir(parents=True, exist_ok=True)
        token = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
        target = work_dir / f"{token}--{work_name(candidate.name)}"
        try:
            os.rename(candidate.path, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EXDEV or candidate.path.is_dir():
                log.error("%s cannot be taken: %s", printable(candidate.name), exc.strerror or exc)
                return None
            # The inbox is on another file system (a mounted share): claim by a rename inside the
            # inbox, which is atomic there, then copy into the work folder.
            claimed = candidate.path.with_name(f".{target.name}{CLAIM_SUFFIX}")
            try:
                os.rename(candidate.path, claimed)
            except FileNotFoundError:
                return None
            if not self._copy_claimed(claimed, work_dir):
                return None
        if self.marker and candidate.marked and not target.is_dir():
            (candidate.path.parent / (candidate.name + self.marker)).unlink(missing_ok=True)
        return target


    def _copy_claimed(self, claimed: Path, work_dir: Path) -> bool:
        """Copy a file claimed inside the inbox into the work folder, then remove the claim.

        The claim is locked while it is copied; a claim left by a crashed process is finished by
        ``recover_claims``. The work file's name comes from the claim's, so a repeated copy
        replaces, never doubles, it.
        """
        target = work_dir / claimed.name[1:-len(CLAIM_SUFFIX)]
        fd = try_lock(claimed)
        if fd is None:
            return False  # gone, or another process is copying it
        try:
            if not claimed.exists():
                return False
            temp = target.with_name("." + target.name + ".part")
            with open(claimed, "rb") as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(temp, target)
            fsync_dir(work_dir)
            claimed.unlink()
            return True
        finally:
            os.close(fd)

    def recover_claims(self, work_dir: Path) -> None:
        """Finish claims of files from another file system that a crash interrupted."""
        try:
            leftovers = [p for p in self.folder.iterdir() if p.name.endswith(CLAIM_SUFFIX)]
        except OSError:
            return  # no inbox (yet), or not a folder: the scan reports that
        for claimed in leftovers:
            work_dir.mkdir(parents=True, exist_ok=True)
            self._copy_claimed(claimed, work_dir)


def try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock, or ``None`` when the file is gone or
    another process holds it. The lock dies with its process, which is what makes a crashed
    owner's files free again; the caller closes the descriptor to release it."""
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


def work_name(name: str, limit: int = 180) -> str:
    """The partner's file name as the tail of a work file name, short enough for any file system.

    The journal keeps the full name; a name over ``limit`` bytes is shortened in the middle.
    """
    if len(name.encode("utf-8")) <= limit:
        return name
    head, tail = name, ""
    if "." in name[-12:]:
        head, dot, ext = name.rpartition(".")
        tail = dot + ext
    while len((head + "…" + tail).encode("utf-8")) > limit:
        head = head[:-1]
    return head + "…" + tail


def safe_stem(name: str, limit: int = 100) -> str:
    """A partner file name's stem made fit for output file names: letters, digits, spaces, ``.``, ``_``, ``-``."""
    stem = name.rpartition(".")[0] if "." in name else name
    cleaned = "".join(c if (c.isalnum() or c in " ._-") else "_" for c in stem).lstrip(". ")
    return cleaned[:limit] or "input"


def printable(name: str) -> str:
    """A name for the log: control characters escaped, so that a file name cannot forge log lines."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)


def original_name(work_path: Path) -> str:
    """The name the file had in the inbox (work files are ``<token>--<name>``)."""
    _, sep, name = work_path.name.partition("--")
    return name if sep else work_path.name
