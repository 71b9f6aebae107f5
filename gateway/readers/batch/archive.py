"""Archive safety: the members of a batch (a ZIP archive or a folder), checked before anything is read.

A batch comes from outside and is not trusted. Before a table is read, the batch's list of
members is checked: their number, their names (no absolute paths, ``..``, backslashes,
drive letters, colons or control characters; no two names that differ only in case) and,
for a ZIP, encryption and the declared sizes and compression ratios. Members are unpacked
into the reader's folder under names chosen here (never the member's own name), counting
the bytes as they come out, so a header that lies about a size does not help.

In a folder, symbolic links (and Windows junctions) are refused; the folder given itself
is taken as it is. ``export.done`` is not required here: deciding when a folder is
complete is the source's job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ...errors import ReadError
from ...i18n import N_, _

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

RATIO_FROM_BYTES = MiB  # the compression ratio is judged only for members larger than this
_CHUNK = MiB  # bytes per read when unpacking a member
_DIRECTORY_BYTES_PER_MEMBER = KiB  # average size of one entry in a ZIP's central directory that is accepted
_FILES_LISTED = 40  # names shown when a required table is missing

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_UNPACKABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_METHODS = {zipfile.ZIP_BZIP2: "BZIP2", zipfile.ZIP_LZMA: "LZMA", 9: "Deflate64", 93: "Zstandard", 98: "PPMd",
            99: N_("AES encryption")}
_WINDOWS_REPARSE_POINT = 0x400  # FILE_ATTRIBUTE_REPARSE_POINT: junctions and symbolic links


@dataclass(frozen=True)
class BatchLimits:
    """Bounds for an untrusted batch; a batch over any of them is refused with ``ReadError``."""

    max_members: int = 1000  # entries of a ZIP archive (folders included), or files and folders of a folder
    max_total_bytes: int = 2 * GiB  # all members together, unpacked
    max_member_bytes: int = 1 * GiB  # one member, unpacked
    max_ratio: float = 200  # unpacked / packed size of one member larger than RATIO_FROM_BYTES
    max_depth: int = 32  # levels of folders in a batch (a deeper path is refused, in a folder and in a ZIP)


LIMITS = BatchLimits()  # the bounds every batch gets unless a caller (a test) gives others


def batch_files(path: Path, shown_as: str, limits: BatchLimits = LIMITS) -> list[str]:
    """The names of the files in the batch (``/``-separated, folders left out), after the same checks."""
    with open_batch(path, shown_as, limits) as batch:
        return [member.name for member in batch.files]


def listing(files: Sequence[Member]) -> str:
    """The batch's files in words, for a message about one that is missing."""
    if not files:
        return _("the batch holds no files at all")
    names = ", ".join(m.name for m in files[:_FILES_LISTED])
    if len(files) > _FILES_LISTED:
        return _("the batch has: {names} and {count} more").format(names=names, count=len(files) - _FILES_LISTED)
    return _("the batch has: {names}").format(names=names)


@dataclass(frozen=True)
class Member:
    name: str  # relative, '/'-separated
    size: int  # unpacked bytes (declared, for a ZIP)
    info: zipfile.ZipInfo | None = None


class Batch:

    def __init__(self, shown_as: str, limits: BatchLimits, members: list[Member]) -> None:
        self.shown_as = shown_as
        self.limits = limits
        self.files = [m for m in members if not m.name.endswith("/")]
        self.unpacked = 0
        _check_members(members, shown_as, limits)

    def find(self, file: str) -> Member | None:
        matches = [m for m in self.files if _is_file(m.name, file)]
        if len(matches) > 1:
            listed = ", ".join(f"'{m.name}'" for m in matches)
            raise ReadError(_(
                "the batch holds {count} files named {name} ({files}); which one is the table is unclear").format(
                    count=len(matches), name=file, files=listed),
                file=self.shown_as,
            )
        return matches[0] if matches else None

    def local_path(self, member: Member, target: Path) -> Path:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _is_file(member: str, file: str) -> bool:
    """Whether the member is ``file``: by its whole path or the end of it (``katalog/artikel.csv``), in any case."""
    wanted, name = file.strip("/").casefold(), member.casefold()
    return name == wanted or name.endswith("/" + wanted)


class FolderBatch(Batch):
    def __init__(self, root: Path, shown_as: str, limits: BatchLimits) -> None:
        self.root = root
        super().__init__(shown_as, limits, _walk(root, shown_as, limits))

    def local_path(self, member: Member, target: Path) -> Path:
        return self.root.joinpath(*member.name.split("/"))


