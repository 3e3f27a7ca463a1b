"""A flow restarted with another worker count resumes its cameras' state (flows.run.placed_for).

Each camera's state key depends on the worker count (flows.kafka_io.placed_key), so a restart
with another count moves the recovered state to the new keys first. The scenario of
tests/flows/test_recovery.py (a loiterer's visit spans the restart) runs to the middle with
one count, is killed, and ends with another; its incidents must equal one uninterrupted run's.
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from flows.kafka_io import placed_key, reader_workers
from flows.run import kafka_partition, keep_newest, last_worker_count, place_camera_state
from infra.kafka_cluster import consecutive_free_ports
from tests.flows.test_incidents_flow import incidents, publish_frames
from tests.flows.test_recovery import final_rows, prepared, run_through, scenario
from tests.support import cli_env, read_all, spawn_cli, wait_for

INSERT = "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)"
SELECT = "SELECT step_id, state_key, snap_epoch, ser_change FROM snaps"


def read_offsets(home: Path) -> int:
    """The offsets the recovery store holds for the input (frames read and snapshotted)."""
    total = 0
    for part in sorted((home / "recovery" / "incidents").glob("*.sqlite3")):
        with closing(sqlite3.connect(part)) as db:
            rows = db.execute(
                """SELECT ser_change FROM snaps s WHERE step_id = 'incidents.detections.read'
                   AND snap_epoch = (SELECT MAX(snap_epoch) FROM snaps t
                                     WHERE t.step_id = s.step_id AND t.state_key = s.state_key)"""
            ).fetchall()
        # An offset is the next to read; a partition not read yet holds Kafka's "beginning" (-2).
        total += sum(max(pickle.loads(r[0]) or 0, 0) for r in rows if r[0] is not None)
    return total


@pytest.mark.services
@pytest.mark.parametrize(
    ("before", "after", "workers"),
    [([], ["--processes", "2"], (1, 2)), (["--processes", "2"], ["--workers", "3"], (2, 3))],
    ids=["1-to-2-processes", "2-processes-to-3-workers"],
)
def test_a_restart_with_another_worker_count_gives_the_uninterrupted_result(
    make_settings: Any, tmp_path: Path, before: list[str], after: list[str], workers: tuple[int, int]
) -> None:
    reference = run_through(prepared(make_settings), tmp_path, "reference")
    port = consecutive_free_ports(2)[0]  # not the default's: another test's cluster may be on it
    settings = prepared(lambda **values: make_settings(**values, flow_cluster_port=port))
    env = cli_env(settings, tmp_path)
    first, second = scenario()
    publish_frames(settings, first)
    # The producers' partitioner is what place_camera_state assumes.
    topic = settings.topic("detections")
    assert {(m.key().decode(), m.partition()) for m in read_all(settings, topic)} == {
        (c, kafka_partition(c, settings.topic_partitions)) for c in ("cam-1", "cam-2")
    }
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5", *before], env, tmp_path / "a.log")
    try:
        wait_for(lambda: read_offsets(settings.home) == len(first), 120, what="the first half snapshotted")
    finally:
        children = Path(f"/proc/{flow.pid}/task/{flow.pid}/children").read_text().split()
        flow.send_signal(signal.SIGKILL)
        flow.wait(timeout=10)
    # A cluster's processes stop with their parent, even one killed (they would hold its ports).
    wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in children), 60, what="the processes to stop")
    assert incidents(settings) and last_worker_count(settings.home / "recovery" / "incidents") == workers[0]
    publish_frames(settings, second)
    flow = spawn_cli(["flows", "run", "incidents", "--snapshot-s", "0.5", *after], env, tmp_path / "b.log")
    got: list[Any] = []
    try:

        def caught_up() -> bool:
            got[:] = final_rows(settings)
            return got == reference

        try:
            wait_for(caught_up, 180, what="the incidents of one uninterrupted run")
        except pytest.fail.Exception:
            assert got == reference
    finally:
        flow.send_signal(signal.SIGTERM)
        flow.wait(timeout=30)
    assert "camera state placed for" in (tmp_path / "b.log").read_text()


def test_place_camera_state_moves_keys_and_keeps_the_newest(tmp_path: Path) -> None:
    from bytewax.recovery import init_db_dir

    init_db_dir(tmp_path, 2)
    parts = sorted(tmp_path.glob("*.sqlite3"))
    step, topic = "incidents.behaviour", "sw.detections"
    rows = [
        (parts[0], step, "cam-1", 3, b"one"),  # written with 1 worker
        (parts[0], "incidents.detections.read", "0-sw.detections", 3, b"offset"),  # not a camera's
        (parts[1], step, "cam-2", 3, b"two"),
    ]
    for part, *row in rows:
        with closing(sqlite3.connect(part)) as db, db:
            db.execute(
                "INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)", row
            )
    readers = reader_workers([f"{i}-{topic}" for i in range(2)], 2)
    new = {c: placed_key(c, readers[f"{kafka_partition(c, 2)}-{topic}"], 2) for c in ("cam-1", "cam-2")}
    assert new["cam-1"] != "cam-1"  # (this case moves a key)

    assert place_camera_state(tmp_path, "incidents", topic, 2, 2) == sum(new[c] != c for c in new)
    assert place_camera_state(tmp_path, "incidents", topic, 2, 2) == 0  # once
    keep_newest(tmp_path, "incidents")

    def snaps() -> set[tuple[Any, ...]]:
        out = set()
        for i, part in enumerate(parts):
            with closing(sqlite3.connect(part)) as db:
                out |= {
                    (i, *r)
                    for r in db.execute("SELECT step_id, state_key, snap_epoch, ser_change FROM snaps")
                }
        return out

    assert snaps() == {
        (0, step, new["cam-1"], 3, b"one"),
        (0, "incidents.detections.read", "0-sw.detections", 3, b"offset"),
        (1, step, new["cam-2"], 3, b"two"),
    }
    # Bytewax writes the moved key's next snapshot in the partition its hash picks: only
    # the newest stays, wherever it is (before every start, whatever the worker count).
    with closing(sqlite3.connect(parts[1])) as db, db:
        db.execute(INSERT, (step, new["cam-1"], 9, b"newer"))
    keep_newest(tmp_path, "incidents")
    assert {r for r in snaps() if r[2] == new["cam-1"]} == {(1, step, new["cam-1"], 9, b"newer")}

    # Back to one worker: where the camera's own key is held newer (the camera went quiet
    # under the other count), that one stays.
    with closing(sqlite3.connect(parts[1])) as db, db:
        db.execute(INSERT, (step, "cam-7", 12, b"seven, newest"))
        db.execute(INSERT, (step, "cam-7~9", 10, b"seven, older"))
    place_camera_state(tmp_path, "incidents", topic, 2, 1)
    keep_newest(tmp_path, "incidents")
    assert {r for r in snaps() if r[1] == step} == {
        (1, step, "cam-1", 9, b"newer"),
        (1, step, "cam-2", 3, b"two"),
        (1, step, "cam-7", 12, b"seven, newest"),
    }
