"""HTTP MJPEG cameras, read by our own parser within fixed bounds.

FFmpeg's multipart reader, which OpenCV would use, keeps a part in memory until its boundary
comes: a server that never sent one made it hold 2 GB within 8 s, as did one that declared a
2 GB part, and an endless header line kept a core busy until the read timeout (measured with
opencv-python 5.1). Here every piece of the stream has a bound; a stream that goes past one
is refused with the reason, which the camera's health shows, and the reader reconnects with
backoff (detector.sources.LiveSource). Every part is checked to be one whole JPEG from its
header and end marker (`whole_jpeg`), but none is decoded here: the camera reader decodes only
the frames it analyses. What the reader holds is at most one part and one read:

| what | bound |
|---|---|
| a line of a part (the boundary, a header) | `MAX_LINE` (1 KiB) |
| a part's headers | `MAX_HEADERS` (32) lines |
| a part (its `Content-Length`, or what comes before the next boundary) | `MAX_PART_BYTES` (16 MiB) |
| data skipped looking for a boundary | `MAX_PART_BYTES` |
| an image | `MAX_PIXELS` (40 megapixels), read from its JPEG header before it is decoded |
| parts in a row that are not a whole JPEG (truncated, garbage) | `MAX_BAD_PARTS` (10) |
| parts in a row that look whole but do not decode (where they are decoded: detector.sources) | the same |
| time | each read waits at most `timeout_s`; a whole part must arrive within `timeout_s` |

The response's own status line and headers are read by http.client (a line of at most 64 KiB,
at most 100 headers), and it must be multipart (`multipart/x-mixed-replace`): `http(s)://`
means MJPEG, anything else is refused. Credentials in the URL go as HTTP Basic or Digest
authentication, as the server asks; an https camera's certificate is verified against this
machine's trust store.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from shrinkwatch.errors import ShrinkwatchError

MAX_LINE = 1024
MAX_HEADERS = 32
MAX_PART_BYTES = 16 * 2**20
MAX_PIXELS = 40_000_000
MAX_BAD_PARTS = 10
CHUNK = 64 * 1024

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
# Start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class MjpegError(ShrinkwatchError):
    """The stream failed or went past a bound; the message says how, for the camera's health."""


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when `data` has none before its
    image data (not a JPEG)."""
    if not data.startswith(SOI):
        return None
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in SOF_MARKERS:
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        elif marker in (0xDA, 0xD9):  # image data or the end, and no frame header before it
            return None
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def whole_jpeg(data: bytes) -> bool:
    """True when a part looks like one whole JPEG of at most MAX_PIXELS, from its header and
    end marker alone (a truncated one lacks its end marker; a huge one is refused before any
    memory is taken): the check made on every part, decoded or not."""
    size = jpeg_size(data)
    if size is None or size[0] * size[1] > MAX_PIXELS or size[0] * size[1] == 0:
        return False
    return data.rstrip(b"\r\n\x00")[-2:] == EOI


def decode_jpeg(data: bytes) -> np.ndarray | None:
    """The image of one part, or None when it is not one whole JPEG of at most MAX_PIXELS
    (whole_jpeg) or does not decode."""
    if not whole_jpeg(data):
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


class PartReader:
    """The parts of a multipart body, one at a time, within the module's bounds.

    `read1(n)` is one read of at most n bytes (b"" at the end of the stream); it may raise
    MjpegError itself. Parts are delimited by `--boundary` lines; a part's body is its
    Content-Length bytes, or what comes before the next boundary when it gives none.
    """

    def __init__(
        self,
        read1: Callable[[int], bytes],
        boundary: bytes | None,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read1, self._timeout_s, self._clock = read1, timeout_s, clock
        # Some cameras declare `boundary=--x` and write `--x`, others `----x`: both have `--x`.
        # Without a boundary, a line that starts with `--` ends a part (as FFmpeg reads it).
        self._marker = b"--" + boundary.lstrip(b"-") if boundary else b"--"
        self._end = self._marker if boundary else b"\r\n--"
        self._buf = bytearray()
        self._deadline = 0.0

    def next_part(self) -> bytes:
        """The body of the next part; MjpegError when the stream ends or breaks a bound."""
        self._deadline = self._clock() + self._timeout_s
        self._skip_to_marker()
        if self._line().startswith(b"--"):
            msg = "the server ended the stream"
            raise MjpegError(msg)
        length = self._headers()
        return self._exactly(length) if length is not None else self._until_marker()

    def _fill(self) -> None:
        if self._clock() > self._deadline:
            msg = f"no whole part within {self._timeout_s:g} s"
            raise MjpegError(msg)
        data = self._read1(CHUNK)
        if not data:
            msg = "the server closed the stream"
            raise MjpegError(msg)
        self._buf += data

    def _skip_to_marker(self) -> None:
        skipped = 0
        keep = len(self._marker) - 1  # the start of a marker that the next read completes
        while (at := self._buf.find(self._marker)) < 0:
            drop = max(0, len(self._buf) - keep)
            skipped += drop
            del self._buf[:drop]
            if skipped > MAX_PART_BYTES:
                msg = f"no part boundary in {MAX_PART_BYTES >> 20} MiB of data"
                raise MjpegError(msg)
            self._fill()
        del self._buf[: at + len(self._marker)]

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\n", 0, MAX_LINE + 1)) < 0:
            if len(self._buf) > MAX_LINE:
                msg = f"a part's header line is longer than {MAX_LINE} bytes"
                raise MjpegError(msg)
            self._fill()
        line = bytes(self._buf[:end]).rstrip(b"\r")
        del self._buf[: end + 1]
        return line

    def _headers(self) -> int | None:
        length = None
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if not line:
                return length
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = _content_length(value)
        msg = f"a part has more than {MAX_HEADERS} header lines"
        raise MjpegError(msg)

    def _exactly(self, length: int) -> bytes:
        while len(self._buf) < length:
            self._fill()
        part = bytes(self._buf[:length])
        del self._buf[:length]
        return part

    def _until_marker(self) -> bytes:
        start = 0
        while (at := self._buf.find(self._end, start)) < 0:
            if len(self._buf) > MAX_PART_BYTES:
                msg = f"a part without a Content-Length has no boundary within {MAX_PART_BYTES >> 20} MiB"
                raise MjpegError(msg)
            start = max(0, len(self._buf) - len(self._end) + 1)
            self._fill()
        part = bytes(self._buf[:at]).rstrip(b"\r\n-")
        del self._buf[:at]
        return part


def _content_length(value: bytes) -> int:
    try:
        length = int(value.strip())
    except ValueError:
        msg = f"a part's Content-Length is not a number: {value.strip()[:40]!r}"
        raise MjpegError(msg) from None
    if not 0 <= length <= MAX_PART_BYTES:
        msg = f"a part of {length} bytes is over the bound of {MAX_PART_BYTES >> 20} MiB"
        raise MjpegError(msg)
    return length


def boundary_of(content_type: str) -> bytes | None:
    """The `boundary` parameter of a multipart Content-Type (None when it gives none)."""
    header = Message()
    header["Content-Type"] = content_type
    value = header.get_param("boundary")
    return value.encode("latin-1", "replace") if isinstance(value, str) and value else None


def _opener(url: str) -> tuple[str, urllib.request.OpenerDirector]:
    """The URL without its credentials, and an opener that answers Basic or Digest with them."""
    parts = urlsplit(url)
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=ssl.create_default_context())
    ]
    if parts.username is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{parts.port}" if parts.port else ""
        url = urlunsplit(parts._replace(netloc=netloc))
        passwords.add_password(None, url, unquote(parts.username), unquote(parts.password or ""))
        handlers += [
            urllib.request.HTTPBasicAuthHandler(passwords),
            urllib.request.HTTPDigestAuthHandler(passwords),
        ]
    return url, urllib.request.build_opener(*handlers)


def _reason(exc: BaseException) -> str:
    """An I/O error in words, without the URL (it may hold a resolved secret)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return _reason(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ValueError | http.client.InvalidURL):  # their text repeats the URL
        return "not a valid URL"
    return str(exc) or type(exc).__name__


