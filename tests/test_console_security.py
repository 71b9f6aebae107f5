"""The console's defences, against the real server over HTTP: login, roles, CSRF, downloads by id only,
the login limiter, security headers, the upload limit, the host check, TLS cookies and the passwd command."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import Install, order_xml, orders_file
from consoleserver import console_server

from gateway.console.auth import hash_password, verify_password

PASSWORDS = {"anna": "anna-secret-1", "olga": "olga-secret-1"}
HASHES = {name: hash_password(pw) for name, pw in PASSWORDS.items()}


def _users_yaml(listen: str = "127.0.0.1", tls: str = "") -> str:
    return (f"console:\n  listen: {listen}\n  login_attempts: 5\n{tls}  users:\n"
            f"    anna: {{ role: viewer, password_hash: \"{HASHES['anna']}\" }}\n"
            f"    olga: {{ role: operator, password_hash: \"{HASHES['olga']}\" }}\n")


class Clock:
    """A monotonic clock the test moves by hand (the login limiter's window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secured(install: Install) -> Install:
    """An installation with one quarantined input (id 1) and one delivered (id 2), and two console users."""
    with open(install.config, "a", encoding="utf-8") as fh:
        fh.write(_users_yaml())
    install.drop("bad.xml", orders_file(order_xml("111-222-333", payment="XYZ")))
    install.drop("good.xml", orders_file(order_xml("444-555-666")))
    assert install.cli("run", "--once").exit_code == 1  # in this process: the console is what is tested here
    return install


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def base(secured: Install, clock: Clock) -> Iterator[str]:
    with console_server(secured.config, clock=clock) as url:
        yield url


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@contextmanager
def _login(base: str, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base) as client:
        token = _csrf(client, "/login")
        answer = client.post("/login", data={"csrf": token, "user": user, "password": PASSWORDS[user]})
        assert answer.status_code == 303, answer.text
        yield client


def test_a_page_without_a_login_leads_to_the_login_page(base: str) -> None:
    answer = httpx.get(f"{base}/quarantine")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/quarantine"
    assert httpx.get(f"{base}/api/overview").status_code == 303


def test_a_post_without_a_csrf_token_is_refused_and_nothing_is_done(base: str, secured: Install) -> None:
    with _login(base, "olga") as client:
        answer = client.post("/inputs/1/retry", data={})
        assert answer.status_code == 403
        assert "nothing was done" in answer.text
        answer = client.post("/inputs/1/retry", data={"csrf": "forged"})
        assert answer.status_code == 403
        assert '<span class="state state-failed"' in client.get("/inputs/1").text
    assert list((secured.quarantine / "rakuten-orders").glob("1--bad.xml"))


def test_a_post_from_another_site_is_refused_even_with_a_token(base: str) -> None:
    with _login(base, "olga") as client:
        token = _csrf(client, "/inputs/1")
        answer = client.post("/inputs/1/notes", data={"csrf": token, "text": "x"},
                             headers={"Origin": "https://evil.example"})
        assert answer.status_code == 403


def test_a_viewer_pressing_retry_is_refused_and_the_input_stays_quarantined(base: str, secured: Install) -> None:
    with _login(base, "anna") as client:
        page = client.get("/inputs/1")
        assert "Retry" not in page.text  # no button for a viewer …
        token = _csrf(client, "/inputs/1")
        answer = client.post("/inputs/1/retry", data={"csrf": token})  # … and pressing one anyway does nothing
        assert answer.status_code == 403
        assert "operator" in answer.text
        assert client.post("/inputs/1/notes", data={"csrf": token, "text": "hello"}).status_code == 403
        assert '<span class="state state-failed"' in client.get("/inputs/1").text
    assert list((secured.quarantine / "rakuten-orders").glob("1--bad.xml"))


def test_an_operator_retries_and_writes_a_note(base: str, secured: Install) -> None:
    with _login(base, "olga") as client:
        token = _csrf(client, "/inputs/1")
        assert client.post("/inputs/1/notes", data={"csrf": token, "text": "asked the shop"}).status_code == 303
        assert client.post("/inputs/1/retry", data={"csrf": token}).status_code == 303
        page = client.get("/inputs/1").text
        assert "will be processed by the next run" in page
        assert "asked the shop" in page and "olga" in page
    assert not list((secured.quarantine / "rakuten-orders").glob("1--bad.xml"))


@pytest.mark.parametrize("path", [
    "/outputs/../../../etc/passwd", "/outputs/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/outputs/1/file/../../../etc/passwd",
"/outputs//etc/passwd", "/outputs/-1/file", "/outputs/99999/file",
    "/static/../gateway.yaml", "/static/%2e%2e/app.py",
])
def test_a_path_in_a_download_url_serves_nothing(base: str, path: str) -> None:
    with _login(base, "anna") as client:
        answer = client.get(path)
        assert answer.status_code in (303, 404), answer.status_code
        assert "root:" not in answer.text and "password_hash" not in answer.text and "import" not in answer.text


def test_downloads_go_by_journal_id_to_the_files_the_journal_names(base: str, secured: Install) -> None:
    with _login(base, "anna") as client:
        output = client.get("/outputs/1/file")
        assert output.status_code == 200
        assert output.headers["content-disposition"].startswith("attachment")
        assert output.content == secured.outputs()[0].read_bytes()
        quarantined = (secured.quarantine / "rakuten-orders" / "1--bad.xml").read_bytes()
        assert client.get("/inputs/1/file").content == quarantined
        assert client.get("/inputs/1/file?path=/etc/passwd").content == quarantined  # a path is not even read


def test_ten_wrong_passwords_lock_the_login_even_for_the_right_one(base: str, clock: Clock) -> None:
    client = httpx.Client(base_url=base)
    token = _csrf(client, "/login")
    codes = [client.post("/login", data={"csrf": token, "user": "olga", "password": f"guess-{i}"}).status_code
             for i in range(10)]
    assert codes == [401] * 5 + [429] * 5
    right = client.post("/login", data={"csrf": token, "user": "olga", "password": PASSWORDS["olga"]})
    assert right.status_code == 429
    assert "Too many failed logins" in right.text
    clock.now += 15 * 60 + 1  # the window has passed (and the login form with it: a new one)
    token = _csrf(client, "/login")
    right = client.post("/login", data={"csrf": token, "user": "olga", "password": PASSWORDS["olga"]})
    assert right.status_code == 303


def test_failed_logins_from_one_address_lock_other_user_names_too(base: str) -> None:
    client = httpx.Client(base_url=base)
    token = _csrf(client, "/login")
    for i in range(5):
        client.post("/login", data={"csrf": token, "user": f"nobody{i}", "password": "x"})
    assert client.post("/login", data={"csrf": token, "user": "anna",
                                       "password": PASSWORDS["anna"]}).status_code == 429


def test_a_login_without_its_form_token_is_refused(base: str) -> None:
    client = httpx.Client(base_url=base)
    client.get("/login")
    answer = client.post("/login", data={"user": "olga", "password": PASSWORDS["olga"]})
    assert answer.status_code == 403


def test_a_login_gets_a_new_session_token(base: str) -> None:
    client = httpx.Client(base_url=base)
    token = _csrf(client, "/login")
    before = client.cookies["gateway_console"]
    client.post("/login", data={"csrf": token, "user": "olga", "password": PASSWORDS["olga"]})
    assert client.cookies["gateway_console"] != before
    stolen = httpx.Client(base_url=base, cookies={"gateway_console": before})
    assert stolen.get("/").status_code == 303  # the token from before the login logs no one in


def test_after_a_login_only_pages_of_this_console_are_followed(base: str) -> None:
    client = httpx.Client(base_url=base)
    client.get("/login?next=//evil.example/x")
    token = _csrf(client, "/login?next=//evil.example/x")
    answer = client.post("/login?next=//evil.example/x",
                         data={"csrf": token, "user": "anna", "password": PASSWORDS["anna"]})
    assert answer.headers["location"] == "/"


def test_every_answer_carries_the_security_headers_and_the_cookie_is_httponly_and_strict(base: str) -> None:
    answer = httpx.get(f"{base}/login")
    for path in ("/login", "/static/console.css", "/no-such-page"):
        headers = httpx.get(f"{base}{path}").headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text  # no inline scripts


def test_a_loopback_console_refuses_another_host_name(base: str) -> None:
    answer = httpx.get(f"{base}/login", headers={"Host": "rebound.evil.example"})
    assert answer.status_code == 400


def test_an_upload_over_the_limit_is_refused(secured: Install) -> None:
    text = secured.config.read_text(encoding="utf-8").replace("  login_attempts: 5\n",
                                                               "  login_attempts: 5\n  upload_mb: 0.1\n")
    secured.config.write_text(text, encoding="utf-8")
    with console_server(secured.config) as url, _login(url, "anna") as client:
        token = _csrf(client, "/try")
        answer = client.post("/try", data={"csrf": token, "flow": "rakuten-orders"},
                             files={"file": ("big.xml", b"<a>" + b"x" * 300_000 + b"</a>")})
        assert answer.status_code == 413
        assert "larger than the console takes" in answer.text


def test_an_uploaded_file_is_converted_in_a_temporary_folder_that_is_removed(base: str) -> None:
    before = set(Path(tempfile.gettempdir()).glob("gateway-console-upload-*"))
    with _login(base, "anna") as client:
        token = _csrf(client, "/try")
        answer = client.post("/try", data={"csrf": token, "flow": "rakuten-orders"},
                             files={"file": ("../../evil.xml", orders_file(order_xml("777-888-999")).encode())})
        assert answer.status_code == 200
        assert "777-888-999" in answer.text
    assert set(Path(tempfile.gettempdir()).glob("gateway-console-upload-*")) == before


def test_a_console_beyond_loopback_without_users_does_not_start(install: Install) -> None:
    with open(install.config, "a", encoding="utf-8") as fh:
        fh.write("console:\n  listen: 0.0.0.0\n")
    result = install.process("console", timeout=30)
    assert result.returncode == 2
    assert "no user has a password" in result.stderr


def test_over_tls_the_cookie_is_secure_and_strict_transport_is_asked_for(secured: Install, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    text = secured.config.read_text(encoding="utf-8").replace(
        "  login_attempts: 5\n", f"  login_attempts: 5\n  tls: {{ certificate: {cert}, key: {key} }}\n")
    secured.config.write_text(text, encoding="utf-8")
    with console_server(secured.config, ssl=(str(cert), str(key))) as url:
        answer = httpx.get(f"{url}/login", verify=False)  # noqa: S501 - a certificate made for this test
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("__Host-gateway_console=")
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_passwd_writes_the_hash_and_never_the_password(install: Install) -> None:
    original = install.config.read_text(encoding="utf-8")
    result = install.cli("console", "passwd", "olga", "--role", "operator",
                         input="a-long-password-1\na-long-password-1\n")
    assert result.exit_code == 0, result.output
    text = install.config.read_text(encoding="utf-8")
    assert "a-long-password-1" not in text
    assert text.startswith(original)  # the admin's file is kept as it was, the console section added
    found = re.search(r'olga: \{ role: operator, password_hash: "([^"]+)" \}', text)
    assert found and verify_password("a-long-password-1", found.group(1))
    # a second user, then a new password for the first: the role stays, the other user is untouched
    assert install.cli("console", "passwd", "anna", input="another-password\nanother-password\n").exit_code == 0
    assert install.cli("console", "passwd", "olga", input="third-password-x\nthird-password-x\n").exit_code == 0
    text = install.config.read_text(encoding="utf-8")
    olga = re.search(r'olga: \{ role: operator, password_hash: "([^"]+)" \}', text)
    anna = re.search(r'anna: \{ role: viewer, password_hash: "([^"]+)" \}', text)
    assert olga and verify_password("third-password-x", olga.group(1))
    assert anna and verify_password("another-password", anna.group(1))
    assert install.cli("check").exit_code == 0


def test_passwd_keeps_comments_and_replaces_a_user_written_as_a_block(install: Install) -> None:
    with open(install.config, "a", encoding="utf-8") as fh:
        fh.write("# the console\nconsole:\n  port: 8781   # not the default\n  users:\n    olga:\n"
                 "      role: operator\n      password_hash: \"scrypt$16384$8$1$AAAA$BBBB\"\n# the end\n")
    assert install.cli("console", "passwd", "olga", input="a-long-password-1\na-long-password-1\n").exit_code == 0
    text = install.config.read_text(encoding="utf-8")
    assert "port: 8781   # not the default" in text and text.endswith("# the end\n")
    found = re.search(r'olga: \{ role: operator, password_hash: "([^"]+)" \}', text)
    assert found and verify_password("a-long-password-1", found.group(1))


def test_a_password_in_gateway_yaml_instead_of_a_hash_is_refused(install: Install) -> None:
    with open(install.config, "a", encoding="utf-8") as fh:
        fh.write("console:\n  users:\n    olga: { role: operator, password_hash: hunter2 }\n")
    result = install.cli("check")
    assert result.exit_code == 2
    assert "a password itself never goes into gateway.yaml" in result.output


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "console.crt", folder / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path

