"""A recipient's own checks (shrinkwatch.recipients), as the dashboard and the site file
apply them, and its secrets: written as ${VAR}, read from the environment when used."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shrinkwatch.logs import scrub
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.recipients import (
    Recipient,
    environment_problems,
    literal_secrets,
    recipient_problems,
    with_secret,
)

HOOK = Recipient(
    id="soc",
    name="SOC",
    channels=("webhook", "apprise"),
    stores=("store-001",),
    webhook_url="https://soc.example.com/hook",
    webhook_secret="${SOC_SECRET}",
    apprise_url="${SOC_SLACK}",
)


def test_secrets_are_written_as_references_never_as_values() -> None:
    assert recipient_problems(HOOK, references=True) == []
    literal = replace(HOOK, webhook_secret="s3cret-value", apprise_url="slack://T1/B2/c3d4e5")
    said = recipient_problems(literal, references=True)
    assert said == [
        "webhook_secret: write it as ${VAR}, with VAR set in the environment: secrets are never stored",
        "apprise_url: write the whole URL as one ${VAR}, with VAR set in the environment: "
        "secrets are never stored",
    ]
    # A ${VAR} inside a URL whose host the writer chooses would send that variable's value there.
    partly = replace(HOOK, apprise_url="json://evil.example/${LEEDS_HOOK_SECRET}")
    assert recipient_problems(partly, references=True) == [said[1]]
    # Shrinkwatch's own settings and libpq's are not for site data, even as the whole value.
    own = replace(HOOK, webhook_secret="${SHRINKWATCH_SSO_CLIENT_SECRET}", apprise_url="${PGPASSWORD}")
    assert recipient_problems(own, references=True) == [
        "webhook_secret: ${SHRINKWATCH_SSO_CLIENT_SECRET}: Shrinkwatch's own settings and PostgreSQL's "
        "(SHRINKWATCH_*, PG*) are not for site data",
        "apprise_url: ${PGPASSWORD}: Shrinkwatch's own settings and PostgreSQL's (SHRINKWATCH_*, PG*) "
        "are not for site data",
    ]
    assert literal_secrets(literal) == ["webhook_secret", "apprise_url"] and literal_secrets(HOOK) == []
    assert recipient_problems(replace(HOOK, webhook_secret="${SOC SECRET}"), references=True) == [
        "webhook_secret: a placeholder must read ${NAME} (letters, digits and _; not starting with a digit)"
    ]
    # A recipient's repr (a log line, a traceback) shows neither secret.
    assert "s3cret-value" not in repr(literal) and "c3d4e5" not in repr(literal)


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        (
            {},
            [
                "webhook_secret: not set in the environment: SOC_SECRET",
                "apprise_url: not set in the environment: SOC_SLACK",
            ],
        ),
        (
            {"SOC_SECRET": "", "SOC_SLACK": "json://127.0.0.1/x"},
            ["webhook_url: a URL and a secret are needed for the webhook channel (from the environment)"],
        ),
        (
            {"SOC_SECRET": "k3y", "SOC_SLACK": "slack://only-one-token"},
            [
                "apprise_url: Apprise cannot use a slack:// URL like this one (see its wiki for the form) "
                "(from the environment)"
            ],
        ),
        ({"SOC_SECRET": "k3y", "SOC_SLACK": "json://127.0.0.1/x"}, []),
    ],
)
def test_what_the_environment_gives_is_checked(environ: dict[str, str], said: list[str]) -> None:
    assert environment_problems(HOOK, environ) == said


def test_a_secret_is_read_when_used_and_never_logged_after() -> None:
    with pytest.raises(UnsetVariable) as info:
        with_secret(HOOK, "webhook_secret", {})
    assert str(info.value) == (
        "recipient soc: webhook_secret names ${SOC_SECRET}, not set in this process's environment"
    )
    assert with_secret(HOOK, "webhook_secret", {"SOC_SECRET": "hunter2-hook"}) == "hunter2-hook"
    assert scrub("signing with hunter2-hook failed") == "signing with *** failed"
    # A value stored before references were required still works as it is.
    assert with_secret(replace(HOOK, webhook_secret="old-literal"), "webhook_secret", {}) == "old-literal"


def test_an_apprise_url_must_be_one_apprise_can_use() -> None:
    chat = Recipient(
        id="chat", name="Chat", channels=("apprise",), stores=("s",), apprise_url="json://127.0.0.1/x"
    )
    assert recipient_problems(chat) == []
    [problem] = recipient_problems(Recipient(**{**chat.__dict__, "apprise_url": "slack://only-one-token"}))
    assert problem.startswith("apprise_url: Apprise cannot use a slack:// URL")
    assert "only-one-token" not in problem
