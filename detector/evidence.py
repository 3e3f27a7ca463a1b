"""Evidence for incidents, and the live view of each camera.

Each camera keeps the last few seconds of analysed frames (as JPEG) in a ring. When a new
incident about one of this process's cameras appears on `sw.incidents`, a recorder saves an
annotated snapshot at once (the frames up to now: alerts go out within seconds and show it)
under the name the incident carries (`shrinkwatch.contracts.snapshot_name`, given by the
flow); once the ring holds the seconds after the incident too, it saves the snapshot again
with the person's whole path, under the same name, and a short clip (about `before_s` before
to `after_s` after) beside it. The recorder only writes files: it never touches the incident
row, and whoever reads the incident treats a missing file as "not saved yet". The live view is
the newest annotated frame per camera, written to SHRINKWATCH_HOME/live/<camera>.jpg about
once a second, without Kafka.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from shrinkwatch.contracts import ContractError, DetectedObject, Incident, decode, foot, snapshot_name
from shrinkwatch.settings import Settings
from shrinkwatch.wording import incident_title

log = logging.getLogger(__name__)

GREY = (200, 200, 200)
RED = (40, 40, 230)


PATH = (0, 215, 255)  # amber (BGR)


def track_path(frames: list[RingFrame], track_id: int | None) -> list[tuple[float, float]]:
    """Where one track's feet were (bottom centre of its box, normalised), frame by frame."""
    if track_id is None:
        return []
    points = []
    for frame in frames:
        for obj in frame.objects:
            if obj.track_id == track_id:
                points.append(foot(obj.box))
                break
    return points


