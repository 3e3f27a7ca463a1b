"""A recipient's own checks (shrinkwatch.recipients), as the dashboard applies them."""

from __future__ import annotations

from shrinkwatch.recipients import Recipient, recipient_problems


def test_placeholders_belong_to_site_files_only() -> None:
    hook = Recipient(
        id="soc",
        name="SOC",
        channels=("webhook", "apprise"),
        stores=("store-001",),
        webhook_url="https://soc.example.com/hook",
        webhook_secret="${SOC_SECRET}",
        apprise_url="${SOC_SLACK}",
    )
    assert recipient_problems(hook, placeholders=True) == []
    assert recipient_problems(hook) == [
        "apprise_url: ${VAR} is read from the environment only in a site file",
        "webhook_secret: ${VAR} is read from the environment only in a site file",
    ]


def test_an_apprise_url_must_be_one_apprise_can_use() -> None:
    chat = Recipient(
        id="chat", name="Chat", channels=("apprise",), stores=("s",), apprise_url="json://127.0.0.1/x"
    )
    assert recipient_problems(chat) == []
    [problem] = recipient_problems(Recipient(**{**chat.__dict__, "apprise_url": "slack://only-one-token"}))
    assert problem.startswith("apprise_url: Apprise cannot use a slack:// URL")
    assert "only-one-token" not in problem
