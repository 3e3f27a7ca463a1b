"""Evidence for incidents, and the live view of each camera.

Each camera keeps the last few seconds of analysed frames (raw, as JPEG, in memory only) in a
ring. When a new incident about one of this process's cameras appears on `sw.incidents`, a
recorder saves its snapshot at once (the frames up to now: alerts go out within seconds and
show it) under the name the incident carries (`shrinkwatch.contracts.snapshot_name`, given by
the flow); once the ring holds the seconds after the incident too, it saves the incident's
evidence in the layout of `privacy.files`: the raw frames of about `before_s` before to
`after_s` after (`.frames.avi`) with what was seen in each (`.tracks.json`), then the snapshot
(with the person's whole path) and the clip as shown, rendered by `privacy.render`: heads
blurred when the camera's store has `blur_heads` on, with the unblurred twins beside them;
no unblurred files when it is off. The first snapshot is blurred the same way, so an alert's
image is too. The recorder only writes files: it never touches the incident row, and whoever
reads the incident treats a missing file as "not saved yet".

The live view is the newest frame per camera, redacted and annotated the same way, written to
SHRINKWATCH_HOME/live/<camera>.jpg about once a second, without Kafka. Privacy zones are
already black in every frame the ring receives (the camera reader blacks them out before
analysis); they are blacked out again after the blur, which may reach into one.

The recorder takes an incident's frames from the ring as soon as they are due, and hands
them to its encoder thread, which writes the files; the encoder runs niced (`NICE`, Linux:
niceness is per thread), and so does the ffmpeg it starts. Writing evidence can take a few
seconds longer, but never a camera's frames (on a 2-core store box an incident's two H.264
clips took most of a core for a moment, and the cameras dropped frames meanwhile); and as the
frames were taken first, a slow encoder loses none of the next incident's (the ring keeps 5
seconds more than an incident's window, and no more). At most `BACKLOG` incidents wait for
the encoder (each holds up to ten seconds of a camera's JPEGs); past it an incident's evidence
is given up, with a warning. At the end, the encoder finishes what it was handed before the
recorder stops.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from privacy.files import FRAMES, TRACKS, TrackedFrame, Tracks, evidence_path, write_atomic, write_tracks
from privacy.media import write_frames
from privacy.render import PATH, annotate, render_evidence, shown, snapshot_label, track_path, write_snapshots
from shrinkwatch.contracts import ContractError, DetectedObject, Incident, decode, snapshot_name
from shrinkwatch.settings import Settings
from shrinkwatch.wording import incident_title

log = logging.getLogger(__name__)

__all__ = ["PATH", "EvidenceRecorder", "FrameRing", "RingFrame", "annotate", "track_path"]

Polygon = Sequence[tuple[float, float]]


NICE = 10
BACKLOG = 16  # incidents handed to the encoder and not yet written, at most


def lower_priority(by: int = NICE) -> None:
    """Make the calling thread (and what it starts from now on) nicer by `by`; where the
    system does not let it, nothing changes."""
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(now + by, 19))
    except (OSError, AttributeError):  # pragma: no cover (not Linux, or not allowed)
        log.debug("could not lower the evidence encoder's priority")


def _decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        msg = "a kept frame could not be decoded"
        raise ValueError(msg)
    return image


@dataclass(frozen=True)
class RingFrame:
    """One analysed frame kept for evidence."""

    ts: datetime
    jpeg: bytes
    objects: list[DetectedObject]


class FrameRing:
    """The last `seconds` of one camera's analysed frames, plus its live view; `blur_heads`
    (the camera's store's setting) and `privacy` (its privacy zones) say how they are shown."""

    def __init__(
        self,
        camera_id: str,
        fps: float,
        seconds: float,
        live_dir: Path | None,
        live_every_s: float = 1.0,
        *,
        blur_heads: bool = True,
        privacy: Sequence[Polygon] = (),
    ) -> None:
        self.camera_id = camera_id
        self.blur_heads = blur_heads
        self.privacy = list(privacy)
        # seconds=0 keeps no frames (evidence off): only the live view is served.
        self.frames: deque[RingFrame] = deque(maxlen=max(0, int(fps * seconds)))
        self.lock = threading.Lock()
        self.live_path = live_dir / f"{camera_id}.jpg" if live_dir else None
        self.live_every_s = live_every_s
        self._live_at = float("-inf")

    def add(self, image: np.ndarray, ts: datetime, objects: list[DetectedObject]) -> None:
        """Keep this frame, raw (when the ring keeps any); refresh the live view, redacted, when
        it is due."""
        if self.frames.maxlen:
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
            if ok:
                with self.lock:
                    self.frames.append(RingFrame(ts, buf.tobytes(), objects))
        if self.live_path is not None and time.monotonic() - self._live_at >= self.live_every_s:
            self._live_at = time.monotonic()
            view = shown(image, objects, blur=self.blur_heads, privacy=self.privacy)
            ok, live = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, 70])
            if ok:
                write_atomic(self.live_path, live.tobytes())

    def between(self, start: datetime, end: datetime) -> list[RingFrame]:
        """Frames with start <= ts <= end, oldest first."""
        with self.lock:
            return [f for f in self.frames if start <= f.ts <= end]

    def newest_ts(self) -> datetime | None:
        with self.lock:
            return self.frames[-1].ts if self.frames else None


class EvidenceRecorder(threading.Thread):
    """Saves the evidence of each new incident of this process's cameras (privacy.files)."""

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
        # (incident, ring, its frames) to write, or None to end: the encoder's work, bounded
        # (each holds up to ten seconds of a camera's JPEGs): past it an incident's evidence is
        # given up, said, rather than the box's memory.
        self._due: queue.Queue[tuple[Incident, FrameRing, list[RingFrame]] | None] = queue.Queue()
        self.backlog = BACKLOG
        self._encoder = threading.Thread(target=self._encode, name="evidence-encoder", daemon=True)

    def run(self) -> None:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        consumer = Consumer(
            {
                **self.settings.kafka_config(),
                "group.id": f"evidence-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )
        topic = self.settings.topic("incidents")
        try:
            self._encoder.start()
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
            try:
                consumer.close()
            finally:  # the encoder finishes what it was handed, whatever the consumer did
                self._due.put(None)
                if self._encoder.is_alive():
                    self._encoder.join()

    def _encode(self) -> None:
        """The encoder thread: write each incident handed over, niced."""
        lower_priority()
        while (work := self._due.get()) is not None:
            incident, ring, frames = work
            try:
                self._write(incident, ring, frames)
            except Exception:
                log.exception("could not save evidence for incident %s", incident.incident_id)

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
        self._write_snapshot(incident, ring, self._window(incident, ring))

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
            if self._due.qsize() >= self.backlog:
                log.warning(
                    "incident %s: %d incidents' evidence still being written; this one's is given up",
                    incident_id,
                    self._due.qsize(),
                )
                continue
            self._due.put((incident, ring, self._window(incident, ring)))  # its frames, now

    def save(self, incident: Incident, ring: FrameRing) -> str | None:
        """Write the incident's raw frames and tracks, then its snapshot and clip as shown (and
        unblurred, with blur on), from the ring's frames now; return the snapshot's reference."""
        return self._write(incident, ring, self._window(incident, ring))

    def _write(self, incident: Incident, ring: FrameRing, frames: list[RingFrame]) -> str | None:
        reference = self._reference(incident)
        if not frames or reference is None:
            if not frames:
                log.warning("no frames kept around incident %s; no evidence", incident.incident_id)
            return None
        images = [_decode_jpeg(f.jpeg) for f in frames]
        height, width = images[0].shape[:2]
        span = max((frames[-1].ts - frames[0].ts).total_seconds(), 0.2)
        tracks = Tracks(
            incident_id=incident.incident_id,
            camera_id=incident.camera_id,
            track_id=incident.track_id,
            fps=max(1.0, (len(frames) - 1) / span),
            key_index=_key_index(frames, incident.updated_at),
            frame_w=width,
            frame_h=height,
            frames=[TrackedFrame(f.ts, f.objects) for f in frames],
        )
        write_frames(images, tracks.fps, self._path(reference, FRAMES))
        write_tracks(self._path(reference, TRACKS), tracks)
        render_evidence(
            self.root,
            reference,
            tracks,
            images,
            blur=ring.blur_heads,
            label=_label(incident, frames[tracks.key_index].ts),
            privacy=ring.privacy,
        )
        self.saved += 1
        log.info(
            "evidence for incident %s: %s (+ clip of %d frames)", incident.incident_id, reference, len(frames)
        )
        return reference

    def _path(self, reference: str, suffix: str) -> Path:
        path = evidence_path(self.root, reference, suffix)
        assert path is not None  # the reference was checked by _reference
        return path

    def _reference(self, incident: Incident) -> str | None:
        """The incident's snapshot reference, by the rule the flow named it by (messages of
        earlier flows carry None); never a name read from the message, so no message can have
        the recorder write outside the folder. None for ids that are not plain names."""
        reference = snapshot_name(incident.camera_id, incident.incident_id)
        if evidence_path(self.root, reference, "") is None:
            log.warning(
                "incident %s: no evidence for a camera or incident id that is not a plain name",
                incident.incident_id,
            )
            return None
        return reference

    def _write_snapshot(self, incident: Incident, ring: FrameRing, frames: list[RingFrame]) -> str | None:
        """The frame nearest the incident, with the person's path over `frames`, as shown
        (and unblurred, with blur on); its reference, or None without frames."""
        reference = self._reference(incident)
        if not frames or reference is None:
            return None
        key = frames[_key_index(frames, incident.updated_at)]
        write_snapshots(
            self.root,
            reference,
            _decode_jpeg(key.jpeg),
            key.objects,
            blur=ring.blur_heads,
            privacy=ring.privacy,
            highlight=incident.track_id,
            label=_label(incident, key.ts),
            path=track_path(frames, incident.track_id),
        )
        return reference


def _key_index(frames: list[RingFrame], trigger: datetime) -> int:
    """The frame nearest the moment the incident was raised."""
    return min(range(len(frames)), key=lambda i: abs((frames[i].ts - trigger).total_seconds()))


def _label(incident: Incident, ts: datetime) -> str:
    return snapshot_label(incident_title(incident.incident_type), incident.track_id, ts)
