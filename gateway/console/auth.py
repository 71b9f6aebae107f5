"""Who may use the console, and what stops those who may not.

* Passwords are kept only as scrypt hashes (``hashlib.scrypt``, a random salt each); a
  login compares in constant time, and an unknown user costs the same time as a known one,
  so that timing does not tell which names exist.
* Sessions live in this process only (a restart logs everyone out): a random token in a
  cookie that scripts cannot read, sent by the browser to this site only (``SameSite=Strict``).
  A login gets a new token, so a token planted before it is worth nothing after.
* Every form that changes something carries the session's CSRF token.
* Failed logins are counted per address and per user name; past the limit, logins are
  refused for a while, even with the right password, so that guessing takes forever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["viewer", "operator"]

# scrypt's cost: 16 MiB and about 50 ms per login on this class of machine.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash``, what ``gateway console passwd`` writes into gateway.yaml."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


#: Checked against when a user name is unknown or has no password yet, so that the answer takes as long.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def check_login(users: dict[str, tuple[Role, str | None]], name: str, password: str) -> Role | None:
    """The user's role when ``password`` is theirs, else ``None``."""
    role, stored = users.get(name, ("viewer", None))
    ok = verify_password(password, stored or _DUMMY_HASH)
    return role if ok and stored is not None else None


@dataclass
class Session:
    token: str
    user: str | None  # None: not logged in yet (holds the login form's CSRF token)
    role: Role | None
    csrf: str
    expires: float
    flash: list[str] = field(default_factory=list)  # messages shown once, on the next page

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    """Sessions by token, kept in memory; expiry slides with use."""

    MAX = 2000  # beyond this many, the least recently used go first (a flood of anonymous visits)
    ANONYMOUS_SECONDS = 900.0

    def __init__(self, lifetime_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime_seconds
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str | None, role: Role | None) -> Session:
        lifetime = self.lifetime if user is not None else self.ANONYMOUS_SECONDS
        session = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), self.clock() + lifetime)
        with self._lock:
            if len(self._sessions) >= self.MAX:
                oldest = min(self._sessions.values(), key=lambda s: s.expires)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires < now:
                del self._sessions[token]
                return None
            if session.user is not None:
                session.expires = now + self.lifetime
            return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)


class LoginLimiter:
    """Failed logins per address and per user name within a window; past ``limit``, no login at all."""

    WINDOW = 15 * 60.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if t > now - self.WINDOW]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def wait_seconds(self, address: str, user: str) -> float:
        """0 when a login may be tried now, else how long until it may."""
        now = self.clock()
        with self._lock:
            waits = [oldest + self.WINDOW - now
                     for key in (f"addr:{address}", f"user:{user}")
                     if len(recent := self._recent(key, now)) >= self.limit
                     for oldest in [recent[-self.limit]]]
        return max(waits, default=0.0)

    def failed(self, address: str, user: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10_000:  # an address scan: forget the oldest rather than grow
                self._failures.clear()
            for key in (f"addr:{address}", f"user:{user}"):
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, address: str, user: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{user}", None)
