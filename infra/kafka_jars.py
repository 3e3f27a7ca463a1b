"""`python -m infra.kafka_jars`: resolve and cache the Kafka broker's jars now (install time)."""

from __future__ import annotations

from infra.kafka import ensure_jars

if __name__ == "__main__":
    print(f"Kafka jars: {ensure_jars()}")
