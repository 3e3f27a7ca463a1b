"""The site configuration of CONTRACTS §2: stores, cameras and zones, validated as a whole,
and (optional, our addition) `alerts.recipients`: who gets alerts and digests, the same
fields as the dashboard's Alert settings page (shrinkwatch.recipients).

`load_site_file` returns a SiteConfig or raises SiteConfigError listing every problem with
its key path and line (`cameras[2].zones[0].polygon (line 31): ...`), whatever the text: a file
is refused, with the reason, when YAML's aliases expand it past MAX_VALUES values (or into
itself), when it nests too deeply for the parser, or when a string holds what PostgreSQL cannot
store (a NUL, an unpaired surrogate); numbers are finite. Applying it to PostgreSQL lives in
`warehouse.site_tables`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shrinkwatch.contracts import text_problem
from shrinkwatch.errors import ConfigError, key_path, validation_messages
from shrinkwatch.placeholders import (
    FORM,
    placeholders,
    reserved,
    reserved_message,
    resolve_placeholders,
    well_formed,
)
from shrinkwatch.recipients import Recipient, RecipientEntry, recipient_problems

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=64)]
# `privacy`: blacked out in stored evidence and the live view, and never analysed.
ZoneKind = Literal["entrance", "exit", "checkout", "high_value", "restricted", "general", "privacy"]
# About 8,000 stores of five cameras with five zones each (some 600 values a store): far more
# than one file holds, and far less than the billions a few lines of aliases expand to.
MAX_VALUES = 5_000_000
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Economics(_Strict):
    """What a store's losses and the system cost; used by ROI."""

    currency: str = Field("GBP", pattern=r"^[A-Z]{3}$")
    avg_loss_per_incident: float | None = Field(None, ge=0)
    recovery_rate: float | None = Field(None, ge=0, le=1)
    monthly_cost: float | None = Field(None, ge=0)


# The rule thresholds' defaults, in one place: the behaviour rules (flows.behaviour.tracks.Thresholds),
# the settings that override them for every store, and this file's `thresholds` all use it.
THRESHOLD_DEFAULTS: dict[str, float] = {
    "loiter_s": 30.0,
    "restricted_s": 2.0,
    "after_hours_s": 5.0,
    "concealment_s": 2.0,
    "crowd_people": 4,
    "crowd_s": 20.0,
    "running_speed": 1.5,
    "running_s": 0.6,
    "zone_exit_grace_s": 2.0,
    "track_timeout_s": 3.0,
    "incident_update_s": 10.0,
}


def _threshold(
    name: str, what: str, unit: str = " s", *, gt: float | None = None, ge: float | None = None
) -> Any:
    return Field(None, description=f"{what} ({THRESHOLD_DEFAULTS[name]:g}{unit})", gt=gt, ge=ge)


class StoreThresholds(_Strict):
    """A store's own rule thresholds; anything left out keeps the default (THRESHOLD_DEFAULTS)."""

    loiter_s: float | None = _threshold("loiter_s", "dwell in a high_value zone", gt=0)
    restricted_s: float | None = _threshold("restricted_s", "time in a restricted zone", ge=0)
    after_hours_s: float | None = _threshold("after_hours_s", "presence while closed", ge=0)
    concealment_s: float | None = _threshold("concealment_s", "sustained concealment cue", gt=0)
    crowd_people: int | None = _threshold("crowd_people", "people at once in a high_value zone", "", ge=2)
    crowd_s: float | None = _threshold("crowd_s", "for this long", gt=0)
    running_speed: float | None = _threshold("running_speed", "body heights per second", "", gt=0)
    running_s: float | None = _threshold("running_s", "sustained for", gt=0)
    zone_exit_grace_s: float | None = _threshold("zone_exit_grace_s", "brief exits keep a visit", ge=0)
    track_timeout_s: float | None = _threshold("track_timeout_s", "unseen this long: gone", gt=0)
    incident_update_s: float | None = _threshold("incident_update_s", "refresh an open incident", gt=0)


class RetentionDays(_Strict):
    """How many days a store keeps each kind of evidence before the purge deletes it (an
    incident under a legal hold keeps its evidence until the hold is released)."""

    snapshots: int = Field(30, ge=1, le=3650, description="an incident's snapshot image")
    clips: int = Field(30, ge=1, le=3650, description="an incident's clip, and the frames it is made of")
    live: int = Field(1, ge=1, le=3650, description="a camera's live-view frame, once the camera stops")


class Privacy(_Strict):
    """A store's privacy settings (CONTRACTS §2 `privacy`; docs/PRIVACY.md)."""

    retention_days: RetentionDays = Field(default_factory=RetentionDays)
    blur_heads: bool = True  # heads blurred in stored evidence, the live view and alert images