class ZipBatch(Batch):
    """A ZIP archive. Members are unpacked here, not by ``zipfile``, so that every byte is counted.

    ``zipfile`` reads the directory well, but unpacks a whole read chunk at once (for
    BZIP2 and LZMA without any bound: a few kilobytes become gigabytes in one call) and
    stops at the size the header declares, so a forged header silently cuts a table
    short. Here the packed bytes are read from the member's local header on, inflated at
    most ``_CHUNK`` bytes at a time, and the real size and checksum must be the declared ones.
    """

    def __init__(self, path: Path, shown_as: str, limits: BatchLimits) -> None:
        _check_directory(path, shown_as, limits)
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, struct.error, UnicodeDecodeError):
            raise ReadError(_("the file is not a ZIP archive (or a damaged one)"), file=shown_as) from None
        try:
            infos = self.zip.infolist()
            if len(infos) > limits.max_members:
                raise ReadError(_too_many(len(infos), limits), file=shown_as)
            super().__init__(shown_as, limits, [Member(i.filename, i.file_size, i) for i in infos])
            for info in infos:
                _check_info(info, shown_as, limits)
            _check_overlap(infos, shown_as)
        except BaseException:
            self.zip.close()
            raise

    def local_path(self, member: Member, target: Path) -> Path:
        info = member.info
        assert info is not None  # noqa: S101 - every member of a ZIP batch has its entry
        shown = f"{self.shown_as}/{member.name}"
        if info.compress_type not in _UNPACKABLE:
            known = _METHODS.get(info.compress_type)
            method = _(known) if known else _("the compression method no. {number}").format(number=info.compress_type)
            raise ReadError(_(
                "the member is packed with {method}; the gateway unpacks only members packed with Deflate (what ZIP "
                "tools use unless told otherwise) or stored unpacked, because it cannot count the bytes of other "
                "methods while they unpack; pack the export with Deflate").format(method=method), file=shown)
        with target.open("wb") as out:
            for chunk in self._unpack(info, shown):
                out.write(chunk)
        return target

    def _unpack(self, info: zipfile.ZipInfo, shown: str) -> Iterator[bytes]:
        """The member's content, at most ``_CHUNK`` bytes at a time, each counted against every limit."""
        limits = self.limits
        declared = info.file_size
        written = 0
        crc = 0
        with self.path.open("rb") as raw:
            packed = _packed_data(raw, info, shown)
            for chunk in _inflate(packed, shown) if info.compress_type == zipfile.ZIP_DEFLATED else packed:
                written += len(chunk)
                self.unpacked += len(chunk)
                if written > declared:
                    raise ReadError(_(
                        "the member unpacks to more than the {size} its header states; the archive is damaged or "
                        "forged (a trick of zip bombs), so it is refused").format(size=_size(declared)), file=shown)
                if written > limits.max_member_bytes:
                    raise ReadError(_("the member unpacks to more than {size} (the most one member may have)").format(
                        size=_size(limits.max_member_bytes)), file=shown)
                if self.unpacked > limits.max_total_bytes:
                    raise ReadError(_("the members unpack to more than {size} together (the most a batch may "
                                      "have)").format(size=_size(limits.max_total_bytes)), file=shown)
                if written > RATIO_FROM_BYTES and written > limits.max_ratio * max(info.compress_size, 1):
                    raise ReadError(_bomb(info.compress_size, written, limits), file=shown)
                crc = zlib.crc32(chunk, crc)
                yield chunk
        if written != declared:
            raise ReadError(_("the member unpacks to {size}, but its header states {declared}; the archive is "
                              "damaged").format(size=_size(written), declared=_size(declared)), file=shown)
        if crc != info.CRC:
            raise ReadError(_("the member's content does not match its checksum (CRC); the archive is damaged"),
                            file=shown)

    def close(self) -> None:
        self.zip.close()


