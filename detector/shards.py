"""Which cameras a camera reader takes when readers are sharded (`shrinkwatch detect --shard I/N`).

Reader I of N takes the cameras whose key's CRC-32 modulo N is I; the key is the camera id,
or its store's id with `--shard-by store`, which keeps a store's cameras in one reader. CRC-32
is the same on every host and in every run (Python's hash() of a string is salted per
process), so N readers started anywhere against one site configuration take every camera
exactly once, and each keeps its cameras from one start to the next. A hash spreads many
cameras evenly, not a few: with fewer cameras than about ten per reader, name them
(`--camera`) instead. Adding a camera moves no other camera; changing N moves most.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardBy(StrEnum):
    camera = "camera"
    store = "store"


@dataclass(frozen=True)
class Shard:
    """Reader `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` as a shard; ValueError saying what is expected otherwise."""
        match = _SHARD.fullmatch(text)
        index, count = (int(match[1]), int(match[2])) if match else (-1, 0)
        if count < 1 or not 0 <= index < count:
            msg = f"give I/N, reader I of N with 0 <= I < N (e.g. 0/2 and 1/2); got {text!r}"
            raise ValueError(msg)
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    """The reader (0..count-1) that takes `key`: CRC-32 of its UTF-8 bytes modulo count."""
    return zlib.crc32(key.encode()) % count


def select(cameras: Iterable[tuple[str, str]], shard: Shard, by: ShardBy = ShardBy.camera) -> list[str]:
    """The ids of the (camera id, store id) pairs that `shard` takes, in the order given."""
    pick = 0 if by is ShardBy.camera else 1
    return [pair[0] for pair in cameras if shard_of(pair[pick], shard.count) == shard.index]
