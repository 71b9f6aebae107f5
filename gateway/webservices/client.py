"""One HTTP client per web service: paced, bounded, verified, and careful with calls that change things.

What every call gets, whatever the API:

* **timeouts everywhere**: connect, read, write and pool each ``timeout_seconds``, and the whole
  call with its answer at most ``call_seconds`` (a server that sends a byte now and then never
  trips a read timeout);
* **TLS verified**, always; ``ca_file`` adds a company CA. Redirects are not followed (they could
  carry the credentials to another host);
* **a pace**: at most ``calls_per_second`` calls, for the whole engine (sources and destinations of
  a service share one client);
* **the answer bounded while it streams** (``max_answer_mb``), into memory or a file;
* **back-off**: a call that only *reads* is tried again after a 5xx, a timeout, a dropped connection
  or a broken answer, waiting ``backoff_seconds``, doubled each time, up to ``retries`` times. A call
  that *changes* something is tried again only when it certainly never reached the service (the
  connection could not be made). Otherwise its answer is lost, :class:`AnswerLost` says so, and the
  caller asks the service whether it took effect; it is never made again blindly;
* **no secrets in words**: the token or key is removed from every message this module makes, and
  httpx's own request log (which prints whole URLs) is silenced.

The errors, drawn once::

    DeliveryError                 (gateway.errors) the engine lets the input wait and tries again
    └── ServiceError              the service cannot be used now: down, 5xx, credentials refused, garbage
        └── AnswerLost            a call that changes something got no usable answer: ask, do not repeat
    RecordRefused                 the service refused this record (an item no longer to be accepted,
                                  an unknown article): the caller notes the reason and goes on
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import DeliveryError, GatewayError
from ..i18n import _, ngettext
from .answers import BrokenAnswer, Refusal, check_file, head_of, local, parse
from .config import Credentials, ServiceConfig, read_credentials

if TYPE_CHECKING:
    import httpx
    from lxml import etree

log = logging.getLogger("gateway")

for _noisy in ("httpx", "httpcore"):  # they log every request with its whole URL, query string and all
    logging.getLogger(_noisy).setLevel(logging.WARNING)


class ServiceError(DeliveryError):
    """The web service cannot be used now; what waits is tried again later."""


class AnswerLost(ServiceError):
    """A call that changes something may or may not have taken effect: the service must be asked."""


class RecordRefused(GatewayError):
    """The service refused this record; ``refusal`` says why in its own words."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.words())


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


@dataclass
class Answer:
    """A complete answer: small ones in ``body``, large ones (``to_file``) in ``path``."""

    status: int
    body: bytes = b""
    path: Path | None = None
    root: etree._Element | None = None  # the parsed small answer
    root_name: str = ""


# Called with (True, None) after a call the service answered and (False, words) when it could not be used.
Health = Callable[[bool, "str | None"], None]


