"""Camera readers sharded over processes or hosts: `detect --shard I/N` (detector/shards.py)."""

from __future__ import annotations

import subprocess
import sys
import zlib
from typing import Any

import pytest

from detector.shards import Shard, ShardBy, select, shard_of
from tests.support import cli_env, run_cli

CAMERAS = [(f"cam-{s}-{i}", f"store-{s}") for s in range(7) for i in range(6)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0/1", Shard(0, 1)),
        ("1/2", Shard(1, 2)),
        (" 3 / 4 ", Shard(3, 4)),
        ("2/2", ValueError),
        ("0/0", ValueError),
        ("-1/2", ValueError),
        ("1", ValueError),
        ("a/b", ValueError),
        ("1/2/3", ValueError),
    ],
)
def test_shard_parse(text: str, expected: Any) -> None:
    if expected is ValueError:
        with pytest.raises(ValueError, match="0 <= I < N"):
            Shard.parse(text)
    else:
        assert Shard.parse(text) == expected


@pytest.mark.parametrize("count", [1, 2, 3, 5])
@pytest.mark.parametrize("by", list(ShardBy))
def test_every_camera_is_taken_by_exactly_one_reader(count: int, by: ShardBy) -> None:
    taken = [select(CAMERAS, Shard(i, count), by) for i in range(count)]
    assert sorted(c for shard in taken for c in shard) == sorted(c for c, _ in CAMERAS)
    if by is ShardBy.store:  # a store's cameras stay together
        for shard in taken:
            stores = {c.rsplit("-", 1)[0] for c in shard}
            assert all(f"{s}-{i}" in shard for s in stores for i in range(6))


def test_the_hash_is_crc32_and_the_same_in_every_process() -> None:
    assert shard_of("cam-entrance-1", 7) == zlib.crc32(b"cam-entrance-1") % 7
    # Python's hash() of a string is salted per process; the shard must not be.
    code = "from detector.shards import shard_of; print([shard_of(f'cam-{i}', 3) for i in range(40)])"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": s},
        ).stdout
        for s in ("1", "2", "random")
    }
    assert runs == {f"{[shard_of(f'cam-{i}', 3) for i in range(40)]}\n"}


SITE = """stores:
  - id: store-a
    name: A
    city: Leeds
    timezone: Europe/London
  - id: store-b
    name: B
    city: York
    timezone: Europe/London
cameras:
"""


@pytest.mark.services
def test_detect_shard_check_lists_the_shards_cameras(settings: Any, tmp_path: Any) -> None:
    from shrinkwatch.site_file import parse_site_config
    from warehouse.db import connect
    from warehouse.migrate import migrate
    from warehouse.site_tables import apply_site_config

    cameras = [(f"cam-{i}", "store-a" if i < 5 else "store-b") for i in range(8)]
    site = SITE + "".join(
        f"  - {{id: {c}, store_id: {s}, name: {c}, stream_url: /dev/null, fps: 5}}\n" for c, s in cameras
    )
    with connect(settings.database_dsn) as conn:
        migrate(conn, progress=lambda _m: None)
        apply_site_config(conn, parse_site_config(site))
    env = cli_env(settings, tmp_path)
    seen = []
    for i in range(3):
        expected = select(cameras, Shard(i, 3))
        done = run_cli(["detect", "--shard", f"{i}/3", "--check"], env=env, timeout=120)
        said = done.stdout + done.stderr
        if expected:
            assert (
                f"shard {i}/3 (by camera) takes {len(expected)} of 8 camera(s): {', '.join(expected)}" in said
            )
            assert f"cameras: {', '.join(expected)}" in said  # what the reader then checked
        else:
            assert f"shard {i}/3 (by camera) takes none of the 8 camera(s)" in said
        assert done.returncode == 0, said
        seen += expected
    assert sorted(seen) == sorted(c for c, _ in cameras)

    by_store = run_cli(["detect", "--shard", "1/2", "--shard-by", "store", "--check"], env=env, timeout=120)
    expected = select(cameras, Shard(1, 2), ShardBy.store)
    assert expected in (
        [c for c, s in cameras if s == "store-a"],
        [c for c, s in cameras if s == "store-b"],
        [],
    )
    assert f"takes {len(expected) or 'none'}" in by_store.stdout + by_store.stderr

    bad = run_cli(["detect", "--shard", "2/2", "--check"], env=env, timeout=60)
    assert bad.returncode == 2 and "--shard" in bad.stderr and "0 <= I < N" in bad.stderr
