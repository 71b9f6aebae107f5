"""A partner's SFTP folder as the inbox.

A remote file is taken when it is complete: not named like a temporary file, and with the
same size and modification time in two scans at least the settle time apart. The remote
clock is never compared with ours (it may be off by minutes): the settle time is measured
with our own monotonic clock between our own scans, and the source object keeps what the
previous scans saw.

Downloading goes to a hidden temporary name beside the target and is renamed to the target
only when complete and of the size the scan saw. The remote file is left in place until
:meth:`SftpSource.finalize` moves it to the archive folder or deletes it, which the engine
calls only after its journal has committed the outputs: a crash in between downloads the
file again, and the journal recognises it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import stat
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from pydantic import Field

from ..destinations.base import temp_name
from ..errors import DeliveryError
from ..files import fsync_dir, is_temporary_name, new_work_path
from ..i18n import _
from ..kinds import CheckContext, Kind, KindConfig, Parts, Problem
from ..remote_folder import RemoteFolder, remote_path
from .base import Candidate, Source

if TYPE_CHECKING:
    from ..sftp import SftpEndpoint

log = logging.getLogger("gateway")

T = TypeVar("T")

#: At most this many candidates per scan; the rest are seen once these have been taken.
MAX_ENTRIES = 10_000
#: Files larger than one read request are prefetched (many reads in flight). A smaller file comes
#: in one request anyway, and prefetching would only add a thread: 2.6 instead of 1.3 ms a file.
PREFETCH_ABOVE = 32768
CHUNK = 32768  # paramiko's largest read request
#: No limit on the read requests in flight: with a limit, paramiko 5.1 ends its prefetch as soon as
#: the requests in flight drop to zero and reads the rest one request at a time (32 MiB: 5.5 s with
#: 64, 0.2 s unlimited). The data in transit is bounded by the channel window all the same.
PREFETCH_REQUESTS: int | None = None


def is_safe_name(name: str) -> bool:
    """A name that can only mean a file in the folder itself: no path, no '..', no control characters."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or ".." in name:
        return False
    return not any(unicodedata.category(ch) == "Cc" for ch in name)


def remote_candidate(name: str, size: int, mtime: int) -> Candidate:
    """A file on the server as a candidate; its modification time (the server's clock) is compared only with itself."""
    return Candidate(identity=name, name=name, size=size, changed=float(mtime), detail=mtime)


class SftpSourceConfig(KindConfig):
    """A folder on a partner's SFTP server that the partner drops files into."""

    kind = "sftp"

    sftp: str
    folder: str
    include: list[str] = Field(default_factory=lambda: ["*"])
    settle_seconds: float | None = Field(default=None, ge=0)
    archive: str | None = None  # remote folder processed files are moved to; without it they are deleted
    max_size_mb: float = Field(default=1024, ge=0)  # larger files are refused, not downloaded (0: no bound)


@dataclass
class _Seen:
    size: int
    mtime: int
    first: float  # our monotonic clock when a scan first saw this size and mtime (end of that scan)
    last: float  # ... when the latest scan saw them unchanged (start of that scan)


