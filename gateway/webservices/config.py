"""The ``services:`` section of gateway.yaml: each web service the gateway calls, described once.

A flow names a service (``source: {http: rakuten-fr, call: getnewsales}``); the service says
which API it speaks and in which environment variables its address and credentials are. The
values themselves never go into gateway.yaml, its backups or the journal: they are read from
the environment when a call is made, and a flow whose variables are not set does not run
(``gateway status`` names them).

Where public material on the Rakuten APIs is silent (rate limits, the version date of an
action, which error codes mean "this record" and which "the service"), the answer is a
setting here with a default, not a guess buried in code.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import DeliveryError
from ..i18n import _, ngettext

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Api = Literal["rakuten-fr", "rakuten-de"]

#: The version date each Rakuten France action is called with (rakuten-webservices.md).
FR_VERSIONS = {
    "getnewsales": "2014-02-11",
    "getcurrentsales": "2014-02-11",
    "acceptsale": "2010-09-20",
    "refusesale": "2010-09-20",
    "getshippinginformation": "2014-02-11",
    "settrackingpackageinfos": "2016-03-16",
    "genericimportfile": "2015-02-02",
    "genericimportreport": "2017-02-10",
}

#: Rakuten France error codes that say the *service* cannot be used now (credentials, quota, its own
#: trouble): the call waits and is tried again. Any other error of type "Sender" is about the record.
FR_SERVICE_ERRORS = ["InvalidUserRights", "InvalidLogin", "InvalidToken", "AuthenticationFailed",
                     "QuotaExceeded", "InternalError", "ServiceUnavailable", "TemporaryError"]

#: Rakuten.de error codes that are about the record sent (documented: 2210 product, 2310 variant not
#: found); every other code counts as trouble of the service, which waits and is tried again.
DE_RECORD_ERRORS = ["2210", "2310"]

#: Words Rakuten France's import report uses for a file that is completely processed (not public:
#: a setting). A report whose status is not among them is asked for again later.
FR_REPORT_DONE = ["Traité", "Traite", "Processed", "DONE", "OK"]


class ServiceConfig(BaseModel):
    """One web service: its API, where its address and credentials are, and how gently to call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: Api
    url_env: str  # the base address, e.g. https://ws.fr.shopping.rakuten.com/
    login_env: str | None = None  # rakuten-fr: the seller's login
    token_env: str | None = None  # rakuten-fr: the web-service token (not the web password)
    key_env: str | None = None  # rakuten-de: the API key
    calls_per_second: float = Field(default=2.0, ge=0)  # 0: no limit (only for tests and benchmarks)
    parallel_calls: int = Field(default=1, ge=1, le=16)  # calls of one delivery in flight at once
    timeout_seconds: float = Field(default=30.0, gt=0)  # connect, read, write and pool, each
    call_seconds: float = Field(default=300.0, gt=0)  # one call with its whole answer, at most
    retries: int = Field(default=3, ge=0)  # reading calls: tries after a 5xx, a timeout, a dropped connection
    backoff_seconds: float = Field(default=1.0, ge=0)  # the first wait between tries, doubled each time
    max_answer_mb: float = Field(default=200.0, gt=0)  # a larger answer is refused while it streams
    ca_file: str | None = None  # a CA bundle to trust (a company proxy); TLS is always verified
    per_page: int = Field(default=100, ge=1, le=1000)  # rakuten-de getOrders: orders per page
    versions: dict[str, str] = Field(default_factory=dict)  # rakuten-fr: action → version date
    service_errors: list[str] | None = None  # rakuten-fr: error codes of the service (default FR_SERVICE_ERRORS)
    record_errors: list[str] | None = None  # rakuten-de: error codes of the record (default DE_RECORD_ERRORS)
    report_done: list[str] = Field(default_factory=lambda: list(FR_REPORT_DONE))
    report_every_seconds: float = Field(default=30.0, gt=0)  # how often an import report is asked for
    report_wait_seconds: float = Field(default=120.0, ge=0)  # waited for in one run; then on the next run

    @field_validator("url_env", "login_env", "token_env", "key_env")
    @classmethod
    def _a_variable_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME.match(v):
            raise ValueError(_("'{value}' is not the name of an environment variable (letters, digits and '_', "
                               "e.g. RAKUTEN_FR_TOKEN); write the variable's name here, never its value").format(
                value=v))
        return v

    @model_validator(mode="after")
    def _credentials_of_the_api(self) -> ServiceConfig:
        if self.api == "rakuten-fr":
            missing = [n for n, v in (("login_env", self.login_env), ("token_env", self.token_env)) if not v]
            if missing:
                raise ValueError(_("a rakuten-fr service needs {names}: the environment variable(s) holding the "
                                   "seller's login and web-service token").format(names=_(" and ").join(missing)))
            if self.key_env:
                raise ValueError(_("key_env belongs to rakuten-de; rakuten-fr takes login_env and token_env"))
        else:
            if not self.key_env:
                raise ValueError(_("a rakuten-de service needs key_env: the environment variable holding the API key"))
            if self.login_env or self.token_env:
                raise ValueError(_("login_env and token_env belong to rakuten-fr; rakuten-de takes key_env"))
        unknown = sorted(set(self.versions) - set(FR_VERSIONS))
        if unknown:
            raise ValueError(_("versions: no action {names} (actions: {actions})").format(
                names=", ".join(unknown), actions=", ".join(FR_VERSIONS)))
        return self

    def variables(self) -> list[str]:
        """The environment variables this service needs, address first."""
        names = [self.url_env, self.login_env, self.token_env, self.key_env]
        return [n for n in names if n]

    def version(self, action: str) -> str:
        return self.versions.get(action) or FR_VERSIONS[action]

    @property
    def fr_service_errors(self) -> list[str]:
        return self.service_errors if self.service_errors is not None else list(FR_SERVICE_ERRORS)

    @property
    def de_record_errors(self) -> list[str]:
        return self.record_errors if self.record_errors is not None else list(DE_RECORD_ERRORS)


