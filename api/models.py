"""What the API answers and accepts, as pydantic models: the OpenAPI schema is made from them,
so every field is typed, every closed set (risk levels, statuses, incident types, zone kinds,
verdicts, camera states, evidence files) is an enum, and each model carries an example.

Times are ISO 8601 in UTC (`Z`); days are store-local calendar days (YYYY-MM-DD), as on the
dashboard. A value the warehouse does not have is null, never left out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shrinkwatch.contracts import IncidentType, text_problem
from shrinkwatch.site_file import ZoneKind


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A moment, sent in UTC with a `Z` (the warehouse's own offset is its session's business).
Moment = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

RiskLevel = Literal["low", "medium", "high"]
Status = Literal["open", "closed"]
ReviewState = Literal["unreviewed", "confirmed", "rejected"]
Verdict = Literal["confirmed", "rejected"]
CameraState = Literal["online", "degraded", "offline", "unknown"]
EvidenceName = Literal["snapshot.jpg", "clip.mp4"]
Permission = Literal["read", "review", "export"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(_Out):
    """Every error: what is wrong, in words (a filter's name first where one is wrong)."""

    detail: str = Field(description="What is wrong and, where it helps, what to do.")


UNAVAILABLE = "the database is not answering; try again shortly"  # a 503's detail


def problem(description: str, example: str) -> dict[str, Any]:
    """An error response for a route's `responses=`: a Problem, with an example of that status's
    own message (one example on the model would show a 422's text under every status)."""
    return {
        "model": Problem,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }


class Store(_Out):
    """A store the token may see."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "store-001", "name": "Downtown", "timezone": "Europe/London"}]}
    )

    id: str = Field(description="The store's id (the site file's).", examples=["store-001"])
    name: str = Field(description="The store's name.", examples=["Downtown"])
    timezone: str = Field(description="IANA time zone: store-local days are counted in it.")


class Camera(_Out):
    """A camera of a store the token may see."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "cam-entrance-1",
                    "store_id": "store-001",
                    "name": "Entrance",
                    "location": "Front doors",
                }
            ]
        }
    )

    id: str = Field(examples=["cam-entrance-1"])
    store_id: str = Field(examples=["store-001"])
    name: str = Field(examples=["Entrance"])
    location: str | None = Field(description="Free text: where it looks.", examples=["Front doors"])


class Zone(_Out):
    """A zone of a camera: a polygon in the camera's frame, normalised to 0..1."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "camera_id": "cam-entrance-1",
                    "id": "z-razors",
                    "name": "Razor blades",
                    "kind": "high_value",
                    "polygon": [[0.0, 0.55], [0.4, 0.55], [0.4, 1.0], [0.0, 1.0]],
                }
            ]
        }
    )

    camera_id: str
    id: str = Field(description="Unique within its camera.", examples=["z-razors"])
    name: str
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(description="[x, y] points, 0..1, at least 3.")


class CameraHealth(_Out):
    """A camera and its reader's newest report (`unknown`: no reader has reported)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "camera_id": "cam-entrance-1",
                    "store_id": "store-001",
                    "name": "Entrance",
                    "status": "online",
                    "status_since": "2026-11-28T08:00:02Z",
                    "reported_at": "2026-11-28T10:15:30Z",
                    "fps_in": 25.0,
                    "fps_analysed": 5.0,
                    "error": None,
                }
            ]
        }
    )

    camera_id: str
    store_id: str
    name: str
    status: CameraState
    status_since: Moment | None = Field(description="Since when the status holds.")
    reported_at: Moment | None = Field(description="The reader's newest report.")
    fps_in: float | None = Field(description="Frames per second the camera sends.")
    fps_analysed: float | None = Field(description="Frames per second analysed.")
    error: str | None = Field(description="The reader's last error, while it has one.")


class Signal(_Out):
    """One explanation of a risk score: what was measured and how much it added."""

    name: str = Field(examples=["dwell_high_value_s"])
    value: float = Field(examples=[95.0])
    contribution: float = Field(examples=[0.41])


_INCIDENT_EXAMPLE: dict[str, Any] = {
    "incident_id": "9f1c2e7a0b",
    "version": 3,
    "store_id": "store-001",
    "camera_id": "cam-entrance-1",
    "track_id": 17,
    "incident_type": "exit_without_checkout",
    "risk_score": 0.82,
    "risk_level": "high",
    "status": "closed",
    "started_at": "2026-11-28T10:14:02Z",
    "updated_at": "2026-11-28T10:15:30Z",
    "ended_at": "2026-11-28T10:15:30Z",
    "zone_ids": ["z-razors", "z-exit"],
    "signals": [
        {"name": "dwell_high_value_s", "value": 95.0, "contribution": 0.41},
        {"name": "skipped_checkout", "value": 1.0, "contribution": 0.35},
    ],
    "review": "confirmed",
    "reviewed_by": "ana",
    "reviewed_at": "2026-11-28T11:02:10Z",
    "review_note": "Seen on the exit camera too.",
}


