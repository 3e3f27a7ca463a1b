"""The contract topics as created: sw.detections keeps frames for the replay window, not the
broker's week; the others keep the broker's default."""

from __future__ import annotations

from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource

from shrinkwatch.kafka_admin import ensure_topics


def _retention(bootstrap: str, topic: str) -> tuple[str, bool]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entry = admin.describe_configs([resource])[resource].result(timeout=30)["retention.ms"]
    return entry.value, entry.is_default


def test_created_detections_keep_the_replay_window(make_settings: Any) -> None:
    settings = make_settings(detections_retention_h=6)  # the fixture creates the topics
    assert ensure_topics(settings) == []  # already there: nothing created, nothing changed
    assert _retention(settings.kafka_servers, settings.topic("detections")) == (str(6 * 3_600_000), False)
    value, default = _retention(settings.kafka_servers, settings.topic("incidents"))
    assert default
    assert value == str(7 * 24 * 3_600_000)
