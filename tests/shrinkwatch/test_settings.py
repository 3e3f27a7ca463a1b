"""Settings: defaults, settings file, environment precedence and clear errors; secrets as
${VAR}, read when used, never shown or written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shrinkwatch.errors import ConfigError
from shrinkwatch.placeholders import UnsetVariable
from shrinkwatch.settings import load_settings, secret_environment


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SHRINKWATCH_KAFKA_BOOTSTRAP", "SHRINKWATCH_DATABASE_URL", "SHRINKWATCH_TOPIC_PREFIX"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(None)
    assert settings.kafka_managed and settings.postgres_managed
    assert settings.topic("detections") == "sw.detections"
    assert settings.model == "yolov8n.pt"
    assert settings.home.is_absolute()


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("topic_prefix: file.\nloiter_threshold_s: 12\n")
    monkeypatch.setenv("SHRINKWATCH_TOPIC_PREFIX", "env.")
    settings = load_settings(path)
    assert settings.topic_prefix == "env."
    assert settings.loiter_threshold_s == 12
    monkeypatch.setenv("SHRINKWATCH_KAFKA_BOOTSTRAP", "broker:9092")
    assert not load_settings(path).kafka_managed


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("loiter_threshold_s: -1\n", "loiter_threshold_s"),
        ("kafak_port: 1\n", "kafak_port"),
        ("imgsz: 100\n", "imgsz"),
        ("- a list\n", "mapping"),
        ("api_trusted_proxies: [proxy.local]\n", "api_trusted_proxies: 'proxy.local' is not an IP address"),
        ("dashboard_trusted_proxies: [10.0.0.0/8]\n", "dashboard_trusted_proxies: '10.0.0.0/8' is not an IP"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, content: str, key: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=key):
        load_settings(path)


def test_unknown_topic_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        load_settings(None).topic("detection")


SECRETS = {
    "smtp_password": "smtp-pw-4c1e",
    "twilio_auth_token": "twilio-7f2a",
    "sso_client_secret": "sso-9b3d",
}


def test_secrets_in_the_file_are_references_read_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("".join(f"{name}: ${{{name.upper()}}}\n" for name in SECRETS))
    settings = load_settings(path)
    for name, value in SECRETS.items():
        with pytest.raises(UnsetVariable, match=rf"^{name} names \${{{name.upper()}}}, not set in this"):
            settings.secret(name)  # type: ignore[arg-type]
        monkeypatch.setenv(name.upper(), value)
        assert settings.secret(name) == value  # type: ignore[arg-type]
    # What a settings file for another process is written from keeps the references.
    dumped = settings.model_dump(mode="json")
    assert {name: dumped[name] for name in SECRETS} == {name: f"${{{name.upper()}}}" for name in SECRETS}
    assert secret_environment(settings) == {}
    assert load_settings(path, log_level="DEBUG").secret("smtp_password") == SECRETS["smtp_password"]


def test_a_secret_value_is_never_shown_nor_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"SHRINKWATCH_{name.upper()}", value)
    settings = load_settings(None)
    shown = [repr(settings), str(settings), yaml.safe_dump(settings.model_dump(mode="json"))]
    assert not [value for value in SECRETS.values() if any(value in text for text in shown)]
    assert {name: settings.model_dump(mode="json")[name] for name in SECRETS} == dict.fromkeys(SECRETS)
    # A child process gets them in its environment, beside the file.
    assert secret_environment(settings) == {f"SHRINKWATCH_{n.upper()}": v for n, v in SECRETS.items()}
    assert settings.secret("twilio_auth_token") == SECRETS["twilio_auth_token"]
    # Nor in the message of a wrong settings file.
    path = tmp_path / "settings.yaml"
    path.write_text("smtp_password: ${SMTP PASS}\nsso_client_secret: [sso-9b3d]\n")
    monkeypatch.delenv("SHRINKWATCH_SMTP_PASSWORD")
    monkeypatch.delenv("SHRINKWATCH_SSO_CLIENT_SECRET")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "smtp_password: a placeholder must read ${NAME}" in str(info.value)
    assert "sso_client_secret" in str(info.value) and "sso-9b3d" not in str(info.value)
