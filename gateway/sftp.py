"""SFTP connections to partners (paramiko).

A partner's server is trusted only through the partner's own known_hosts file: an unknown
or a changed host key refuses the connection (``RejectPolicy``, never ``AutoAddPolicy``),
and the message says what to do. Onboarding a partner is ``gateway sftp trust PARTNER``,
built from :func:`fetch_host_key`, :func:`key_fingerprint` and :func:`trust`: show the
fingerprint, let the admin compare it with the one the partner gave them, then record
exactly the key that was shown.

Authentication is by key file only (no agent, no keys from ~/.ssh). A key's passphrase
comes from the environment variable the configuration names, never from the YAML.

Every wait is bounded (connect, banner, authentication, channel opening, each SFTP
answer) and a keepalive runs, so that a dead peer cannot hang a run. :meth:`SftpEndpoint.run`
does one step of work with a live session and, when the connection breaks, reconnects
once and does the step again: the steps of destinations and sources are idempotent.

One endpoint, like one paramiko ``SFTPClient``, belongs to one thread.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from paramiko.ssh_exception import NoValidConnectionsError

from .errors import DeliveryError
from .i18n import _

log = logging.getLogger("gateway")

T = TypeVar("T")

#: What a broken or unreachable connection raises in paramiko.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (paramiko.SSHException, EOFError, OSError, socket.timeout)

#: errno values that mean the network connection, not a remote file, is the problem.
NETWORK_ERRNOS = frozenset({
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ESHUTDOWN,
})

KEEPALIVE_SECONDS = 30


def known_hosts_name(host: str, port: int) -> str:
    """The name a host has in known_hosts: ``host`` for port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def key_fingerprint(key: Any) -> str:
    """``SHA256:…`` of a public key, as ``ssh-keygen -l`` and OpenSSH's clients show it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _UnknownHostKey(paramiko.SSHException):  # type: ignore[misc]  # paramiko is untyped
    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(f"host key of {hostname} not in known_hosts")
        self.hostname = hostname
        self.key = key


class _RejectUnknown(paramiko.RejectPolicy):  # type: ignore[misc]  # paramiko is untyped
    """RejectPolicy that keeps the offered key, so that the message can show its fingerprint."""

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise _UnknownHostKey(hostname, key)


class SftpEndpoint:
    """One partner's SFTP server, account and trust settings; connects lazily and reconnects."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        key_file: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        passphrase_env: str | None = None,
        timeout: float = 15,
        *,
        partner: str | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.key_file = Path(key_file)
        self.known_hosts = Path(known_hosts)
        self.passphrase_env = passphrase_env
        self.timeout = timeout
        self.partner = partner  # the name in gateway.yaml, for the advice in messages
        self.retry_delay = retry_delay
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # -- words -------------------------------------------------------------------------------------

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sftp://{self.user}@{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.describe() + (path if path.startswith("/") else "/" + path)

    def _partner_name(self) -> str:
        return self.partner or "PARTNER"

    def _connection_words(self, exc: BaseException) -> str:
        if isinstance(exc, NoValidConnectionsError):
            inner = list(exc.errors.values())
            if inner and all(isinstance(e, ConnectionRefusedError) for e in inner):
                return _("the connection was refused (is the SFTP server running, is the port right?)")
            if not inner:
                return str(exc)
            return _("no connection: {errors}").format(errors="; ".join(sorted({_os_words(e) for e in inner})))
        if isinstance(exc, socket.gaierror):
            return _("the host name {host} cannot be resolved ({error})").format(host=repr(self.host),
                                                                                error=exc.strerror)
        if isinstance(exc, TimeoutError):
            return _("no answer within {seconds} seconds").format(seconds=f"{self.timeout:g}")
        if isinstance(exc, ConnectionRefusedError):
            return _("the connection was refused (is the SFTP server running, is the port right?)")
        if isinstance(exc, EOFError):
            return _("the server closed the connection")
        if isinstance(exc, paramiko.SSHException):
            text = str(exc) or type(exc).__name__
            if "banner" in text.lower():
                return _("no SSH greeting from the server ({error}: is it an SFTP server, is the port right?)").format(
                    error=text)
            return _("the connection broke ({error})").format(error=text)
        if isinstance(exc, OSError):
            return _os_words(exc)
        return str(exc) or type(exc).__name__

    # -- connecting --------------------------------------------------------------------------------

    def _passphrase(self) -> str | None:
        if not self.passphrase_env:
            return None
        value = os.environ.get(self.passphrase_env)
        if value is None:
            raise DeliveryError(_(
                "the passphrase of the SFTP key {file} is expected in the environment variable {variable}, which is "
                "not set").format(file=self.key_file, variable=self.passphrase_env))
        return value

    def _load_key(self) -> Any:
        passphrase = self._passphrase()
        try:
            # Positional: the parameter is "passphrase" in paramiko 3, "password" in 4 and later; bytes for both.
            return paramiko.PKey.from_path(self.key_file, None if passphrase is None else passphrase.encode())
        except OSError as exc:
            raise DeliveryError(_("the SFTP key {file} cannot be read: {error}").format(
                file=self.key_file, error=_os_words(exc))) from None
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            if passphrase is None and (
                isinstance(exc, paramiko.PasswordRequiredException) or "password" in str(exc).lower()
            ):
                raise DeliveryError(_(
                    "the SFTP key {file} is protected by a passphrase: name the environment variable that holds it "
                    "(passphrase_env) in the partner's settings").format(file=self.key_file)) from None
            detail = _("wrong passphrase") if passphrase is not None else str(exc) or type(exc).__name__
            raise DeliveryError(_(
                "the SFTP key {file} cannot be loaded ({error}); keys must be OpenSSH or PEM ed25519, ECDSA or RSA "
                "keys").format(file=self.key_file, error=detail)) from None

    def connect(self) -> paramiko.SFTPClient:
        """Open a new connection and SFTP session (closing any old one); raise ``DeliveryError``."""
        self.close()
        key = self._load_key()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RejectUnknown())
        if self.known_hosts.exists():
            try:
                client.load_host_keys(str(self.known_hosts))  # only the partner's own file, never ~/.ssh
            except Exception as exc:  # OSError, InvalidHostKey, binascii.Error...
                raise DeliveryError(_("the known_hosts file {file} cannot be read: {error}").format(
                    file=self.known_hosts, error=exc)) from None
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                pkey=key,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                look_for_keys=False,
                allow_agent=False,
            )
            transport = client.get_transport()
            transport.set_keepalive(KEEPALIVE_SECONDS)
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.timeout)
        except _UnknownHostKey as exc:
            client.close()
            words = _(
                "{server}: the server's host key is not known ({type} {fingerprint} is not in {file}); the connection "
                "was refused. Run 'gateway sftp trust {partner}' to review the server's fingerprint and record it "
                "after comparing it with the fingerprint the partner gave you") if self.known_hosts.exists() else _(
                "{server}: the server's host key is not known ({type} {fingerprint} is not in {file}, which does not "
                "exist yet); the connection was refused. Run 'gateway sftp trust {partner}' to review the server's "
                "fingerprint and record it after comparing it with the fingerprint the partner gave you")
            raise DeliveryError(words.format(
                server=self.describe(), type=exc.key.get_name(), fingerprint=key_fingerprint(exc.key),
                file=self.known_hosts, partner=self._partner_name())) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise DeliveryError(_(
                "{server}: the server's host key has CHANGED: it now shows {type} {fingerprint}, {file} expects "
                "{expected}. This may mean an attack (someone between you and the partner); the connection was "
                "refused. Check with the partner by phone or another channel whether they changed their server's "
                "key; only then run 'gateway sftp trust {partner}' to review the server's fingerprint and record "
                "it").format(server=self.describe(), type=exc.key.get_name(), fingerprint=key_fingerprint(exc.key),
                             file=self.known_hosts, expected=key_fingerprint(exc.expected_key),
                             partner=self._partner_name())) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise DeliveryError(_(
                "{server}: the server refused the key {file} for user {user} ({error}); check that the partner has "
                "installed the matching public key for this account").format(
                    server=self.describe(), file=self.key_file, user=repr(self.user), error=exc)) from None
        except CONNECTION_ERRORS as exc:
            client.close()
            raise DeliveryError(_("cannot connect to {server}: {error}").format(
                server=self.describe(), error=self._connection_words(exc))) from None
        self._client = client
        self._sftp = sftp
        log.debug("connected to %s", self.describe())
        return sftp

    def _alive(self) -> bool:
        if self._client is None or self._sftp is None:
            return False
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            return False
        channel = self._sftp.get_channel()
        return channel is not None and not channel.closed and not channel.eof_received

    def sftp(self) -> paramiko.SFTPClient:
        """The live SFTP session, connecting (again) when there is none or it is known to be dead."""
        if self._sftp is not None and self._alive():
            return self._sftp
        return self.connect()

    def reset_session(self) -> None:
        """Replace the SFTP session on the same connection (drops open handles and unread answers)."""
        if self._client is None or self._sftp is None:
            return
        with contextlib.suppress(Exception):
            self._sftp.close()
        self._sftp = None
        try:
            sftp = self._client.open_sftp()
            sftp.get_channel().settimeout(self.timeout)
        except CONNECTION_ERRORS:
            self.close()  # the next step connects afresh
            return
        self._sftp = sftp

    def close(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def __enter__(self) -> SftpEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- doing work --------------------------------------------------------------------------------

    def is_broken(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is gone (as opposed to a remote file problem)."""
        if isinstance(exc, (paramiko.SSHException, paramiko.SFTPError, EOFError, TimeoutError)):
            return True
        if isinstance(exc, OSError):
            # SFTP status answers (no such file, permission denied, failure) arrive as OSError too,
            # but on a connection that is still alive.
            return exc.errno in NETWORK_ERRNOS or not self._alive()
        return False

    def run(self, what: str, step: Callable[[paramiko.SFTPClient], T]) -> T:
        """Do ``step`` with a live session; on a broken connection reconnect once and do it again.

        Raises ``DeliveryError`` when the server cannot be reached or the connection breaks
        twice. Remote file problems (``FileNotFoundError``, ``PermissionError``, other
        ``OSError``) are raised unchanged for the caller to put into words.
        """
        try:
            sftp = self.sftp()
        except DeliveryError as exc:
            raise DeliveryError(f"{what}: {exc}") from None
        try:
            return step(sftp)
        except (paramiko.SSHException, paramiko.SFTPError, EOFError, OSError) as exc:
            if not self.is_broken(exc):
                raise
            log.warning(_("{action}: {server}: {error}; reconnecting").format(
                action=what, server=self.describe(), error=self._connection_words(exc)))
        self.close()
        time.sleep(self.retry_delay)
        try:
            sftp = self.connect()
        except DeliveryError as exc:
            raise DeliveryError(_("{action}: the connection broke and {error}").format(
                action=what, error=exc)) from None
        try:
            return step(sftp)
        except (paramiko.SSHException, paramiko.SFTPError, EOFError, OSError) as exc:
            if not self.is_broken(exc):
                raise
            self.close()
            raise DeliveryError(_(
                "{action}: the connection to {server} broke again after reconnecting: {error}").format(
                    action=what, server=self.describe(), error=self._connection_words(exc))) from None


def _os_words(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def fetch_host_key(host: str, port: int = 22, timeout: float = 15) -> Any:
    """The host key the server at ``host:port`` presents, fetched without authenticating."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise DeliveryError(_("the host name {host} cannot be resolved ({error})").format(
            host=repr(host), error=exc.strerror)) from None
    except TimeoutError:
        raise DeliveryError(_("cannot connect to {server}: no answer within {seconds} seconds").format(
            server=where, seconds=f"{timeout:g}")) from None
    except OSError as exc:
        raise DeliveryError(_("cannot connect to {server}: {error}").format(
            server=where, error=_os_words(exc))) from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except CONNECTION_ERRORS as exc:
        raise DeliveryError(_("{server} did not complete the SSH greeting: {error}").format(
            server=where, error=exc or type(exc).__name__)) from None
    finally:
        transport.close()


