"""Sending email over SMTP: STARTTLS, SMTPS or plain, with or without a login, one connection
for a batch of messages; what fails becomes a SendError, permanent or to be tried again."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from alerts.errors import SendError
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.settings import Settings


class Mailer:
    """One SMTP connection for a batch of messages (a new connection per message costs more
    than the message): opened on the first send, closed on `close()` or after a failure, so
    the next send starts afresh. Errors become SendError: permanent only for a 5xx answer to
    the message or all its recipients; a server that cannot be reached or refuses the login
    is retried later (a setting may be fixed meanwhile), and the rest of the batch is not
    tried against it, so a batch never waits one time-out per message."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: smtplib.SMTP | None = None
        self._down: SendError | None = None

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        host, port = settings.smtp_host, settings.smtp_port
        password = (settings.secret("smtp_password") or "") if settings.smtp_user else None
        context = ssl.create_default_context()  # verifies the certificate and the host name
        if settings.smtp_ca_file:
            context.load_verify_locations(cafile=settings.smtp_ca_file)
        if settings.smtp_security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=30, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=30)
        try:
            if settings.smtp_security == "starttls":
                client.starttls(context=context)
            if password is not None:
                client.login(settings.smtp_user or "", password)
        except BaseException:
            client.close()
            raise
        return client

    def _connection(self) -> smtplib.SMTP:
        if self._down is not None:
            raise self._down
        if self._client is None:
            try:
                self._client = self._open()
            except smtplib.SMTPResponseException as exc:
                self._down = SendError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=False)
                raise self._down from None
            except (OSError, smtplib.SMTPException) as exc:
                self._down = SendError(
                    f"SMTP {self.settings.smtp_host}:{self.settings.smtp_port}: {exc}", permanent=False
                )
                raise self._down from None
            except UnsetVariable as exc:  # the password's ${VAR}: it may be set before the retry
                self._down = SendError(str(exc), permanent=False)
                raise self._down from None
        return self._client

    def send(self, message: EmailMessage) -> None:
        host, port = self.settings.smtp_host, self.settings.smtp_port
        client = self._connection()
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            if 421 in codes:  # the server is closing the connection (smtplib has closed it)
                self._client = None
            msg = f"SMTP refused the recipients: {exc.recipients}"
            raise SendError(msg, permanent=all(500 <= code < 600 for code in codes)) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            msg = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            raise SendError(msg, permanent=500 <= exc.smtp_code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            msg = f"SMTP {host}:{port}: {exc}"
            raise SendError(msg, permanent=False) from None

    def check(self) -> None:
        """Connect, say hello, STARTTLS and log in as a send would, then leave; SendError
        saying what failed."""
        self._connection()
        self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