def _packed_data(raw: BinaryIO, info: zipfile.ZipInfo, shown: str) -> Iterator[bytes]:
    """The member's packed bytes, from behind its local header, in chunks."""
    size = raw.seek(0, os.SEEK_END)
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size:
        raise ReadError(_("the member's header lies beyond the end of the archive; the archive is damaged"),
                        file=shown)
    signature, _v, flags, method, _t, _d, _c, _s, _u, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    name = raw.read(name_length).decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if signature != _LOCAL_HEADER_SIGNATURE or name != info.orig_filename or method != info.compress_type:
        raise ReadError(_("the member's own header does not match the archive's table of contents; the archive "
                          "is damaged or forged, so it is refused"), file=shown)
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + info.compress_size > size:
        raise ReadError(_("the member's data goes on beyond the end of the archive; the archive is damaged "
                          "(was it cut short while copying?)"), file=shown)
    raw.seek(start)
    left = info.compress_size
    while left:
        chunk = raw.read(min(_CHUNK, left))
        if not chunk:
            raise ReadError(_("the archive ends inside the member; it is damaged"), file=shown)
        left -= len(chunk)
        yield chunk


def _inflate(packed: Iterator[bytes], shown: str) -> Iterator[bytes]:
    """Deflate data unpacked at most ``_CHUNK`` bytes per step, whatever a step of input holds."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for data in packed:
            while data and not inflater.eof:
                out = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
                if out:
                    yield out
            if inflater.eof:
                return
    except zlib.error as exc:
        raise ReadError(_("the member cannot be unpacked, the archive is damaged: {error}").format(error=exc),
                        file=shown) from None
    raise ReadError(_("the member's packed data ends before its content does; the archive is damaged"), file=shown)


def _check_overlap(infos: list[zipfile.ZipInfo], shown_as: str) -> None:
    """Members whose data overlap (one packed kernel read as many members) are a zip bomb, never an export."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for info, following in itertools.pairwise(ordered):
        if info.header_offset + _LOCAL_HEADER.size + info.compress_size > following.header_offset:
            raise ReadError(_("the members {first} and {second} overlap in the archive, a trick of zip bombs; the "
                              "archive is refused").format(first=repr(info.filename), second=repr(following.filename)),
                            file=shown_as)


@contextlib.contextmanager
def open_batch(path: Path, shown_as: str, limits: BatchLimits) -> Iterator[Batch]:
    try:
        is_folder = path.is_dir()
        exists = is_folder or path.is_file()
    except OSError as exc:
        raise ReadError(_("the batch cannot be read: {error}").format(error=exc), file=shown_as) from None
    if not exists:
        raise ReadError(_("the batch is neither a ZIP file nor a folder (it does not exist)"), file=shown_as)
    batch: Batch = FolderBatch(path, shown_as, limits) if is_folder else ZipBatch(path, shown_as, limits)
    try:
        yield batch
    finally:
        batch.close()


