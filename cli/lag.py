"""The consumer lag of each supervised service that reads Kafka, for `shrinkwatch status`."""

from __future__ import annotations

import sqlite3

from confluent_kafka import KafkaException

from shrinkwatch.settings import Settings


def service_lags(settings: Settings) -> dict[str, str]:
    """`{service name: "N messages"}` for the flows and the alert dispatcher; "?" where the
    broker or a store could not be read."""
    from flows.lag import flow_lag
    from flows.run import INPUT_TOPIC
    from shrinkwatch.kafka_admin import group_positions, kafka_healthy, topic_lag

    ok, _detail = kafka_healthy(settings.kafka_config(), timeout_s=3.0)
    if not ok:  # one question, not a timeout per consumer
        return dict.fromkeys([*(f"{name}-flow" for name in INPUT_TOPIC), "alerts"], "? (Kafka down)")
    out: dict[str, str] = {}
    for name in INPUT_TOPIC:  # the flows, named `<flow>-flow` by the supervisor
        try:
            lag = flow_lag(settings, name)
        except (KafkaException, OSError, ValueError, sqlite3.Error) as exc:
            out[f"{name}-flow"] = f"? ({exc})"[:60]
            continue
        if lag is not None:
            out[f"{name}-flow"] = f"{lag} msg"
    topic = settings.topic("incidents")
    try:
        group = group_positions(settings.kafka_config(), f"{settings.topic_prefix}alerts", topic)
        out["alerts"] = f"{topic_lag(settings.kafka_config(), topic, group)} msg"
    except KafkaException as exc:
        out["alerts"] = f"? ({exc})"[:60]
    return out
