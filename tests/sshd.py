"""A real OpenSSH sshd on loopback, for the SFTP tests and the SFTP benchmark.

``Sshd.create()`` makes a fresh folder under /tmp (mode 0755, not pytest's ``tmp_path``, which
other users cannot read), generates an ed25519 host key and a client key, writes an sshd_config
as described in ENGINEERING.md ("A real SFTP server in the tests") and starts
``/usr/sbin/sshd -D -e -f <config>`` in the foreground. It is ready when its log says
"Server listening". ``stop()``, ``kill()`` (SIGKILL: a crashed server) and ``start()`` again
on the same port with the same keys serve the fault tests; ``cleanup()`` stops it and removes
the folder.

Where sshd is missing (or cannot start), ``create()`` raises ``SshdUnavailable`` and the SFTP tests
are skipped with a reason that says how to get them to run (``.ci/install-sshd``). In CI
(``CI=true`` in the environment) it raises ``SshdRequired`` instead, which no test catches: there a
missing sshd fails the run rather than skipping a third of what proves the SFTP guarantees.

The helper does not need pytest; the ``sshd`` fixture at the end does. Test modules use it as::

    from sshd import sshd_fixture  # noqa: F401 - provides the "sshd" fixture

(``from sshd import sshd`` works as well, but then ruff reports F811 at every test that
takes the ``sshd`` argument, since the argument shadows the imported name.)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
READY_TEXT = "Server listening"


INSTALL_HINT = "run .ci/install-sshd (installs Debian's openssh-server; as root or with sudo), then the tests again"


class SshdUnavailable(Exception):
    """sshd is not installed (run .ci/install-sshd) or cannot be started here: the SFTP tests are skipped."""


class SshdRequired(RuntimeError):
    """sshd is unavailable where it must be there (``CI=true``): an error, never a skip."""


def required() -> bool:
    """Whether a missing sshd is an error: in CI, which sets ``CI=true`` (GitHub Actions, GitLab CI, …)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, comment: str, passphrase: str = "") -> Path:
    """Generate an ed25519 key pair at ``path`` (and ``path.pub``); return ``path``."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True, capture_output=True, timeout=30,
    )
    return path


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (sshd's per-connection processes), deepest last."""
    tree = _children_by_parent()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Sshd:
    """One sshd serving SFTP from ``root`` to ``user`` with ``client_key``."""

    host = "127.0.0.1"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.port = free_port()
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.host_key = base / "ssh_host_ed25519_key"
        self.client_key = base / "client_ed25519"
        self.authorized_keys = base / "authorized_keys"
        self.known_hosts = base / "known_hosts"
        self.config = base / "sshd_config"
        self.log_path = base / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- set-up ------------------------------------------------------------------------------------

    @classmethod
    def create(cls, start: bool = True) -> Sshd:
        """A fresh server (started unless ``start=False``); see the module docstring for a missing sshd."""
        try:
            return cls._create(start)
        except SshdUnavailable as exc:
            if required():
                raise SshdRequired(f"CI=true, and the SFTP tests cannot run: {exc}") from None
            raise

    @classmethod
    def _create(cls, start: bool) -> Sshd:
        if not SSHD.exists():
            raise SshdUnavailable(f"the SFTP tests need OpenSSH's sshd, and {SSHD} is missing: {INSTALL_HINT}")
        if shutil.which(SSH_KEYGEN) is None:
            raise SshdUnavailable(f"the SFTP tests need ssh-keygen, which is missing: {INSTALL_HINT}")
        base = Path(tempfile.mkdtemp(prefix="gateway-sshd-", dir="/tmp"))
        os.chmod(base, 0o755)  # noqa: S103 - sshd's sessions and other users must be able to enter it
        server = cls(base)
        try:
            server._prepare()
            if start:
                server.start()
        except BaseException:
            server.cleanup()
            raise
        return server

    def _prepare(self) -> None:
        self.root.mkdir(mode=0o755)
        keygen(self.host_key, "gateway-test-host")
        keygen(self.client_key, "gateway-test-client")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        host_pub = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config.write_text(
            "\n".join([
                f"ListenAddress {self.host}",
                f"Port {self.port}",
                f"HostKey {self.host_key}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "AuthenticationMethods publickey",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM yes",  # with "no", accounts whose password field is '*' count as locked
                "StrictModes no",  # the files are under /tmp
                "PidFile none",
                "Subsystem sftp internal-sftp",
                f"ForceCommand internal-sftp -d {self.root}",
                "LogLevel VERBOSE",
                "",
            ])
        )
        if os.geteuid() == 0:
            # As root, sshd's privilege separation wants its empty chroot folder.
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    def authorize(self, public_key: Path) -> None:
        """Accept one more client key (e.g. a passphrase-protected one)."""
        with open(self.authorized_keys, "a", encoding="utf-8") as fh:
            fh.write(public_key.read_text())

    # -- running -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start sshd (again: same port, same keys) and wait until it listens."""
        if self.running:
            return
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_TEXT in self.log(since_start=True):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        text = self.log(since_start=True)
        self.stop()
        raise SshdUnavailable(f"sshd did not start (exit status {self.proc.returncode}); its log:\n{text}")

    def log(self, since_start: bool = False) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[self._log_offset if since_start else 0 :].decode("utf-8", "replace")

    def _signal_all(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the listener's per-connection processes (they outlive it), then to it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGSTOP)  # no new connections while the tree is read
        for pid in reversed(descendants(self.proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
            if sig != signal.SIGKILL:
                os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate sshd and its open sessions (by their own pids) and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_all(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_all(signal.SIGKILL)
                self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL sshd and its sessions: the server crashes, connections drop without goodbye."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._signal_all(signal.SIGKILL)
        self.proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- what clients need -------------------------------------------------------------------------

    def host_public_key(self) -> tuple[str, str]:
        """(key type, base64) of the host key."""
        key_type, data = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()[:2]
        return key_type, data

    def host_fingerprint(self) -> str:
        """``SHA256:…`` as ssh-keygen prints it."""
        out = subprocess.run(
            [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(self.host_key)],
            check=True, capture_output=True, text=True, timeout=30,
        ).stdout
        return out.split()[1]


try:
    import pytest
except ImportError:  # the helper works without pytest (bench/sftp_pull.py)
    pass
else:

    @pytest.fixture(name="sshd")
    def sshd_fixture() -> Iterator[Sshd]:
        """A fresh sshd for one test; skipped (saying how to install it) where sshd is missing, failed in CI."""
        try:
            server = Sshd.create()
        except SshdUnavailable as exc:
            pytest.skip(str(exc))
        try:
            yield server
        finally:
            server.cleanup()

    sshd = sshd_fixture