@dataclass(frozen=True)
class Credentials:
    """Address and credentials read from the environment at the moment of use; ``secret`` is never shown."""

    url: str
    login: str
    secret: str


def read_credentials(name: str, config: ServiceConfig) -> Credentials:
    """The service's address and credentials from the environment; ``DeliveryError`` naming what is missing."""
    missing = [v for v in config.variables() if not os.environ.get(v)]
    if missing:
        raise DeliveryError(ngettext(
            "web service {name}: the environment variable(s) {names} are not set; the calls wait until they are",
            "web service {name}: the environment variable(s) {names} are not set; the calls wait until they are",
            len(missing)).format(name=name, names=", ".join(missing)))
    url = os.environ[config.url_env].strip()
    problem = url_problem(url)
    if problem:
        raise DeliveryError(_("web service {name}: {variable} {problem}").format(
            name=name, variable=config.url_env, problem=problem))
    secret_env = config.token_env or config.key_env or ""
    login = os.environ.get(config.login_env, "") if config.login_env else ""
    return Credentials(url=url if url.endswith("/") else url + "/", login=login.strip(),
                       secret=os.environ[secret_env].strip())


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a web service's address, in words; ``None`` when it can.

    Only https, with the certificate verified; plain http only to this machine (the tests'
    local server), since credentials travel with every call.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return _("must be an https:// address such as https://ws.fr.shopping.rakuten.com/, not {value}").format(
            value=repr(url[:80]))
    if parts.username or parts.password:
        return _("must not hold a user name or password; credentials go into their own environment variables")
    if parts.query or parts.fragment:
        return _("must be the base address only, without '?' or '#'")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return _("must start with https://: credentials travel with every call, so plain http is refused "
                 "except to this machine")
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
