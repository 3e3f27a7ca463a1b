"""Alert email over STARTTLS and SMTPS with a login, against a real SMTP server (aiosmtpd)
with a certificate of its own: the certificate is checked (trusted through `smtp_ca_file`),
the password is only sent encrypted, and a wrong one is reported, not sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.email.smtp import Mailer
from alerts.email.templates import test_email as a_test_email
from alerts.errors import SendError
from shrinkwatch.settings import Settings
from tests.alerts.conftest import PASSWORD, USER, Mailbox

# Over SMTPS aiosmtpd cannot tell the connection is TLS already, and says so.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


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