def hash_batch(path: Path, shown_as: str | None = None, limits: BatchLimits = LIMITS) -> tuple[str, int]:
    """The SHA-256 and size of a batch folder: over each file's name and content, in name order.

    Only regular files are opened: the folder is walked first without following anything,
    and a link, named pipe, socket or device, a folder nested too deeply or too many entries
    refuse the batch (``ReadError``, naming the entry) before a single file is read. A link
    to ``/proc/self/pagemap`` would otherwise be read for minutes, and a named pipe forever.
    The hash is the one the engine has always taken of a folder, so a batch delivered again
    is still recognised as a duplicate.
    """
    members = _walk(path, shown_as, limits)
    files = sorted((m.name for m in members if not m.name.endswith("/")), key=lambda name: name.split("/"))
    digest = hashlib.sha256()
    size = 0
    for name in files:
        digest.update(name.encode("utf-8") + b"\0")
        with _open_regular(path.joinpath(*name.split("/")), name, shown_as) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _open_regular(path: Path, name: str, shown_as: str | None) -> BinaryIO:
    """Open a file found by the walk, refusing it if it was swapped for a link or a special file since."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReadError(_not_a_file(name, N_("a symbolic link")), file=shown_as) from None
        raise
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fh.close()
        raise ReadError(_not_a_file(name, N_("not a regular file")), file=shown_as)
    return fh


def _walk(root: Path, shown_as: str | None, limits: BatchLimits) -> list[Member]:
    """Every file and folder below ``root``, without following or opening anything but folders.

    Links (and Windows junctions), named pipes, sockets and devices are refused by name, as
    are folders nested deeper than ``limits.max_depth`` and more entries than the limit allows.
    """
    members: list[Member] = []
    pending = [("", root, 1)]
    try:
        while pending:
            prefix, folder, depth = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = prefix + entry.name
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_symlink() or getattr(info, "st_file_attributes", 0) & _WINDOWS_REPARSE_POINT:
                        raise ReadError(_not_a_file(name, N_("a symbolic link (or junction)")), file=shown_as)
                    if stat.S_ISDIR(info.st_mode):
                        if depth > limits.max_depth:
                            raise ReadError(_(
                                "'{name}' lies more than {count} folders deep; a batch folder is refused beyond that "
                                "(no export nests its files so deep)").format(
                                    name=_shortened(name), count=limits.max_depth), file=shown_as)
                        members.append(Member(name + "/", 0))
                        pending.append((name + "/", Path(entry.path), depth + 1))
                    elif stat.S_ISREG(info.st_mode):
                        members.append(Member(name, info.st_size))
                    else:
                        raise ReadError(_not_a_file(name, _kind(info.st_mode)), file=shown_as)
                    if len(members) > limits.max_members:
                        raise ReadError(_too_many(len(members), limits, at_least=True), file=shown_as)
    except OSError as exc:
        raise ReadError(_("the batch folder cannot be read: {error}").format(error=exc), file=shown_as) from None
    members.sort(key=lambda m: m.name)
    return members


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return N_("a named pipe (FIFO)")
    if stat.S_ISSOCK(mode):
        return N_("a socket")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return N_("a device")
    return N_("not a regular file")


def _not_a_file(name: str, kind: str) -> str:
    """``kind`` is marked with ``N_`` and translated here."""
    return _("'{name}' is {kind}; a batch folder may hold only files and folders (a link can point outside it, a "
             "pipe or device never ends), so the batch is refused without reading it").format(
                 name=_shortened(name), kind=_(kind))


def _shortened(name: str) -> str:
    return name if len(name) <= 120 else name[:60] + "…" + name[-40:]


def _check_directory(path: Path, shown_as: str, limits: BatchLimits) -> None:
    """Read the member count and directory size from the archive's end record, before ``zipfile`` loads it all."""
    try:
        with path.open("rb") as raw:
            size = raw.seek(0, os.SEEK_END)
            start = max(0, size - _EOCD.size - 0xFFFF)
            raw.seek(start)
            tail = raw.read()
            at = tail.rfind(_EOCD_SIGNATURE)
            if at < 0 or len(tail) - at < _EOCD.size:
                raise ReadError(_("the file is not a ZIP archive"), file=shown_as)
            entries, directory_size = _EOCD.unpack_from(tail, at)[4:6]
            if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and at >= _ZIP64_LOCATOR.size:
                signature, _disk, offset, _disks = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
                if signature == _ZIP64_LOCATOR_SIGNATURE and offset + _ZIP64_EOCD.size <= size:
                    raw.seek(offset)
                    record = raw.read(_ZIP64_EOCD.size)
                    fields = _ZIP64_EOCD.unpack(record)
                    if fields[0] == _ZIP64_EOCD_SIGNATURE:
                        entries, directory_size = fields[7], fields[8]
    except OSError as exc:
        raise ReadError(_("the file cannot be read: {error}").format(error=exc), file=shown_as) from None
    if entries > limits.max_members:
        raise ReadError(_too_many(entries, limits), file=shown_as)
    if directory_size > limits.max_members * _DIRECTORY_BYTES_PER_MEMBER + 64 * KiB:
        raise ReadError(_(
            "the archive's table of contents is {size}, far more than {count} members need; the archive is refused "
            "as unsafe").format(size=_size(directory_size), count=entries), file=shown_as,
        )


def _check_members(members: list[Member], shown_as: str, limits: BatchLimits) -> None:
    seen: dict[str, str] = {}
    total = 0
    for member in members:
        problem = _unsafe_name(member.name)
        folders = member.name.rstrip("/").count("/") + member.name.endswith("/")
        if problem is None and folders > limits.max_depth:
            problem = _("it lies more than {count} folders deep (no export nests its files so deep)").format(
                count=limits.max_depth)
        if problem:
            raise ReadError(_("the batch holds a member with an unsafe name, {name}: {problem}").format(
                name=repr(member.name), problem=problem), file=shown_as)
        folded = member.name.rstrip("/").casefold()
        if folded in seen:
            words = _("the batch holds two members with the same name: {first} and {second}") \
                if seen[folded] == member.name else \
                _("the batch holds two members with names that differ only in case: {first} and {second}")
            raise ReadError(words.format(first=repr(seen[folded]), second=repr(member.name)), file=shown_as)
        seen[folded] = member.name
        shown = f"{shown_as}/{member.name}"
        if member.size > limits.max_member_bytes:
            raise ReadError(_("the member is {size} unpacked, more than the {limit} one member may have").format(
                size=_size(member.size), limit=_size(limits.max_member_bytes)), file=shown)
        total += member.size
        if total > limits.max_total_bytes:
            raise ReadError(_("the members are more than {size} unpacked together, more than a batch may have").format(
                size=_size(limits.max_total_bytes)), file=shown_as)