class MjpegStream:
    """One connection to an MJPEG camera; `read()` gives its next image."""

    def __init__(self, url: str, name: str, timeout_s: float = 10.0) -> None:
        self.name = name  # what messages show: never the resolved URL
        plain, opener = _opener(url)
        try:
            self._response = opener.open(plain, timeout=timeout_s)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            msg = f"cannot open {name}: {_reason(exc)}"
            raise MjpegError(msg) from None
        content_type = self._response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            self.close()
            msg = f"{name} is not an MJPEG stream (Content-Type: {content_type[:80] or 'none'})"
            raise MjpegError(msg)
        self._parts = PartReader(self._read1, boundary_of(content_type), timeout_s)

    def _read1(self, size: int) -> bytes:
        try:
            data: bytes = self._response.read1(size)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            msg = f"reading failed: {_reason(exc)}"
            raise MjpegError(msg) from None
        return data

    def read(self) -> bytes:
        """The next whole JPEG (whole_jpeg), not decoded: a camera reader decodes only the
        frames it analyses. MjpegError when the stream ends or goes past a bound."""
        for _ in range(MAX_BAD_PARTS):
            try:
                data = self._parts.next_part()
            except MjpegError as exc:
                msg = f"{exc}: {self.name}"
                raise MjpegError(msg) from None
            if whole_jpeg(data):
                return data
        msg = f"{MAX_BAD_PARTS} parts in a row are not whole JPEG images: {self.name}"
        raise MjpegError(msg)

    def close(self) -> None:
        self._response.close()