def fingerprint(host: str, port: int = 22, timeout: float = 15) -> tuple[str, str]:
    """``(key type, "SHA256:…")`` of the server's host key, fetched without authenticating.

    To record a key after the admin confirmed it, fetch it once with :func:`fetch_host_key`,
    show :func:`key_fingerprint` and pass that same key to :func:`trust`.
    """
    key = fetch_host_key(host, port, timeout)
    return key.get_name(), key_fingerprint(key)


def _names_host(field: str, name: str) -> bool:
    if field.startswith("|1|"):
        with contextlib.suppress(Exception):
            return bool(paramiko.HostKeys.hash_host(name, field) == field)
        return False
    return field == name


def trust(known_hosts: str | os.PathLike[str], host: str, port: int, key: Any) -> str:
    """Record ``key`` for ``host:port`` in ``known_hosts``; return the line written.

    An older key of the same type for the same host is replaced (after the admin checked
    the change with the partner); other lines, comments and hashed entries stay.
    """
    path = Path(known_hosts)
    name = known_hosts_name(host, port)
    key_type = key.get_name()
    entry = f"{name} {key_type} {key.get_base64()}"
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) < 3 or line.lstrip().startswith("#") or fields[0].startswith("@"):
                kept.append(line)
                continue
            hosts = fields[0].split(",")
            if fields[1] != key_type or not any(_names_host(h, name) for h in hosts):
                kept.append(line)
                continue
            others = [h for h in hosts if not _names_host(h, name)]
            if others:
                kept.append(" ".join([",".join(others), *fields[1:]]))
    kept.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(kept) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return entry
