"""What a failed send says, whichever way it went (email, SMS, webhook, Apprise): the outbox
tries the message again later unless the failure is permanent."""

from __future__ import annotations


class SendError(Exception):
    """A send that failed; `permanent` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