class Store(_Strict):
    """A shop: its time zone and local opening hours.

    `hours`: a missing day is closed all day; `{}` means closed every day; None (no `hours`
    key) means the hours are unknown, so nothing is ever "after hours". A span whose closing
    time is before its opening time runs past midnight into the next day (`22:00-06:00`);
    shrinkwatch.hours answers whether the store is open at a given time.
    """

    id: Identifier
    name: str = Field(min_length=1)
    city: str | None = None
    timezone: str
    hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], str] | None = None
    subscription_active: bool = True
    economics: Economics = Field(default_factory=Economics)
    thresholds: StoreThresholds = Field(default_factory=StoreThresholds)
    privacy: Privacy = Field(default_factory=Privacy)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown IANA time zone {value!r} (for example Europe/London)"
            raise ValueError(msg) from None
        return value

    @field_validator("hours")
    @classmethod
    def _hours_ranges(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for day, span in (value or {}).items():
            match = _HOURS.match(span)
            if not match:
                msg = f"{day}: expected opening hours as 'HH:MM-HH:MM', got {span!r}"
                raise ValueError(msg)
            opens, closes = span.split("-")
            if closes == opens:
                msg = (
                    f"{day}: opening and closing time are both {opens}; "
                    "write 00:00-24:00 for open all day, or leave the day out for closed"
                )
                raise ValueError(msg)
        return value


class Zone(_Strict):
    """A polygon on the camera image, in normalised coordinates, with a behavioural kind."""

    id: Identifier
    name: str = Field(min_length=1)
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(min_length=3)

    @field_validator("polygon")
    @classmethod
    def _normalised(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for i, (x, y) in enumerate(value):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                msg = f"point {i} ({x}, {y}) is outside 0..1: coordinates are normalised"
                raise ValueError(msg)
        area2 = sum(
            x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(value, value[1:] + value[:1], strict=True)
        )
        if abs(area2) < 1e-9:
            msg = "the polygon has no area (its points are on one line)"
            raise ValueError(msg)
        return value


class Camera(_Strict):
    """A camera of a store, where to read it and how fast to analyse it.

    `stream_url` may hold `${VAR}` placeholders (credentials, tokens): they are resolved
    from the environment when the camera is opened, and only the template is ever stored
    or logged.
    """

    id: Identifier
    store_id: Identifier
    name: str = Field(min_length=1)
    location: str | None = None
    stream_url: str = Field(min_length=1)
    fps: float = Field(5.0, gt=0, le=30)
    motion_gating: bool = True  # skip inference on frames where nothing moved
    zones: list[Zone] = Field(default_factory=list)

    @field_validator("stream_url")
    @classmethod
    def _placeholders_well_formed(cls, value: str) -> str:
        if not well_formed(value):
            raise ValueError(FORM)
        if names := reserved(value):
            raise ValueError(reserved_message(names))
        return value


class Alerts(_Strict):
    """The site file's `alerts` section: recipients, inserted or updated by id."""

    recipients: list[RecipientEntry] = Field(default_factory=list)


class SiteConfig(_Strict):
    """A whole site configuration file."""

    stores: list[Store] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)


@dataclass(frozen=True)
class SiteProblem:
    """One error in a site file: where and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path} (line {self.line})" if self.line else self.path
        return f"{where}: {self.message}"


class SiteConfigError(ConfigError):
    """A site configuration is invalid; `problems` lists every error found."""

    def __init__(self, source: str, problems: list[SiteProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} error(s); nothing was applied\n{lines}")


def _line_index(node: yaml.Node, path: str = "", out: dict[str, int] | None = None) -> dict[str, int]:
    """Map each key path in a composed YAML document to its (1-based) line."""
    out = {} if out is None else out
    out.setdefault(path or "(root)", node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            out[child] = key.start_mark.line + 1
            _line_index(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, f"{path}[{i}]", out)
    return out


def _nearest_line(lines: dict[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        # Drop the last step (`.name`, `[2]`, or pydantic's `.[key]` of a mapping's key).
        shorter = re.sub(r"(\.[^.\[]*|\.?\[[^\]]*\])$", "", path)
        path = shorter if shorter != path else ""
    return lines.get("(root)")


def _size(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values `node` stands for once its aliases are expanded (each shared node counted
    as often as it is used, in the time of one visit); ValueError when a node contains itself."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        msg = "an alias refers to a value that contains it (the value would be infinite)"
        raise ValueError(msg)
    open_.add(key)
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_size(k, sizes, open_) + _size(v, sizes, open_) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_size(item, sizes, open_) for item in node.value)
    open_.discard(key)
    sizes[key] = total
    return total


def read_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed document (for its lines) and its data; yaml.YAMLError when it is not YAML,
    ValueError saying why when its aliases expand it past MAX_VALUES values or into itself, or
    it nests too deeply to read."""
    try:
        node = yaml.compose(text)
        if node is not None and _size(node, {}, set()) > MAX_VALUES:
            msg = f"more than {MAX_VALUES} values once its aliases are expanded"
            raise ValueError(msg)
        return node, yaml.safe_load(text)
    except RecursionError:
        msg = "nested too deeply to read (lists or mappings inside each other)"
        raise ValueError(msg) from None


def unstorable_text(data: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, why) for every string, key or value, that PostgreSQL cannot store."""
    if isinstance(data, str):
        problem = text_problem(data)
        return [] if problem is None else [(path or "(root)", problem)]
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = key_path([key] if isinstance(key, str | int) else [str(key)], path)
            if isinstance(key, str) and (problem := text_problem(key)) is not None:
                out.append((child, f"the key {problem}"))
            out += unstorable_text(value, child)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            out += unstorable_text(item, f"{path}[{i}]")
    return out


def _cross_check(config: SiteConfig) -> list[SiteProblem]:
    problems = []
    store_ids = [s.id for s in config.stores]
    camera_ids = [c.id for c in config.cameras]
    for i, store_id in enumerate(store_ids):
        if store_ids.index(store_id) != i:
            problems.append(SiteProblem(f"stores[{i}].id", f"duplicate store id {store_id!r}"))
    for i, cam in enumerate(config.cameras):
        if camera_ids.index(cam.id) != i:
            problems.append(SiteProblem(f"cameras[{i}].id", f"duplicate camera id {cam.id!r}"))
        zone_ids = [z.id for z in cam.zones]
        for j, zone_id in enumerate(zone_ids):
            if zone_ids.index(zone_id) != j:
                problems.append(SiteProblem(f"cameras[{i}].zones[{j}].id", f"duplicate zone id {zone_id!r}"))
    recipient_ids = [r.id for r in config.alerts.recipients]
    for i, entry in enumerate(config.alerts.recipients):
        where = f"alerts.recipients[{i}]"
        if recipient_ids.index(entry.id) != i:
            problems.append(SiteProblem(f"{where}.id", f"duplicate recipient id {entry.id!r}"))
        problems += recipient_site_problems(entry.to_recipient(), i)
    return problems


def recipient_site_problems(
    recipient: Recipient, index: int, found: list[str] | None = None
) -> list[SiteProblem]:
    """The site file's `alerts.recipients[index]` problems, at each field's key path: `found`
    ('field: what', as shrinkwatch.recipients says them), or else what is wrong with it as
    written."""
    out = []
    for problem in recipient_problems(recipient, references=True) if found is None else found:
        field, message = problem.split(": ", 1)
        out.append(SiteProblem(f"alerts.recipients[{index}].{field}", message))
    return out


def parse_site_config(text: str, source: str = "<site>") -> SiteConfig:
    """Validate a site configuration document; raise SiteConfigError with every problem."""
    try:
        node, data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SiteConfigError(source, [SiteProblem("(root)", f"not valid YAML: {exc}", line)]) from None
    except ValueError as exc:
        raise SiteConfigError(source, [SiteProblem("(root)", str(exc))]) from None
    lines = _line_index(node) if node is not None else {}
    if data is None:
        data = {}
    if unstorable := unstorable_text(data):
        problems = [SiteProblem(path, message, _nearest_line(lines, path)) for path, message in unstorable]
        raise SiteConfigError(source, problems)
    try:
        config = SiteConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            SiteProblem(path, message, _nearest_line(lines, path))
            for path, message in validation_messages(exc)
        ]
        raise SiteConfigError(source, problems) from None
    cross = [SiteProblem(p.path, p.message, _nearest_line(lines, p.path)) for p in _cross_check(config)]
    if cross:
        raise SiteConfigError(source, cross)
    return config


def load_site_file(path: Path) -> SiteConfig:
    """Read and validate a site configuration YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteConfigError(str(path), [SiteProblem("(file)", str(exc))]) from None
    return parse_site_config(text, str(path))


__all__ = [
    "Alerts",
    "Camera",
    "Economics",
    "SiteConfig",
    "SiteConfigError",
    "THRESHOLD_DEFAULTS",
    "SiteProblem",
    "Store",
    "Zone",
    "key_path",
    "placeholders",
    "resolve_placeholders",
    "load_site_file",
    "parse_site_config",
    "read_yaml",
    "unstorable_text",
    "recipient_site_problems",
]