def annotate(
    image: np.ndarray,
    objects: list[DetectedObject],
    highlight: int | None = None,
    label: str | None = None,
    path: list[tuple[float, float]] | None = None,
) -> np.ndarray:
    """A copy of the frame with every object's box and track id; `highlight` in red, and
    its `path` (normalised foot points, oldest first) as a line from a ring to a dot."""
    out = image.copy()
    height, width = out.shape[:2]
    if path and len(path) > 1:
        pixels = np.array([(round(x * width), round(y * height)) for x, y in path], np.int32)
        cv2.polylines(out, [pixels], isClosed=False, color=PATH, thickness=2, lineType=cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in pixels[0]), 5, PATH, 2, cv2.LINE_AA)
        cv2.circle(out, tuple(int(v) for v in pixels[-1]), 5, PATH, -1, cv2.LINE_AA)
    for obj in objects:
        x1, y1, x2, y2 = (int(v * s) for v, s in zip(obj.box, (width, height, width, height), strict=True))
        colour = RED if highlight is not None and obj.track_id == highlight else GREY
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        text = f"{obj.class_name} {obj.track_id if obj.track_id is not None else ''}".strip()
        cv2.putText(out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    if label:
        cv2.rectangle(out, (0, 0), (width, 22), (0, 0, 0), -1)
        cv2.putText(out, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        msg = "a kept frame could not be decoded"
        raise ValueError(msg)
    return image


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class RingFrame:
    """One analysed frame kept for evidence."""

    ts: datetime
    jpeg: bytes
    objects: list[DetectedObject]


class FrameRing:
    """The last `seconds` of one camera's analysed frames, plus its live view."""

    def __init__(
        self, camera_id: str, fps: float, seconds: float, live_dir: Path | None, live_every_s: float = 1.0
    ) -> None:
        self.camera_id = camera_id
        # seconds=0 keeps no frames (evidence off): only the live view is served.
        self.frames: deque[RingFrame] = deque(maxlen=max(0, int(fps * seconds)))
        self.lock = threading.Lock()
        self.live_path = live_dir / f"{camera_id}.jpg" if live_dir else None
        self.live_every_s = live_every_s
        self._live_at = float("-inf")

    def add(self, image: np.ndarray, ts: datetime, objects: list[DetectedObject]) -> None:
        """Keep this frame (when the ring keeps any); refresh the live view when it is due."""
        if self.frames.maxlen:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
            if ok:
                with self.lock:
                    self.frames.append(RingFrame(ts, buf.tobytes(), objects))
        if self.live_path is not None and time.monotonic() - self._live_at >= self.live_every_s:
            self._live_at = time.monotonic()
            ok, live = cv2.imencode(".jpg", annotate(image, objects), [cv2.IMWRITE_JPEG_QUALITY, 70])
            if ok:
                _write_atomic(self.live_path, live.tobytes())

    def between(self, start: datetime, end: datetime) -> list[RingFrame]:
        """Frames with start <= ts <= end, oldest first."""
        with self.lock:
            return [f for f in self.frames if start <= f.ts <= end]

    def newest_ts(self) -> datetime | None:
        with self.lock:
            return self.frames[-1].ts if self.frames else None


class EvidenceRecorder(threading.Thread):
    """Saves a snapshot and a clip for each new incident of this process's cameras."""

    def __init__(
        self,
        settings: Settings,
        rings: dict[str, FrameRing],
        stop: threading.Event,
        before_s: float = 5.0,
        after_s: float = 5.0,
    ) -> None:
        super().__init__(name="evidence", daemon=True)
        self.settings, self.rings, self.stop = settings, rings, stop
        self.before_s, self.after_s = before_s, after_s
        self.linger_s = 3.0
        self.root: Path = settings.evidence_dir()
        self.pending: dict[str, tuple[Incident, float]] = {}
        self.saved = 0
        self.done: deque[str] = deque(maxlen=10_000)  # recently saved: later versions skip

    def run(self) -> None:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_servers,
                "group.id": f"evidence-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        topic = self.settings.topic("incidents")
        try:
            meta = consumer.list_topics(topic, timeout=10)
            parts = meta.topics[topic].partitions if topic in meta.topics else {}
            consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
            while not self.stop.is_set():
                for msg in consumer.consume(100, timeout=0.5):
                    if msg.error() is None:
                        self._consider(msg.value())
                self._flush_due()
            # Shutting down: take what is still arriving for a moment, then save everything
            # pending with the frames there are.
            deadline = time.monotonic() + self.linger_s
            while time.monotonic() < deadline:
                for msg in consumer.consume(100, timeout=0.3):
                    if msg.error() is None:
                        self._consider(msg.value())
            self._flush_due(force=True)
        except Exception:  # evidence must never stop the readers
            log.exception("evidence recorder stopped")
        finally:
            consumer.close()

    def _consider(self, raw: bytes | None) -> None:
        try:
            incident = decode(raw, Incident)
        except ContractError:
            return
        if incident.camera_id not in self.rings or incident.incident_id in self.done:
            return
        if incident.incident_id not in self.pending:
            self.pending[incident.incident_id] = (incident, time.monotonic())
            try:
                self._first_look(incident, self.rings[incident.camera_id])
            except Exception:
                log.exception("could not save the first snapshot of incident %s", incident.incident_id)

    def _window(self, incident: Incident, ring: FrameRing) -> list[RingFrame]:
        trigger = incident.updated_at
        return ring.between(
            trigger - timedelta(seconds=self.before_s), trigger + timedelta(seconds=self.after_s)
        )

    def _first_look(self, incident: Incident, ring: FrameRing) -> None:
        """The snapshot from the frames there are now, so that an alert sent within seconds
        shows it; the full save overwrites it."""
        self._write_snapshot(incident, self._window(incident, ring))

    def _flush_due(self, force: bool = False) -> None:
        for incident_id, (incident, seen_at) in list(self.pending.items()):
            ring = self.rings[incident.camera_id]
            newest = ring.newest_ts()
            have_after = newest is not None and newest >= incident.updated_at + timedelta(
                seconds=self.after_s
            )
            # Wait for the seconds after the incident, unless the camera stopped delivering.
            if not force and not have_after and time.monotonic() - seen_at < self.after_s + 30:
                continue
            del self.pending[incident_id]
            self.done.append(incident_id)
            try:
                self.save(incident, ring)
            except Exception:
                log.exception("could not save evidence for incident %s", incident_id)

    def save(self, incident: Incident, ring: FrameRing) -> str | None:
        """Write snapshot and clip; return the snapshot's reference."""
        frames = self._window(incident, ring)
        if not frames:
            log.warning("no frames kept around incident %s; no evidence", incident.incident_id)
            return None
        reference = self._write_snapshot(incident, frames)
        if reference is None:
            return None
        self._write_clip(incident, frames, (self.root / reference).with_suffix(".mp4"))
        self.saved += 1
        log.info(
            "evidence for incident %s: %s (+ clip of %d frames)", incident.incident_id, reference, len(frames)
        )
        return reference

    def _write_snapshot(self, incident: Incident, frames: list[RingFrame]) -> str | None:
        """The annotated frame nearest the incident, with the person's path over `frames`,
        written (atomically: a reader sees the old or the new one) as <camera>/<incident>.jpg;
        its reference, or None without frames."""
        if not frames:
            return None
        trigger = incident.updated_at
        key = min(frames, key=lambda f: abs((f.ts - trigger).total_seconds()))
        title = incident_title(incident.incident_type)
        label = f"{title} - track {incident.track_id} - {key.ts:%Y-%m-%d %H:%M:%S} UTC"
        path = track_path(frames, incident.track_id)
        snapshot = annotate(_decode_jpeg(key.jpeg), key.objects, incident.track_id, label, path)
        # The rule the flow named it by (messages of earlier flows carry None); never a name
        # read from the message, so no message can have the reader write outside the folder.
        reference = snapshot_name(incident.camera_id, incident.incident_id)
        if self.root.resolve() not in (self.root / reference).resolve().parents:
            log.warning(
                "incident %s: no evidence for a camera or incident id that is not a plain name",
                incident.incident_id,
            )
            return None
        ok, buf = cv2.imencode(".jpg", snapshot, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            _write_atomic(self.root / reference, buf.tobytes())
        return reference

    def _write_clip(self, incident: Incident, frames: list[RingFrame], target: Path) -> None:
        span = max((frames[-1].ts - frames[0].ts).total_seconds(), 0.2)
        fps = max(1.0, (len(frames) - 1) / span)
        images = [_decode_jpeg(f.jpeg) for f in frames]
        height, width = images[0].shape[:2]
        avi = target.with_suffix(".avi")
        writer = cv2.VideoWriter(str(avi), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
        for frame, image in zip(frames, images, strict=True):
            writer.write(annotate(image, frame.objects, incident.track_id))
        writer.release()
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            return  # the MJPEG .avi is the clip
        # H.264 MP4 plays in every browser (and so on the dashboard).
        result = subprocess.run(
            [
                ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(avi),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                str(target),
            ],
            capture_output=True,
            check=False,
            timeout=120,
        )
        if result.returncode == 0:
            avi.unlink(missing_ok=True)
