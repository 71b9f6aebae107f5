"""A partner's SFTP server as the outbox (the ``sftp`` kind of destination).

Like the local folder: ``prepare`` uploads the output under this delivery's temporary name
(hidden and ``.part``, ignored by importers), ``deliver`` renames it to its final name in one
step, so the partner never sees a half-written file; after a crash the temporary file on the
server answers ``status``. ``posix-rename@openssh.com`` is the default; servers without it
get plain ``rename`` (a partner setting). Each step reconnects once when the connection
breaks and is then done again, which is safe because every step is idempotent.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any, Literal

from ..errors import DeliveryError
from ..i18n import _
from ..kinds import Kind, KindConfig, Parts
from ..remote_folder import RemoteFolder
from .base import CallLog, Delivered, Delivery, Destination, Status

if TYPE_CHECKING:
    from ..sftp import SftpEndpoint

RenameMode = Literal["posix", "plain"]


class SftpDestinationConfig(KindConfig):
    """A folder on a partner's SFTP server (the partner is described under ``partners``)."""

    kind = "sftp"

    sftp: str
    folder: str
    marker: str | None = None


class SftpDestination(RemoteFolder, Destination):
    kind = "sftp"
    takes_markers = True

    def __init__(self, endpoint: SftpEndpoint, folder: str, rename: RenameMode = "posix") -> None:
        if rename not in ("posix", "plain"):
            raise ValueError(f"rename must be 'posix' or 'plain', not {rename!r}")
        self.endpoint = endpoint
        self.folder = folder
        self.rename = rename

    def _rename(self, sftp: Any, old: str, new: str) -> None:
        if self.rename == "posix":
            try:
                sftp.posix_rename(old, new)
            except OSError as exc:
                if isinstance(exc, (FileNotFoundError, PermissionError)):
                    raise
                raise OSError(_(
                    "{error} (if this server does not support posix-rename, set the partner's rename to 'plain')"
                ).format(error=exc)) from None
        else:
            sftp.rename(old, new)

    def prepare(self, item: Delivery) -> None:
        temp = self._path(item.temp_name)
        try:
            size = item.staged.stat().st_size
        except OSError as exc:
            raise DeliveryError(_("the staged file {file} cannot be read: {error}").format(
                file=item.staged, error=exc.strerror or exc)) from None

        def step(sftp: Any) -> None:
            with open(item.staged, "rb") as fh:
                # "wb" truncates an old temporary file; putfo pipelines the writes and checks the size.
                attrs = sftp.putfo(fh, temp, file_size=size, confirm=True)
            if attrs.st_size != size:
                raise OSError(_("the server holds {size} bytes instead of {expected}").format(
                    size=attrs.st_size, expected=size))

        self._run(_("uploading {name}").format(name=item.name), temp, step)

    def _prepared(self, sftp: Any, temp: str) -> bool:
        try:
            attrs = sftp.stat(temp)
        except FileNotFoundError:
            return False
        return attrs.st_mode is None or stat.S_ISREG(attrs.st_mode)

    def status(self, item: Delivery, calls: CallLog) -> Status:
        """The temporary file on the server: not delivered; gone: renamed, so delivered."""
        temp = self._path(item.temp_name)
        prepared = self._run(_("looking for the upload of {name}").format(name=item.name), temp,
                             lambda sftp: self._prepared(sftp, temp))
        return Status(Delivered.NO) if prepared else Status(Delivered.YES, self.location(item.name))

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        final = self._path(item.name)
        temp = self._path(item.temp_name)

        def step(sftp: Any) -> None:
            if not self._prepared(sftp, temp):
                # ``prepare`` always comes first: the rename was made by an earlier call for this key,
                # or by this one before the connection broke and the step was done again.
                return
            try:
                sftp.stat(final)
            except FileNotFoundError:
                pass
            else:
                raise DeliveryError(_(
                    "{file} already exists and was not written by this delivery; it is left alone (check the flow's "
                    "output file name)").format(file=self.endpoint.url(final)))
            self._rename(sftp, temp, final)

        self._run(_("publishing {name}").format(name=item.name), final, step)
        return self.location(item.name)

    def location(self, name: str) -> str:
        return self.endpoint.url(self._path(name))

    def write_marker(self, item: Delivery, suffix: str) -> None:
        marker = self._path(item.name + suffix)
        temp = self._path(f".{item.temp_name}{suffix}")

        def step(sftp: Any) -> None:
            with sftp.open(temp, "wb"):
                pass
            if self.rename == "plain":
                try:
                    sftp.stat(marker)
                except FileNotFoundError:
                    pass
                else:  # already there (an earlier attempt): plain rename would refuse to replace it
                    sftp.remove(temp)
                    return
            self._rename(sftp, temp, marker)

        self._run(_("writing the marker {name}").format(name=item.name + suffix), marker, step)

    def close(self) -> None:
        self.endpoint.close()


def _build(config: SftpDestinationConfig, parts: Parts) -> SftpDestination:
    from ..sources.sftp import _endpoint

    partner = parts.installation.partners[config.sftp]
    return SftpDestination(_endpoint(parts, config.sftp), config.folder, partner.rename)


def _check(config: SftpDestinationConfig, ctx: Any) -> list[tuple[tuple[str | int, ...], str]]:
    from ..sources.sftp import check_partner

    return check_partner(config.sftp, ctx)


KIND = Kind(
    name="sftp",
    role="destination",
    config=SftpDestinationConfig,
    build=_build,
    summary="a folder on a partner's SFTP server; uploaded under a temporary name, then renamed",
    example="{sftp: shop, folder: /in}",
    check=_check,
)