def _check_info(info: zipfile.ZipInfo, shown_as: str, limits: BatchLimits) -> None:
    shown = f"{shown_as}/{info.filename}"
    if info.flag_bits & 0x1:
        raise ReadError(_("the member is encrypted (password-protected); the gateway reads only unencrypted "
                          "archives"), file=shown)
    if info.file_size > RATIO_FROM_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise ReadError(_bomb(info.compress_size, info.file_size, limits), file=shown)


def _unsafe_name(name: str) -> str | None:
    if not name or name == "/":
        return _("the name is empty")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return _("it contains control characters")
    if "\\" in name:
        return _("it contains a backslash")
    if name.startswith("/"):
        return _("it is an absolute path")
    if ":" in name:
        return _("it contains ':' (a drive letter or a Windows stream name)")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return _("it contains '..' (a way out of the folder it is unpacked into)")
    if "" in parts or "." in parts:
        return _("it has an empty or '.' folder part")
    return None


def _too_many(count: int, limits: BatchLimits, at_least: bool = False) -> str:
    words = _("the batch has more than {limit} members (files and folders), and at most {limit} are allowed; is it "
              "really a catalog export?") if at_least else _(
              "the batch has {count} members (files and folders), and at most {limit} are allowed; is it really a "
              "catalog export?")
    return words.format(count=count, limit=limits.max_members)


def _bomb(packed: int, unpacked: int, limits: BatchLimits) -> str:
    return _("the member unpacks from {packed} to {unpacked} or more, a ratio over {ratio} to 1; no real export "
             "packs that well, so the archive is refused as a zip bomb").format(
                 packed=_size(packed), unpacked=_size(unpacked), ratio=f"{limits.max_ratio:g}")


def _size(count: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= factor:
            return f"{count / factor:.1f} {unit}".replace(".0 ", " ")
    return _("{count} bytes").format(count=count)


def copy_batch_file(path: Path, shown_as: str, name: str, target: Path, *, folder: str = "/",
                    tables: Sequence[str] = (), row: str | None = None, limits: BatchLimits = LIMITS) -> None:
    """Copy the batch's file ``name``, which must lie in ``folder`` and be none of ``tables``, to ``target``.

    For outputs that pass files of a batch on (PDF data sheets, invoices). ``name`` comes from
    a row of the export, so it is not trusted: it must be a plain path inside ``folder`` (a
    folder of the batch, or ``/`` for all of it), and a file that is one of the batch's tables
    (found like a table: by the end of its path, case does not matter) is never passed on,
    however a row names it: ``Datei=preise.csv`` would publish the whole price table. ``row``
    says in words which row named the file, for the messages. The same member checks and
    unpacking limits as for tables apply.
    """
    who = row or _("the record")
    problem = _unsafe_name(name)
    if problem is not None:
        raise ReadError(_("{row} names the file {name}, which cannot be passed on: {problem}").format(
            row=who, name=repr(name), problem=problem), file=shown_as)
    if folder != "/" and not name.casefold().startswith(folder.casefold() + "/"):
        raise ReadError(_("{row} names the file {name}, which is not in the folder '{folder}/'; only files in that "
                          "folder are passed on (the output's 'folder' in the mapping)").format(
                              row=who, name=repr(name), folder=folder), file=shown_as)
    with open_batch(path, shown_as, limits) as batch:
        member = batch.find(name)
        if member is None:
            raise ReadError(_("{row} names the file {name}, which the batch does not hold; {files}").format(
                row=who, name=repr(name), files=listing(batch.files)), file=shown_as)
        if any(_is_file(member.name, table) for table in tables):
            raise ReadError(_("{row} names the file {name}, which is '{member}', a table of the batch; tables are "
                              "read, never passed on as files").format(row=who, name=repr(name), member=member.name),
                            file=shown_as)
        if isinstance(batch, FolderBatch):
            shutil.copyfile(batch.local_path(member, target), target)
        else:
            batch.local_path(member, target)
    with open(target, "rb+") as fh:  # staged outputs are on disk before the journal commits them
        os.fsync(fh.fileno())

