"""Settings: defaults, settings file, environment precedence and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shrinkwatch.errors import ConfigError
from shrinkwatch.settings import load_settings


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
