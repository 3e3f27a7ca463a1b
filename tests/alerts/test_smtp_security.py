"""Alert email over STARTTLS and SMTPS with a login, against a real SMTP server (aiosmtpd)
with a certificate of its own: the certificate is checked (trusted through `smtp_ca_file`),
the password is only sent encrypted, and a wrong one is reported, not sent."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.email import Mailer, SendError
from alerts.email import test_email as a_test_email
from shrinkwatch.settings import Settings
from tests.alerts.conftest import Mailbox
from tests.support import free_port

USER, PASSWORD = "alerts@shop.example", "correct horse"
# Over SMTPS aiosmtpd cannot tell the connection is TLS already, and says so.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shrinkwatch test mail")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # What strict verification (Python 3.13's default) asks of a certificate.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _check_login(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def _serve(certificate: tuple[Path, Path], implicit_tls: bool) -> Iterator[Mailbox]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    box = Mailbox(free_port())
    # Over SMTPS the connection is TLS from the start (aiosmtpd's auth_require_tls only knows
    # STARTTLS). PLAIN only: smtplib's LOGIN and aiosmtpd's disagree after a refusal.
    tls: dict[str, Any] = (
        {"ssl_context": context, "auth_require_tls": False}
        if implicit_tls
        else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    )
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=_check_login,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN"],
        **tls,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[Mailbox]:
    yield from _serve(certificate, implicit_tls=False)


@pytest.fixture
def smtps_server(certificate: tuple[Path, Path]) -> Iterator[Mailbox]:
    yield from _serve(certificate, implicit_tls=True)


def _settings(settings: Settings, box: Mailbox, security: str, ca: Path | None, password: str) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": box.port,
            "smtp_security": security,
            "smtp_user": USER,
            "smtp_password": password,
            "smtp_ca_file": ca,
        }
    )


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login(
    security: str,
    settings: Settings,
    certificate: tuple[Path, Path],
    starttls_server: Mailbox,
    smtps_server: Mailbox,
) -> None:
    box = starttls_server if security == "starttls" else smtps_server
    ready = _settings(settings, box, security, certificate[0], PASSWORD)
    with Mailer(ready) as mailer:
        mailer.send(a_test_email(ready, 1, "ana@example.com", "Ana"))
        mailer.send(a_test_email(ready, 2, "bo@example.com", "Bo"))  # the same connection
    assert [to for to, _message in box.received] == [["ana@example.com"], ["bo@example.com"]]

    with pytest.raises(SendError, match="535") as wrong:
        Mailer(_settings(settings, box, security, certificate[0], "wrong")).send(
            a_test_email(ready, 3, "ana@example.com", "Ana")
        )
    assert not wrong.value.permanent  # a login refused may be a setting fixed later: retried
    with pytest.raises(SendError, match="CERTIFICATE_VERIFY_FAILED"):
        Mailer(_settings(settings, box, security, None, PASSWORD)).check()  # not trusted: no login sent
    assert len(box.received) == 2


def test_no_login_in_the_clear(settings: Settings, starttls_server: Mailbox) -> None:
    # "none" would log in without TLS: the server refuses before any password is sent.
    plain = _settings(settings, starttls_server, "none", None, PASSWORD)
    with pytest.raises(SendError, match="530|AUTH extension not supported"):
        Mailer(plain).check()
    assert starttls_server.received == []