class _LocalWriteError(Exception):
    """Writing the local temporary file failed (kept apart from the connection's OSErrors)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc


class _Writer:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def write(self, data: bytes) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            raise _LocalWriteError(exc) from None


def _fetch(sftp: Any, remote: str, size: int, writer: _Writer, progress: Callable[[int, int], None] | None) -> int:
    """What ``SFTPClient.getfo(prefetch=True)`` does, in 4 requests for a small file instead of 6.

    getfo asks for the size first (the scan knows it) and reads once more after the end;
    a read that returns less than asked for has reached the end already. Larger files are
    prefetched: all reads in flight at once, which is what makes getfo fast.
    """
    done = 0
    with sftp.open(remote, "rb") as remote_file:
        if size > PREFETCH_ABOVE:
            remote_file.prefetch(size, PREFETCH_REQUESTS)
        while True:
            data = remote_file.read(CHUNK)
            if data:
                writer.write(data)
                done += len(data)
                if progress is not None:
                    progress(done, size)
            if len(data) < CHUNK:  # read() returns less only at the end of the file
                return done


class SftpSource(RemoteFolder, Source):
    kind = "sftp"
    folder_hint = False  # a file may vanish between a listing and its download

    def __init__(
        self,
        endpoint: SftpEndpoint,
        folder: str,
        include: list[str],
        settle_seconds: float,
        archive_folder: str | None,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.folder = folder
        self.include = include
        self.settle_seconds = settle_seconds
        self.archive_folder = archive_folder
        self.max_entries = max_entries
        self.max_bytes = max_bytes  # larger files are not downloaded (0: no bound)
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._refused: dict[str, str] = {}  # names not taken, with why (reported once)

    def _wanted(self, name: str) -> bool:
        if is_temporary_name(name):
            return False
        lower = name.lower()
        return any(fnmatch.fnmatchcase(lower, pattern.lower()) for pattern in self.include)

    # -- scanning ----------------------------------------------------------------------------------

    def scan(self) -> list[Candidate]:
        """Every file that looks like an input, complete or not, oldest first (at most ``max_entries``)."""
        started = self.clock()

        def step(sftp: Any) -> tuple[list[Candidate], bool]:
            found: list[Candidate] = []
            more = False
            # listdir_iter pipelines READDIR requests; nothing else is sent while it runs.
            entries = sftp.listdir_iter(self.folder or ".")
            try:
                for attr in entries:
                    name = attr.filename
                    if not self._wanted(name):
                        continue
                    if attr.st_mode is not None and not stat.S_ISREG(attr.st_mode):
                        continue
                    if not is_safe_name(name):
                        self._refuse(name, _("the file name {name} is refused (path or control characters)").format(
                            name=repr(name)))
                        continue
                    size = int(attr.st_size or 0)
                    if self.max_bytes and size > self.max_bytes:
                        self._refuse(name, _("{name} is larger ({size} bytes) than the source's max_size_mb ({mb} "
                                             "MB); it is not downloaded").format(
                                                 name=repr(name), size=f"{size:,}",
                                                 mb=f"{self.max_bytes // 1_000_000:,}"))
                        continue
                    if len(found) >= self.max_entries:
                        more = True
                        break
                    found.append(remote_candidate(name, size, int(attr.st_mtime or 0)))
            finally:
                entries.close()
            return found, more

        try:
            found, more = self._run(_("listing {folder}").format(folder=self.folder or "."), self.folder or ".", step)
        except UnicodeDecodeError:
            self.endpoint.reset_session()  # the listing stopped half-way
            raise DeliveryError(_(
                "{place}: a file name in the folder is not UTF-8 and cannot be read; ask the partner to rename it"
            ).format(place=self.describe())) from None
        ended = self.clock()
        if more:
            # The listing was left unfinished: a fresh session closes the directory handle and drops
            # the answers to the read-ahead requests.
            self.endpoint.reset_session()
            log.info("%s: listed the first %d files; more remain and are taken in later scans",
                     self.describe(), self.max_entries)
        names = set()
        for c in found:
            names.add(c.name)
            seen = self._seen.get(c.name)
            if seen is not None and (seen.size, seen.mtime) == (c.size, c.detail):
                seen.last = started
            else:
                self._seen[c.name] = _Seen(c.size, c.detail, first=ended, last=ended)
        if not more:
            for name in [n for n in self._seen if n not in names]:
                del self._seen[name]
        found.sort(key=lambda c: (c.changed, c.name))
        return found

    def _refuse(self, name: str, why: str) -> None:
        if self._refused.get(name) != why:
            log.warning("%s: %s", self.describe(), why)
        self._refused[name] = why

    def ignored(self) -> dict[str, str]:
        return dict(self._refused)

    def is_settled(self, candidate: Candidate, at: float | None = None) -> bool:
        """Same size and mtime in scans at least ``settle_seconds`` apart (by our clock).

        ``at`` is accepted for the engine's calling convention (``FolderSource.is_settled``) and
        not used: what counts is what the scans saw, not the time of the question.
        """
        if self.settle_seconds <= 0:
            return True
        seen = self._seen.get(candidate.name)
        if seen is None or (seen.size, seen.mtime) != (candidate.size, candidate.detail):
            return False
        return seen.last - seen.first >= self.settle_seconds

    def settle_remaining(self, candidate: Candidate) -> float:
        """Seconds until a scan can find ``candidate`` settled, if it does not change (0 when settled)."""
        if self.is_settled(candidate):
            return 0.0
        seen = self._seen.get(candidate.name)
        if seen is None or (seen.size, seen.mtime) != (candidate.size, candidate.detail):
            return self.settle_seconds
        return max(0.0, seen.first + self.settle_seconds - self.clock())

    # -- taking ------------------------------------------------------------------------------------

    def download(
        self,
        candidate: Candidate,
        target: Path,
        progress: Callable[[int, int], None] | None = None,
        *,
        sync: bool = True,
    ) -> None:
        """Copy the remote file to ``target`` (complete, or not at all).

        With ``sync`` (the default) the file and the rename are flushed to disk before this
        returns, so that a power cut cannot leave a truncated input under ``target``. On a busy
        VM disk that can cost more than the transfer of a small file (measured 0.3 to 6 ms); a
        caller that makes the work folder durable itself (one ``fsync`` for a batch) passes ``False``.
        """
        if not is_safe_name(candidate.name):
            raise DeliveryError(_("{place}: the file name {name} is refused").format(
                place=self.describe(), name=repr(candidate.name)))
        remote = self._path(candidate.name)
        temp = target.with_name(temp_name(target.name))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(_("cannot create {folder}: {error}").format(
                folder=target.parent, error=exc.strerror or exc)) from None

        try:
            fh = open(temp, "wb")  # noqa: SIM115 - closed below, before the rename
        except OSError as exc:
            raise DeliveryError(_("cannot write {file}: {error}").format(
                file=temp, error=exc.strerror or exc)) from None

        def step(sftp: Any) -> int:
            try:
                fh.seek(0)
                fh.truncate()  # a second attempt starts from nothing
            except OSError as exc:
                raise _LocalWriteError(exc) from None
            size = _fetch(sftp, remote, candidate.size, _Writer(fh), progress)
            try:
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise _LocalWriteError(exc) from None
            return size

        try:
            try:
                with fh:
                    size = self._run(_("downloading {name}").format(name=candidate.name), remote, step)
            except _LocalWriteError as exc:
                raise DeliveryError(_("cannot write {file}: {error}").format(
                    file=temp, error=exc.exc.strerror or exc.exc)) from None
            except OSError as exc:  # closing the local file (remote errors are DeliveryErrors by now)
                raise DeliveryError(_("cannot write {file}: {error}").format(
                    file=temp, error=exc.strerror or exc)) from None
            if size != candidate.size:
                self._seen.pop(candidate.name, None)  # it changed: it has to settle again
                raise DeliveryError(_(
                    "{file} changed while it was taken ({size} bytes instead of {expected}); it is taken again once "
                    "it has settled").format(file=self.endpoint.url(remote), size=size, expected=candidate.size))
            os.rename(temp, target)
            if sync:
                fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise

    def finalize(self, candidate: Candidate) -> str | None:
        """Move the remote file to the archive folder (or delete it); return where it went.

        Call only once the outputs made from it are committed. Idempotent: a file that is
        already gone counts as finalized (``None``).
        """
        remote = self._path(candidate.name)
        self._seen.pop(candidate.name, None)
        if self.archive_folder is None:

            def delete(sftp: Any) -> str | None:
                try:
                    sftp.remove(remote)
                except FileNotFoundError:
                    return None
                return "deleted"

            result = self._run(_("deleting {name}").format(name=candidate.name), remote, delete)
            if result:
                log.info("%s: deleted %s", self.describe(), candidate.name)
            return result

        archive_folder = self.archive_folder
        stamp = time.strftime("%Y%m%dT%H%M%S")

        def archive(sftp: Any) -> str | None:
            try:
                sftp.stat(remote)
            except FileNotFoundError:
                return None  # already moved (an earlier attempt) or deleted
            target = remote_path(archive_folder, candidate.name)
            try:
                sftp.stat(target)
            except FileNotFoundError:
                pass
            else:  # an earlier file of the same name is archived already: keep both
                target = remote_path(archive_folder, f"{stamp}--{candidate.name}")
            try:
                sftp.posix_rename(remote, target)
            except FileNotFoundError:
                raise OSError(_("the archive folder {folder} does not exist on the server").format(
                    folder=repr(archive_folder))) from None
            return target

        moved = self._run(_("archiving {name}").format(name=candidate.name), remote, archive)
        if moved:
            log.info("%s: archived %s as %s", self.describe(), candidate.name, moved)
        return moved

    # -- the source contract ------------------------------------------------------------------------

    def origin(self, candidate: Candidate) -> str:
        return f"{self.describe()}/{candidate.name}"

    def fetch(self, candidate: Candidate, work_dir: Path) -> Path:
        """Download into the work folder; the remote file stays until :meth:`acknowledge`."""
        target = new_work_path(work_dir, candidate.name)
        self.download(candidate, target)
        return target

    def acknowledge(self, candidate: Candidate) -> None:
        self.finalize(candidate)

    def close(self) -> None:
        self.endpoint.close()


def _endpoint(parts: Parts, partner: str) -> SftpEndpoint:
    """One connection per partner, shared by the engine's sources and destinations of that partner."""

    def make() -> SftpEndpoint:
        from ..sftp import SftpEndpoint

        p = parts.installation.partners[partner]
        return SftpEndpoint(p.host, p.port, p.user, p.key_file, p.known_hosts, p.passphrase_env, p.timeout,
                            partner=partner)

    endpoint: SftpEndpoint = parts.share(f"sftp:{partner}", make)
    return endpoint


def check_partner(partner: str, ctx: CheckContext) -> list[Problem]:
    partners = ctx.gateway.partners if ctx.gateway else {}
    if partner in partners:
        return []
    known = ", ".join(partners) or _("none yet")
    return [(("sftp",), _("no partner named '{name}' under 'partners' (partners: {partners})").format(
        name=partner, partners=known))]


def _build(config: SftpSourceConfig, parts: Parts) -> SftpSource:
    settle = config.settle_seconds if config.settle_seconds is not None else parts.flow.settle_seconds
    # the engine's clock, like the folder source's: a test's ManualClock settles remote files too
    return SftpSource(_endpoint(parts, config.sftp), config.folder, config.include, settle, config.archive,
                      max_bytes=int(config.max_size_mb * 1_000_000), clock=parts.clock.monotonic)


KIND = Kind(
    name="sftp",
    role="source",
    config=SftpSourceConfig,
    build=_build,
    summary="a folder on a partner's SFTP server; files are downloaded once settled, then archived or deleted there",
    example="{sftp: shop, folder: /out, archive: /out/done}",
    check=lambda config, ctx: check_partner(config.sftp, ctx),
)