class Incident(_Out):
    """An incident as the list shows it (CONTRACTS §3's fields and the analyst's verdict)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_INCIDENT_EXAMPLE]})

    incident_id: str
    version: int = Field(ge=1, description="Grows with every change of the incident.")
    store_id: str
    camera_id: str
    track_id: int | None = Field(description="The person's track; null for a zone's incident (crowding).")
    incident_type: IncidentType
    risk_score: float = Field(ge=0.0, le=1.0)
    risk_level: RiskLevel
    status: Status
    started_at: Moment
    updated_at: Moment
    ended_at: Moment | None
    zone_ids: list[str]
    signals: list[Signal] = Field(description="What the score is made of.")
    review: ReviewState = Field(description="The analyst's verdict, or `unreviewed`.")
    reviewed_by: str | None = Field(
        description="Who gave the verdict: an account, or `token:<name>` for a service token."
    )
    reviewed_at: Moment | None
    review_note: str | None


class IncidentPage(_Out):
    """One page of incidents, newest first, and where the next one starts."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_INCIDENT_EXAMPLE], "next_cursor": "WyIyMDI2LTEx"}]}
    )

    items: list[Incident]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null on the last page."
    )


class EvidenceLink(_Out):
    """A file of an incident's evidence that can be fetched now (blurred as stored)."""

    file: EvidenceName
    href: str = Field(
        description="Its address on this API (the same token fetches it; `?download=1`: as an attachment).",
        examples=["/v1/incidents/9f1c2e7a0b/evidence/snapshot.jpg"],
    )
    media_type: str = Field(examples=["image/jpeg"])


class IncidentDetail(Incident):
    """One incident with its store and the evidence that can be fetched now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _INCIDENT_EXAMPLE
                | {
                    "weights_version": 4,
                    "store_name": "Downtown",
                    "store_timezone": "Europe/London",
                    "evidence": [
                        {
                            "file": "snapshot.jpg",
                            "href": "/v1/incidents/9f1c2e7a0b/evidence/snapshot.jpg",
                            "media_type": "image/jpeg",
                        }
                    ],
                }
            ]
        }
    )

    weights_version: int | None = Field(description="The risk weights that scored it (null: the defaults).")
    store_name: str
    store_timezone: str
    evidence: list[EvidenceLink] = Field(
        description="Only the kinds on disk and not purged by retention; none ever unblurred."
    )


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


class VerdictIn(BaseModel):
    """An analyst's verdict on an incident."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"verdict": "confirmed", "note": "Seen on the exit camera too."}]},
    )

    verdict: Verdict
    note: Annotated[str, AfterValidator(_storable)] = Field(
        "", max_length=2000, description="What the reviewer saw (kept with the verdict)."
    )


class RiskPatternRow(_Out):
    """Incidents started in one store-local weekday and hour, summed over the days and stores."""

    weekday: int = Field(ge=0, le=6, description="0 = Monday.")
    local_hour: int = Field(ge=0, le=23)
    incidents: int
    high: int = Field(description="Of which high risk.")


class FootfallRow(_Out):
    """Footfall and dwell in one camera zone on one store-local day."""

    camera_id: str
    zone_id: str
    local_day: date
    visitor_minutes: int = Field(description="Sum over the minutes of the people seen in the zone.")
    person_minutes: float
    people_peak: int = Field(description="Most people in the zone at once.")


class QualityRow(_Out):
    """How often analysts confirm what one signal flags (`*`: every incident), over all time."""

    signal: str = Field(examples=["dwell_high_value_s"])
    incidents: int
    reviewed: int
    confirmed: int
    rejected: int
    confirmation_rate: float | None = Field(description="confirmed / reviewed; null before any verdict.")
    review_hours_p50: float | None = Field(description="Median hours from the incident to its verdict.")


class RoiRow(_Out):
    """A store's return on investment in one month (store-local), priced by its `economics`."""

    store_id: str
    month: date = Field(description="The month's first day.")
    currency: str = Field(examples=["GBP"])
    confirmed: int = Field(description="Incidents confirmed by an analyst.")
    prevented_loss: float = Field(description="confirmed x avg_loss_per_incident x recovery_rate.")
    monthly_cost: float
    net_benefit: float = Field(description="prevented_loss - monthly_cost.")
    roi_pct: float | None = Field(description="net_benefit / monthly_cost x 100; null without a cost.")
    payback_months: float | None = Field(description="monthly_cost / prevented_loss; null without a loss.")


class Heatmap(_Out):
    """Where people were in a camera's frame over some days: seconds per cell, rows top to bottom."""

    camera_id: str
    days: int = Field(description="How many days (or hours, with from_hour/to_hour) were summed.")
    person_s: list[list[float]] = Field(description="Person-seconds per cell (grid_h rows of grid_w).")
    dwell_s: list[list[float]] = Field(description="Seconds people stood still, per cell.")


# The lists: each an object with its `items`, so a field can be added beside them later.
class StoreList(_Out):
    items: list[Store]


class CameraList(_Out):
    items: list[Camera]


class ZoneList(_Out):
    items: list[Zone]


class CameraHealthList(_Out):
    items: list[CameraHealth]


class RiskPatternList(_Out):
    items: list[RiskPatternRow]


class FootfallList(_Out):
    items: list[FootfallRow]


class QualityList(_Out):
    items: list[QualityRow]


class RoiList(_Out):
    items: list[RoiRow]