class ServiceClient:
    """The calls to one web service (see the module docstring)."""

    def __init__(self, name: str, config: ServiceConfig, *, clock: Clock = SYSTEM_CLOCK, root: Path | None = None,
                 health: Health | None = None) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        self.root = root or Path()
        self.health = health
        self._http: httpx.Client | None = None
        self._credentials: Credentials | None = None
        self._next_call = 0.0
        self._lock = threading.Lock()
        self.calls = 0  # made by this client, for tests and benchmarks

    # -- credentials and words -------------------------------------------------------------------

    @property
    def credentials(self) -> Credentials:
        """Read from the environment on first use; after a refusal of the credentials, read again."""
        if self._credentials is None:
            self._credentials = read_credentials(self.name, self.config)
        return self._credentials

    def forget_credentials(self) -> None:
        """The service refused them: the next call reads the environment again (a renewed token)."""
        self._credentials = None

    def redact(self, words: str) -> str:
        """``words`` without the secret, however it was encoded."""
        secret = self._credentials.secret if self._credentials else ""
        if secret:
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                words = words.replace(form, "***")
        return words

    def describe(self) -> str:
        return _("web service {name}").format(name=self.name)

    # -- the call ---------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        *,
        what: str,
        changes: bool,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, Any, str]] | None = None,
        to_file: Path | None = None,
    ) -> Answer:
        """Make one call (see the module docstring for retries); the answer is well-formed XML.

        ``what`` names the call in messages (``acceptsale 260306083``). ``params`` go into the
        query string, ``data``/``files`` into a form body. Raises :class:`ServiceError` or
        :class:`AnswerLost`; the answer may still be an error answer of the API, which the
        caller reads.
        """
        attempt = 0
        while True:
            try:
                answer = self._once(method, path, params, data, files, to_file)
                self._healthy()
                return answer
            except _Retry as retry:
                lost = changes and not retry.never_sent
                words = self.redact(f"{self.describe()}: {what}: {retry.words}")
                if lost:
                    self._unhealthy(words)
                    raise AnswerLost(_("{error}; it may or may not have taken effect, so the service is asked "
                                       "before anything is sent again").format(error=words)) from None
                if attempt >= self.config.retries or retry.final:
                    self._unhealthy(words)
                    raise ServiceError(ngettext("{error} ({count} tries)", "{error} ({count} tries)",
                                                attempt + 1).format(error=words, count=attempt + 1)) from None
                wait = self.config.backoff_seconds * (2 ** attempt)
                log.debug("%s; trying again in %.1f s", words, wait)
                self.clock.sleep(wait)
                attempt += 1
                if files:  # an upload's file object was read to its end by the failed attempt
                    for _name, (_fname, fh, _ctype) in files.items():
                        if hasattr(fh, "seek"):
                            fh.seek(0)

    def _once(self, method: str, path: str, params: dict[str, str], data: dict[str, str] | None,
              files: dict[str, tuple[str, Any, str]] | None, to_file: Path | None) -> Answer:
        import httpx

        url = self.credentials.url + path.lstrip("/")
        client = self._client()
        self._pace()
        self.calls += 1
        limit = int(self.config.max_answer_mb * 1024 * 1024)
        deadline = self.clock.monotonic() + self.config.call_seconds
        try:
            with client.stream(method, url, params=params, data=data, files=files) as response:
                if 300 <= response.status_code < 400:
                    raise _Retry(_("answered with a redirect (HTTP {status}), which is not followed; check the "
                                   "address in the environment variable").format(status=response.status_code),
                                 never_sent=True, final=True)
                if response.status_code >= 500:
                    raise _Retry(_("answered HTTP {status} (trouble on the service's side)").format(
                        status=response.status_code))
                answer = Answer(status=response.status_code)
                if to_file is not None:
                    to_file.parent.mkdir(parents=True, exist_ok=True)
                    with open(to_file, "wb") as sink:
                        self._receive(response, sink.write, limit, deadline)
                    answer.path = to_file
                else:
                    chunks: list[bytes] = []
                    self._receive(response, chunks.append, limit, deadline)
                    answer.body = b"".join(chunks)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Retry(_("cannot be reached ({error})").format(error=_words(exc)), never_sent=True) from None
        except httpx.TimeoutException:
            raise _Retry(_("did not answer within {seconds:g} s").format(seconds=self.config.timeout_seconds)) \
                from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            raise _Retry(_("closed the connection before the answer was complete ({error})").format(
                error=_words(exc))) from None
        except _TooLarge:
            raise _Retry(_("sent an answer larger than {mb:g} MB; it was not read").format(
                mb=self.config.max_answer_mb), final=True) from None
        except _TooSlow:
            raise _Retry(_("took more than {seconds:g} s for one answer").format(
                seconds=self.config.call_seconds)) from None
        except httpx.HTTPError as exc:
            raise _Retry(_("failed ({error})").format(error=_words(exc))) from None
        except OSError as exc:
            raise ServiceError(self.redact(_("{service}: the answer cannot be stored: {error}").format(
                service=self.describe(), error=exc))) from None
        try:
            if answer.path is not None:
                head = head_of(answer.path)
                answer.root = head
                answer.root_name = local(head.tag) if head is not None else check_file(answer.path)
            else:
                answer.root = parse(answer.body)
                answer.root_name = local(answer.root.tag)
        except BrokenAnswer as exc:
            raise _Retry(_("sent a broken answer (HTTP {status}): {error}").format(status=answer.status,
                                                                                  error=exc)) from None
        return answer

    def _receive(self, response: httpx.Response, write: Callable[[bytes], Any], limit: int,
                 deadline: float) -> None:
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            if self.clock.monotonic() > deadline:
                raise _TooSlow
            write(chunk)

    # -- pace, connection, health -------------------------------------------------------------------

    def _pace(self) -> None:
        per_second = self.config.calls_per_second
        if per_second <= 0:
            return
        with self._lock:
            now = self.clock.monotonic()
            start = max(now, self._next_call)
            self._next_call = start + 1.0 / per_second
        if start > now:
            self.clock.sleep(start - now)

    def _client(self) -> httpx.Client:
        """One httpx client (a pool of keep-alive connections; it drops a broken one by itself), shared by
        the threads of parallel calls."""
        with self._lock:
            return self._make_client()

    def _make_client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            t = self.config.timeout_seconds
            verify: ssl.SSLContext | bool = True
            if self.config.ca_file:
                verify = ssl.create_default_context(cafile=str(self.root / self.config.ca_file))
            self._http = httpx.Client(
                timeout=httpx.Timeout(connect=t, read=t, write=t, pool=t), verify=verify, follow_redirects=False,
                trust_env=False, headers={"User-Agent": "gateway (Sage Office Line - Rakuten)"},
            )
        return self._http


    def _healthy(self) -> None:
        if self.health is not None:
            self.health(True, None)

    def _unhealthy(self, words: str) -> None:
        if self.health is not None:
            self.health(False, words)

    def refused(self, words: str) -> ServiceError:
        """The service refused to work (credentials, quota): recorded as its health, raised by the caller."""
        self._unhealthy(words)
        return ServiceError(words)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


class _Retry(Exception):
    """An attempt failed in a way that may pass; ``final`` ones are not tried again."""

    def __init__(self, words: str, *, never_sent: bool = False, final: bool = False) -> None:
        super().__init__(words)
        self.words = words
        self.never_sent = never_sent
        self.final = final


def _words(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def expect(client: ServiceClient, answer: Answer, root: str, what: str, refusal: Refusal | None) -> None:
    """Raise unless ``answer`` is the result element ``root``: a refusal is raised as :class:`RecordRefused`
    (the caller turns refusals of the service into :class:`ServiceError`), anything else as ServiceError."""
    if refusal is not None:
        raise RecordRefused(refusal)
    if answer.root_name != root:
        raise client.refused(client.redact(
            _("{service}: {call}: answered <{answer}> (HTTP {status}) instead of <{expected}>").format(
                service=client.describe(), call=what, answer=answer.root_name or "?", status=answer.status,
                expected=root)))
