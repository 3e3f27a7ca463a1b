"""How far a dataflow is behind its input topic, from the offsets in its recovery store.

A flow keeps its Kafka offsets in its recovery store, not in a consumer group (Bytewax), so
its lag is the topic's end minus the offsets of its last snapshot: at most one snapshot
interval more than the true figure, which is what `shrinkwatch status` needs.
"""

from __future__ import annotations

import pickle
import sqlite3
from contextlib import closing
from pathlib import Path

from flows.run import INPUT_TOPIC
from shrinkwatch.kafka_admin import topic_lag
from shrinkwatch.settings import Settings


def recovered_offsets(directory: Path, topic: str) -> dict[int, int]:
    """The next offset per partition of `topic` in a recovery store's newest snapshots."""
    out: dict[int, int] = {}
    for part in sorted(directory.glob("*.sqlite3")):
        uri = f"file:{part}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            rows = db.execute(
                """SELECT state_key, ser_change FROM snaps AS s
                   WHERE step_id LIKE '%.read' AND state_key LIKE ?
                   AND snap_epoch = (SELECT max(snap_epoch) FROM snaps
                                     WHERE step_id = s.step_id AND state_key = s.state_key)""",
                (f"%-{topic}",),
            ).fetchall()
        for key, blob in rows:
            partition, _, name = key.partition("-")
            if name == topic and partition.isdigit() and blob is not None:
                offset = pickle.loads(blob)  # noqa: S301 (our own store: an int)
                if isinstance(offset, int):
                    out[int(partition)] = offset
    return out


def flow_lag(settings: Settings, name: str) -> int | None:
    """Messages of the flow's input topic it has not read (None: no store or no input known)."""
    directory = settings.home / "recovery" / name
    if name not in INPUT_TOPIC or not directory.is_dir():
        return None
    topic = settings.topic(INPUT_TOPIC[name])
    offsets = recovered_offsets(directory, topic)
    return topic_lag(settings.kafka_config(), topic, lambda _parts: offsets)
