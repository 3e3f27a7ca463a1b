"""The MJPEG parser's bounds, fed directly: each hostile stream is refused with its reason,
after reading no more than its bound (the byte source counts what was taken)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from detector.mjpeg import (
    CHUNK,
    MAX_BAD_PARTS,
    MAX_HEADERS,
    MAX_LINE,
    MAX_PART_BYTES,
    MjpegError,
    MjpegStream,
    PartReader,
    boundary_of,
    decode_jpeg,
    jpeg_size,
)


def jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.full((height, width, 3), 128, np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 3, (0, 0, 255), -1)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def part(body: bytes, *, length: bool = True, boundary: bytes = b"frame") -> bytes:
    headers = b"Content-Type: image/jpeg\r\n" + (b"Content-Length: %d\r\n" % len(body) if length else b"")
    return b"--" + boundary + b"\r\n" + headers + b"\r\n" + body + b"\r\n"


class Source:
    """A byte source for PartReader: `head`, then `tail` repeated forever (or the end); counts
    what the reader took."""

    def __init__(self, head: bytes, tail: bytes = b"") -> None:
        self._chunks: Iterator[bytes] = itertools.chain([head], itertools.repeat(tail) if tail else [])
        self._pending = b""
        self.taken = 0

    def read1(self, size: int) -> bytes:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        self.taken += len(data)
        return data


def reader(source: Source, boundary: bytes | None = b"frame", timeout_s: float = 10.0) -> PartReader:
    return PartReader(source.read1, boundary, timeout_s)


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "to-the-boundary"])
def test_parts_are_read_with_or_without_their_length(length: bool) -> None:
    first, second = jpeg(64, 48), jpeg(32, 24)
    parts = reader(Source(part(first, length=length) + part(second, length=length) + b"--frame--\r\n"))
    assert parts.next_part() == first
    assert parts.next_part() == second
    with pytest.raises(MjpegError, match="the server ended the stream"):
        parts.next_part()


@pytest.mark.parametrize(
    ("declared", "written"),
    [
        (b"frame", b"frame"),
        (b"--myboundary", b"myboundary"),  # declared with its dashes, written without more
        (b"--myboundary", b"--myboundary"),  # as RFC 2046 has it: `----myboundary`
        (None, b"whatever"),  # none declared: a line that starts with `--`
    ],
    ids=["standard", "declared-with-dashes", "written-with-more-dashes", "none-declared"],
)
def test_boundary_quirks_of_real_cameras(declared: bytes | None, written: bytes) -> None:
    body = jpeg()
    stream = part(body, length=False, boundary=written) * 2 + b"--" + written + b"\r\n"
    parts = reader(Source(stream), boundary=declared)
    assert parts.next_part() == body
    assert parts.next_part() == body


ENDLESS = os.urandom(CHUNK)
HEADERS = b"--frame\r\nContent-Type: image/jpeg\r\n"


@pytest.mark.parametrize(
    ("head", "tail", "error", "most"),
    [
        (b"", ENDLESS, "no part boundary in 16 MiB of data", MAX_PART_BYTES + 2 * CHUNK),
        (HEADERS + b"\r\n", ENDLESS, "has no boundary within 16 MiB", MAX_PART_BYTES + 2 * CHUNK),
        (HEADERS + b"X-Junk: ", b"x" * CHUNK, f"longer than {MAX_LINE} bytes", 2 * CHUNK),
        (
            HEADERS + b"Content-Length: 2000000000\r\n\r\n",
            ENDLESS,
            "2000000000 bytes is over the bound",
            CHUNK,
        ),
        (HEADERS + b"Content-Length: -5\r\n\r\n", b"", "-5 bytes is over the bound", CHUNK),
        (HEADERS + b"Content-Length: lots\r\n\r\n", b"", "Content-Length is not a number", CHUNK),
        (b"--frame\r\n", b"X-A: b\r\n", f"more than {MAX_HEADERS} header lines", 2 * CHUNK),
        (HEADERS + b"Content-Length: 100\r\n\r\n" + b"x" * 50, b"", "the server closed the stream", CHUNK),
    ],
    ids=[
        "random-bytes",
        "endless-part",
        "endless-header-line",
        "huge-length",
        "negative-length",
        "length-not-a-number",
        "endless-headers",
        "cut-short",
    ],
)
def test_hostile_streams_are_refused_within_their_bound(
    head: bytes, tail: bytes, error: str, most: int
) -> None:
    source = Source(head, tail)
    with pytest.raises(MjpegError, match=error):
        reader(source).next_part()
    assert source.taken <= most


def test_a_part_that_trickles_in_is_refused_after_the_timeout() -> None:
    now = [0.0]

    def read1(_size: int) -> bytes:
        now[0] += 1.0  # each byte takes a second
        return b"x"

    parts = PartReader(read1, b"frame", timeout_s=10.0, clock=lambda: now[0])
    with pytest.raises(MjpegError, match="no whole part within 10 s"):
        parts.next_part()
    assert now[0] <= 12


def test_images_are_whole_jpegs_of_a_bounded_size() -> None:
    good = jpeg(64, 48)
    assert jpeg_size(good) == (64, 48)
    image = decode_jpeg(good)
    assert image is not None and image.shape == (48, 64, 3)
    assert decode_jpeg(good[: len(good) // 2]) is None  # truncated: no end marker
    assert decode_jpeg(os.urandom(5000)) is None
    assert decode_jpeg(b"") is None
    # A 700-byte JPEG that declares 30000 x 30000 pixels: OpenCV would take 2.7 GB for it.
    sof = good.index(b"\xff\xc0")
    bomb = good[: sof + 5] + (30000).to_bytes(2, "big") * 2 + good[sof + 9 :]
    assert jpeg_size(bomb) == (30000, 30000)
    assert decode_jpeg(bomb) is None


def test_boundary_of_a_content_type() -> None:
    assert boundary_of("multipart/x-mixed-replace; boundary=frame") == b"frame"
    assert boundary_of('multipart/x-mixed-replace;boundary="--my frame"') == b"--my frame"
    assert boundary_of("multipart/x-mixed-replace") is None


def test_bad_parts_are_skipped_until_too_many_in_a_row() -> None:
    """MjpegStream.read's rule, over the parser: a bad part is skipped, MAX_BAD_PARTS end it."""
    good = jpeg()
    stream = part(good[:100]) * (MAX_BAD_PARTS - 1) + part(good)
    parts = reader(Source(stream))
    decoded = [decode_jpeg(parts.next_part()) for _ in range(MAX_BAD_PARTS)]
    assert [d is not None for d in decoded] == [False] * (MAX_BAD_PARTS - 1) + [True]


def test_an_unusable_url_is_reported_without_its_resolved_secrets() -> None:
    """The reason names the camera's template, never what its ${VAR}s resolved to (urllib's own
    message of a URL with a space in it quotes the whole URL)."""
    with pytest.raises(MjpegError) as refused:
        MjpegStream("http://127.0.0.1:1/live/s3cret key", "http://127.0.0.1:1/live/${KEY}")
    assert str(refused.value) == "cannot open http://127.0.0.1:1/live/${KEY}: not a valid URL"
